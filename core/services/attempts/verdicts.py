"""The guardian's answer, stored and settled: a rejection splits the fee; a real approve_transfer
call wins the round (core/services/attempts/endings)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from core.db import Conn
from core.ports.guardian import Verdict
from core.services import rounds
from core.services.attempts.endings import settle_win
from core.services.attempts.quotes import batch
from core.services.attempts.settlement import refund_in, settle, settle_rejections, split_legs

if TYPE_CHECKING:
    from core.app import App


async def record_verdict(
    app: App,
    attempt_id: int,
    verdict: Verdict,
    *,
    note: Callable[[Conn], Awaitable[None]] | None = None,
    paid: tuple[int, int] | None = None,
) -> tuple[str, int]:
    """Store the guardian's answer and settle the fee; a real approve_transfer call wins the round.
    Returns the attempt's status and the prize it won (0 unless won). ``note`` runs in the same
    transaction once the answer is stored (the memory's note and jobs). ``paid``: the attempt's round
    and fee, when the caller knows them."""
    async with app.db.autocommit() as conn:
        if paid is None:
            row = (
                await conn.execute(
                    "SELECT bounty_id, fee FROM attempts WHERE id = :id", {"id": attempt_id}
                )
            ).one()
            paid = (row.bounty_id, row.fee)
        bounty_id, fee = paid
        legs = await split_legs(app, conn, bounty_id, fee)
    if not verdict.approved and note is None:
        # A rejection with nothing else to write: shared statements under load (core/db/batch).
        item = (
            attempt_id,
            "rejected",
            verdict.reply,
            verdict.reason,
            verdict.provider,
            app.clock(),
            legs,
        )
        settled = await batch(app, "rejections", lambda: settle_rejections).submit(item)
        return ("rejected", 0) if settled else ("refunded", 0)
    async with app.uow() as uow:
        conn = uow.conn
        if verdict.approved:
            bounty = await rounds.lock_round_exclusive(conn, bounty_id)
            if bounty.open:
                prize = await settle_win(app, conn, bounty, attempt_id, fee, verdict)
                if prize is None:
                    return "refunded", 0
                if note is not None:
                    await note(conn)
                return "won", prize
            # The round ended before this answer: its pending attempts were refunded when it did.
            await refund_in(
                app, conn, attempt_id, "the round ended before the guardian answered", ("pending",)
            )
            return "refunded", 0
        if not await settle(app, conn, attempt_id, bounty_id, fee, "rejected", verdict):
            return (
                "refunded",
                0,
            )  # refunded meanwhile (e.g. recovered as stale): the answer is kept out
        if note is not None:
            await note(conn)
    return "rejected", 0
