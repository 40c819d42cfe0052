"""Attack embeddings in pgvector behind an HNSW index (cosine distance)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

DIMENSIONS = 384  # all-MiniLM-L6-v2


def vector_literal(embedding: Sequence[float]) -> str:
    if len(embedding) != DIMENSIONS:
        raise ValueError(f"expected {DIMENSIONS} dimensions, got {len(embedding)}")
    return "[" + ",".join(f"{x:.7g}" for x in embedding) + "]"


@dataclass(frozen=True)
class SimilarAttack:
    attempt_id: int
    distance: float  # cosine distance: 0 identical, 2 opposite


async def store_embedding(conn: AsyncConnection, attempt_id: int, bounty_id: int, embedding: Sequence[float]) -> None:
    await conn.execute(
        text(
            "INSERT INTO attack_embeddings (attempt_id, bounty_id, embedding) VALUES (:a, :b, CAST(:e AS vector)) "
            "ON CONFLICT (attempt_id) DO NOTHING"
        ),
        {"a": attempt_id, "b": bounty_id, "e": vector_literal(embedding)},
    )


async def similar_attacks(
    conn: AsyncConnection, embedding: Sequence[float], k: int = 5, *, ef_search: int = 64, exact: bool = False
) -> list[SimilarAttack]:
    """The k nearest stored attacks. Uses the HNSW index (approximate) unless ``exact``.

    Call inside a transaction: ``ef_search`` is set for this transaction only."""
    if exact:
        # Disabling index scans forces the exact sequential scan (the benchmark's reference).
        await conn.execute(text("SET LOCAL enable_indexscan = off"))
    else:
        await conn.execute(text(f"SET LOCAL hnsw.ef_search = {max(k, int(ef_search))}"))
    rows = (
        await conn.execute(
            text(
                "SELECT attempt_id, embedding <=> CAST(:q AS vector) AS d FROM attack_embeddings "
                "ORDER BY embedding <=> CAST(:q AS vector) LIMIT :k"
            ),
            {"q": vector_literal(embedding), "k": k},
        )
    ).all()
    return [SimilarAttack(r.attempt_id, float(r.d)) for r in rows]
