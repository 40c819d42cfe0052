"""What became of an attempt, as a player is told it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.db import Conn
from core.errors import NotFound

if TYPE_CHECKING:
    from core.app import App


@dataclass(frozen=True)
class Outcome:
    attempt_id: int
    bounty_id: int
    number: int
    fee: int
    status: str  # pending, rejected, won, refunded (late: an approval after the round ended, before 0012)
    reply: str | None
    guardian: str | None
    similar_count: int
    is_demo: bool
    prize: int = 0
    # A repeated or late tap on a confirmation already paid: this is that payment's outcome, and the
    # adapter tells the tapper without touching the message, which shows (or will show) the answer.
    replayed: bool = False
    # "identical": earlier attempts with exactly this text (enhanced context off); "semantic":
    # earlier attempts at least ``similarity_threshold`` similar by embedding (the memory on).
    similar_kind: str = "identical"
    similarity_threshold: float | None = None
    refund_reason: str | None = None


_OUTCOME = (
    "SELECT a.id, a.bounty_id, a.number, a.fee, a.status, a.reply, a.guardian, a.similar_count, "
    "a.verdict_reason, b.is_demo, m.similar_count AS semantic_count, m.similarity_threshold, "
    "(SELECT COALESCE(SUM(e.amount), 0) FROM entries e JOIN transfers t ON t.id = e.transfer_id "
    " WHERE a.status = 'won' AND t.idempotency_key = 'win:' || a.bounty_id AND e.amount > 0) AS prize "
    "FROM attempts a JOIN bounties b ON b.id = a.bounty_id "
    "LEFT JOIN attempt_memory m ON m.attempt_id = a.id AND m.enhanced_context WHERE a.id = :id"
)


async def read_outcome(conn: Conn, attempt_id: int) -> Outcome:
    row = (await conn.execute(_OUTCOME, {"id": attempt_id})).first()
    if row is None:
        raise NotFound(f"No attempt #{attempt_id}.")
    semantic = row.semantic_count is not None
    return Outcome(
        attempt_id=row.id,
        bounty_id=row.bounty_id,
        number=row.number,
        fee=row.fee,
        status=row.status,
        reply=row.reply,
        guardian=row.guardian,
        is_demo=row.is_demo,
        prize=int(row.prize),
        similar_count=row.semantic_count if semantic else row.similar_count,
        similar_kind="semantic" if semantic else "identical",
        similarity_threshold=row.similarity_threshold,
        refund_reason=row.verdict_reason if row.status == "refunded" else None,
    )


async def get_outcome(app: App, attempt_id: int) -> Outcome:
    async with app.db.autocommit() as conn:
        return await read_outcome(conn, attempt_id)
