"""Attack embeddings in pgvector behind an HNSW index (cosine distance), one row per attempt and model.

pgvector 0.6 applies WHERE clauses after the HNSW scan, and a scan yields at most
``hnsw.ef_search`` rows: a filtered ``ORDER BY embedding <=> q LIMIT k`` can return fewer than k rows
although enough matching rows exist. So the index is asked for the nearest ``n`` candidates of all
models (``n`` = k when only the model is filtered, as every row is the current model's but while
the history is re-embedded; a few times k with a round or player filter), the filters apply to
those, and when fewer than k survive, ``n`` grows (bounded by pgvector's maximum ef_search); past
that bound the exact scan, served by the (model, bounty_id) B-tree, answers instead. The scan runs
at the connection's ``hnsw.ef_search`` (``HNSW_EF_SEARCH``, set on every pooled connection) unless
it needs more candidates than that or is asked for another value.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from core.db import Conn
from core.db.raw import HNSW_EF_SEARCH
from core.ports.embeddings import DIMENSIONS

MAX_CANDIDATES = 1_000  # pgvector's largest hnsw.ef_search
OVERFETCH = 4  # candidates per wanted row at first, and the growth factor of each retry


def vector_literal(embedding: Sequence[float]) -> str:
    if len(embedding) != DIMENSIONS:
        raise ValueError(f"expected {DIMENSIONS} dimensions, got {len(embedding)}")
    return "[" + ",".join(f"{x:.7g}" for x in embedding) + "]"


def pack_vector(embedding: Sequence[float]) -> str:
    """A vector as text for a job's arguments: its float32 values, little-endian, base64 (2 KB)."""
    if len(embedding) != DIMENSIONS:
        raise ValueError(f"expected {DIMENSIONS} dimensions, got {len(embedding)}")
    return base64.b64encode(struct.pack(f"<{DIMENSIONS}f", *embedding)).decode("ascii")


def unpack_vector(packed: str) -> list[float]:
    """``pack_vector``'s vector back; ValueError for anything else."""
    raw = base64.b64decode(packed, validate=True)
    if len(raw) != 4 * DIMENSIONS:
        raise ValueError(f"a packed vector has {4 * DIMENSIONS} bytes, not {len(raw)}")
    values = list(struct.unpack(f"<{DIMENSIONS}f", raw))
    if not all(math.isfinite(v) for v in values):
        raise ValueError("a packed vector holds a value that is not a finite number")
    return values


@dataclass(frozen=True)
class SimilarAttack:
    attempt_id: int
    distance: float  # cosine distance: 0 identical, 2 opposite

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


async def store_embedding(
    conn: Conn,
    attempt_id: int,
    bounty_id: int,
    embedding: Sequence[float],
    *,
    model: str,
    player_id: int,
) -> bool:
    """Store one attack's vector by ``model``; False if it was stored already (idempotent)."""
    row = (
        await conn.execute(
            (
                "INSERT INTO attack_embeddings (attempt_id, model, bounty_id, player_id, embedding) "
                "VALUES (:a, :m, :b, :p, CAST(:e AS vector)) ON CONFLICT (attempt_id, model) DO NOTHING RETURNING 1"
            ),
            {
                "a": attempt_id,
                "m": model,
                "b": bounty_id,
                "p": player_id,
                "e": vector_literal(embedding),
            },
        )
    ).first()
    return row is not None


_FILTERS = (
    "model = :m AND (CAST(:b AS bigint) IS NULL OR bounty_id = :b) "
    "AND (CAST(:xp AS bigint) IS NULL OR player_id <> :xp) "
    "AND NOT (attempt_id = ANY(CAST(:xa AS bigint[])))"
)


async def similar_attacks(
    conn: Conn,
    embedding: Sequence[float],
    k: int = 5,
    *,
    model: str,
    bounty_id: int | None = None,
    exclude_player: int | None = None,
    exclude_attempts: Sequence[int] = (),
    ef_search: int | None = None,
    exact: bool = False,
) -> list[SimilarAttack]:
    """The k nearest stored attacks by ``model`` (optionally of one round, not of one player).

    Uses the HNSW index (approximate) unless ``exact``, at ``ef_search`` (default: the
    connection's). Call inside a transaction: a search option it sets holds for this transaction
    only."""
    params = {
        "q": vector_literal(embedding),
        "k": k,
        "m": model,
        "b": bounty_id,
        "xp": exclude_player,
        "xa": list(exclude_attempts),
    }
    if not exact:
        filtered = bounty_id is not None or exclude_player is not None or bool(exclude_attempts)
        wanted = k * OVERFETCH if filtered else k
        while True:
            n = min(wanted, MAX_CANDIDATES)
            ef = max(n, HNSW_EF_SEARCH if ef_search is None else int(ef_search))
            if ef != HNSW_EF_SEARCH:
                await conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            rows = (
                await conn.execute(
                    (
                        f"SELECT c.attempt_id, c.d, ({_FILTERS}) AS kept FROM ("
                        "  SELECT attempt_id, model, bounty_id, player_id, embedding <=> CAST(:q AS vector) AS d "
                        "  FROM attack_embeddings ORDER BY embedding <=> CAST(:q AS vector) LIMIT :n) c ORDER BY c.d"
                    ),
                    {**params, "n": n},
                )
            ).all()
            kept = [SimilarAttack(r.attempt_id, float(r.d)) for r in rows if r.kept]
            if len(kept) >= k or len(rows) < n:  # enough, or the whole table was seen
                return kept[:k]
            if n >= MAX_CANDIDATES:
                break
            wanted = n * OVERFETCH
    # The exact scan: "+ 0" keeps the planner off the HNSW index; a round filter uses the B-tree.
    rows = (
        await conn.execute(
            (
                "SELECT attempt_id, embedding <=> CAST(:q AS vector) AS d FROM attack_embeddings "
                f"WHERE {_FILTERS} ORDER BY (embedding <=> CAST(:q AS vector)) + 0 LIMIT :k"
            ),
            params,
        )
    ).all()
    return [SimilarAttack(r.attempt_id, float(r.d)) for r in rows]
