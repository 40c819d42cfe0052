"""Embedding providers behind the port: ``local`` (all-MiniLM-L6-v2 from site-packages, never a
download; in ONNX Runtime with int8 weights by default, or in torch) and ``openai``
(text-embedding-3-small at 384 dimensions). Importing this package imports neither torch, ONNX
Runtime nor the OpenAI client; the chosen provider is imported when it is built."""

from __future__ import annotations

from core.errors import NotConfigured
from core.ports.embeddings import Embedder
from core.settings import Settings

LOCAL_MODEL = "local/all-MiniLM-L6-v2"  # the float model in torch (sentence-transformers' numbers)
LOCAL_INT8_MODEL = "local/all-MiniLM-L6-v2@int8"  # ONNX Runtime, int8 weights: vectors of its own
LOCAL_MODELS = {"torch": LOCAL_MODEL, "onnx-int8": LOCAL_INT8_MODEL}


def provider_of(settings: Settings) -> str:
    """EMBEDDINGS_PROVIDER, or when unset: OpenAI when a key is set, otherwise the local model."""
    if settings.EMBEDDINGS_PROVIDER:
        return settings.EMBEDDINGS_PROVIDER
    return "openai" if settings.OPENAI_API_KEY is not None else "local"


def model_of(settings: Settings) -> str:
    """The model name the settings' provider records with its vectors (without building it)."""
    if provider_of(settings) == "openai":
        return f"openai/{settings.OPENAI_EMBEDDINGS_MODEL}@384"
    return LOCAL_MODELS[settings.EMBEDDINGS_LOCAL_RUNTIME]


def make_embedder(settings: Settings) -> Embedder:
    provider = provider_of(settings)
    if provider == "openai":
        if settings.OPENAI_API_KEY is None:
            raise NotConfigured("EMBEDDINGS_PROVIDER=openai needs OPENAI_API_KEY.")
        from core.memory.embedders.openai import OpenAIEmbedder

        return OpenAIEmbedder(
            api_key=settings.OPENAI_API_KEY.get_secret_value(),
            base_url=settings.OPENAI_BASE_URL,
            model=settings.OPENAI_EMBEDDINGS_MODEL,
        )
    from core.memory.embedders.local import shared_local_embedder

    return shared_local_embedder(settings.EMBEDDINGS_THREADS, settings)
