"""text-embedding-3-small through the OpenAI SDK, asked for 384 dimensions (the API shortens and
re-normalises the vector), so it fits the same pgvector column as the local model."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import openai

from core.ports.embeddings import DIMENSIONS, Embedder, EmbeddingsUnavailable

log = logging.getLogger(__name__)

MAX_INPUTS = 256  # texts per request (the API takes up to 2,048)


class OpenAIEmbedder(Embedder):
    dimensions = DIMENSIONS

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str = "text-embedding-3-small",
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        self.api_model = model
        self.model = f"openai/{model}@{DIMENSIONS}"
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        texts = list(texts)
        for start in range(0, len(texts), MAX_INPUTS):
            chunk = texts[start : start + MAX_INPUTS]
            try:
                answer = await self._client.embeddings.create(
                    model=self.api_model, input=chunk, dimensions=DIMENSIONS
                )
            except openai.APIStatusError as exc:
                log.warning("OpenAI embeddings: HTTP %s", exc.status_code)
                raise EmbeddingsUnavailable(
                    f"the OpenAI embeddings API answered HTTP {exc.status_code}"
                ) from None
            except (openai.OpenAIError, ValueError) as exc:
                log.warning("OpenAI embeddings: %s", type(exc).__name__)
                raise EmbeddingsUnavailable(
                    f"the OpenAI embeddings API did not answer ({type(exc).__name__})"
                ) from None
            data = sorted(getattr(answer, "data", None) or [], key=lambda d: d.index)
            if len(data) != len(chunk):
                raise EmbeddingsUnavailable(
                    f"the OpenAI embeddings API returned {len(data)} vectors for {len(chunk)} texts"
                )
            for item in data:
                vector = [float(x) for x in item.embedding]
                if len(vector) != DIMENSIONS:
                    raise EmbeddingsUnavailable(
                        f"the OpenAI embeddings API returned {len(vector)} dimensions, not 384"
                    )
                norm = math.sqrt(sum(x * x for x in vector)) or 1.0
                out.append([x / norm for x in vector])
        return out

    async def aclose(self) -> None:
        await self._client.close()
