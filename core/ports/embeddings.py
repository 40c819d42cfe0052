"""The embeddings port: texts in, unit vectors of 384 dimensions out, named by the model that made
them (every stored vector records it; search compares one model's vectors only)."""

from __future__ import annotations

import abc
from collections.abc import Sequence

DIMENSIONS = 384


class EmbeddingsUnavailable(Exception):
    """The embedding provider failed or answered nonsense (the attempt goes on without memory)."""


class Embedder(abc.ABC):
    model: str = "embedder"  # e.g. "local/all-MiniLM-L6-v2", "openai/text-embedding-3-small@384"
    dimensions: int = DIMENSIONS

    @abc.abstractmethod
    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text, in order."""

    async def embed_one(self, text: str) -> list[float]:
        return (await self.embed([text]))[0]

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load what the first call would (weights), so it is not paid by a player's attempt."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release HTTP clients."""
