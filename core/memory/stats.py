"""Pattern statistics (attempts and wins per category, per round and all-time) and the round's
success rate with the enhanced context on and off.

A classified attempt is counted once: the same transaction that stores its categories marks it
counted, and only an attempt not yet marked adds to the counts, so a job run twice counts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.db import Conn
from core.memory.patterns import LABELS

ALL_TIME = 0  # pattern_stats.bounty_id of the all-time counts
ANSWERED = ("rejected", "won", "late")


@dataclass(frozen=True)
class PatternCount:
    category: str
    attempts: int
    wins: int

    @property
    def label(self) -> str:
        return LABELS.get(self.category, self.category)

    @property
    def success_rate(self) -> float:
        return self.wins / self.attempts if self.attempts else 0.0


async def record_categories(
    conn: Conn,
    attempt_id: int,
    categories: Sequence[str],
    *,
    rules: Sequence[str] | None = None,
    llm: Sequence[str] | None = None,
) -> bool:
    """Store an answered attempt's categories and count them once; True if this call counted it."""
    await conn.execute(
        (
            "INSERT INTO attempt_memory (attempt_id, enhanced_context, categories, rule_categories, llm_categories, "
            "classified_at) VALUES (:id, false, :c, :r, :l, now()) ON CONFLICT (attempt_id) DO UPDATE SET "
            "categories = EXCLUDED.categories, rule_categories = EXCLUDED.rule_categories, "
            "llm_categories = EXCLUDED.llm_categories, classified_at = now()"
        ),
        {
            "id": attempt_id,
            "c": list(categories),
            "r": list(rules) if rules is not None else None,
            "l": list(llm) if llm is not None else None,
        },
    )
    counted = (
        await conn.execute(
            (
                "UPDATE attempt_memory m SET counted_at = now() FROM attempts a WHERE m.attempt_id = :id "
                "AND a.id = m.attempt_id AND m.counted_at IS NULL AND a.status = ANY(:answered) "
                "RETURNING a.bounty_id, a.status = 'won' AS won"
            ),
            {"id": attempt_id, "answered": list(ANSWERED)},
        )
    ).first()
    if counted is None:
        return False
    await conn.execute(
        (
            "INSERT INTO pattern_stats (bounty_id, category, attempts, wins) "
            "SELECT b, c, 1, :w FROM unnest(CAST(:bounties AS bigint[])) b, unnest(CAST(:cats AS text[])) c "
            "ON CONFLICT (bounty_id, category) DO UPDATE SET attempts = pattern_stats.attempts + 1, "
            "wins = pattern_stats.wins + EXCLUDED.wins"
        ),
        {
            "w": int(counted.won),
            "bounties": [counted.bounty_id, ALL_TIME],
            "cats": list(categories),
        },
    )
    return True


async def pattern_counts(conn: Conn, bounty_id: int, limit: int = 10) -> list[PatternCount]:
    """The most used categories of a round (``ALL_TIME`` for every round), most attempts first."""
    rows = (
        await conn.execute(
            (
                "SELECT category, attempts, wins FROM pattern_stats WHERE bounty_id = :b AND attempts > 0 "
                "ORDER BY attempts DESC, category LIMIT :n"
            ),
            {"b": bounty_id, "n": limit},
        )
    ).all()
    return [PatternCount(r.category, int(r.attempts), int(r.wins)) for r in rows]


@dataclass(frozen=True)
class ContextSuccess:
    """Answered attempts of a round and how many won, with the enhanced context on or off."""

    attempts: int
    wins: int

    @property
    def rate(self) -> float | None:
        return self.wins / self.attempts if self.attempts else None


async def success_by_context(conn: Conn, bounty_id: int) -> dict[str, ContextSuccess]:
    """``{"on": ..., "off": ...}``: the round's success rate (wins over answered attempts) with the
    guardian given the enhanced context and without it. Refunded attempts were never answered and
    are left out; an attempt the memory has no note of was answered without the enhanced context."""
    rows = (
        await conn.execute(
            (
                "SELECT COALESCE(m.enhanced_context, false) AS enhanced, count(*) AS n, "
                "count(*) FILTER (WHERE a.status = 'won') AS won FROM attempts a "
                "LEFT JOIN attempt_memory m ON m.attempt_id = a.id "
                "WHERE a.bounty_id = :b AND a.status = ANY(:answered) GROUP BY 1"
            ),
            {"b": bounty_id, "answered": list(ANSWERED)},
        )
    ).all()
    out = {"on": ContextSuccess(0, 0), "off": ContextSuccess(0, 0)}
    for r in rows:
        out["on" if r.enhanced else "off"] = ContextSuccess(int(r.n), int(r.won))
    return out
