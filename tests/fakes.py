"""Fakes that subclass the real ports (never mocks of our own code)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.ports.embeddings import Embedder, EmbeddingsUnavailable
from core.ports.guardian import Guardian, GuardianRequest, GuardianUnavailable, Verdict


class ScriptedGuardian(Guardian):
    """Answers from a script: 'reject', 'approve', 'fail' (GuardianUnavailable), 'crash', 'hang'."""

    name = "scripted"
    description = "scripted test guardian"

    def __init__(self, *script: str, default: str = "reject") -> None:
        self.script = list(script)
        self.default = default
        self.requests: list[GuardianRequest] = []
        self.entered = asyncio.Event()

    async def judge(self, request: GuardianRequest) -> Verdict:
        self.requests.append(request)
        self.entered.set()
        step = self.script.pop(0) if self.script else self.default
        if step == "hang":
            await asyncio.sleep(3600)
        if step == "fail":
            raise GuardianUnavailable("stand-in failure")
        if step == "crash":
            raise RuntimeError("unexpected")
        approved = step == "approve"
        return Verdict(
            approved,
            "ok" if approved else "no",
            step,
            self.name,
            ("approve_transfer",) if approved else (),
        )


class WordEmbedder(Embedder):
    """Deterministic vectors from a text's words (shared words, near vectors): for tests that need
    an embedder but not the model's meaning. Counts its calls; ``fail`` makes it unavailable."""

    model = "test/words"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail = False

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        from tests.standins.llm_server import word_vector

        self.calls.append(list(texts))
        if self.fail:
            raise EmbeddingsUnavailable("stand-in failure")
        return [word_vector(t, self.dimensions) for t in texts]
