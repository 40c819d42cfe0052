"""Maintenance (SPEC §11): the game stops taking money in — attempts, deposits, team funding — with a
clear reason, while balances, withdrawals, payouts and every read keep working, so no money is stuck
while it is down. Attempts already paid finish (answered or refunded, by the recovery job if need be).

The flag is one ``game_meta`` row; the rules that refuse read it where they already decide
(``bounty_spend_refusal``, the deposit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.actors import Actor
from core.db import Conn
from core.errors import InvalidArgument, RoundNotActive
from core.services.announcements import publish
from core.services.audit import audit
from core.services.players import ensure_player, require_moderator

if TYPE_CHECKING:
    from core.app import App

KEY = "maintenance"


@dataclass(frozen=True)
class Maintenance:
    on: bool
    since: str | None = None
    by: str | None = None
    reason: str | None = None


async def state(conn: Conn) -> Maintenance:
    value = (
        await conn.execute("SELECT value FROM game_meta WHERE key = :k", {"k": KEY})
    ).scalar_one_or_none()
    if not isinstance(value, dict):
        return Maintenance(False)
    return Maintenance(True, value.get("since"), value.get("by"), value.get("reason"))


async def refuse_money_in(conn: Conn, what: str) -> None:
    """Raise while the game is in maintenance: ``what`` (deposits...) waits until it ends."""
    m = await state(conn)
    if m.on:
        raise RoundNotActive(
            f"The game is in maintenance{f' ({m.reason})' if m.reason else ''}: {what} wait until it "
            "ends. Balances, withdrawals and everything you can read still work."
        )


async def set_maintenance(app: App, actor: Actor, on: bool, reason: str = "") -> Maintenance:
    """Moderators: start or end maintenance (audited, announced on every platform)."""
    require_moderator(app.settings, actor)
    reason = " ".join(reason.split())[:300]
    now: datetime = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        current = await state(conn)
        label = f"{actor.label} ({mod.display_name})"
        if on:
            value = {
                "since": now.isoformat(timespec="seconds"),
                "by": label,
                "reason": reason or None,
            }
            changed = await conn.execute(
                "INSERT INTO game_meta (key, value) VALUES (:k, :v) ON CONFLICT (key) DO NOTHING "
                "RETURNING key",
                {"k": KEY, "v": value},
            )
        else:
            changed = await conn.execute(
                "DELETE FROM game_meta WHERE key = :k RETURNING key", {"k": KEY}
            )
        if changed.first() is None:  # someone else switched it first: one answer, one audit row
            raise InvalidArgument(f"Maintenance is already {'on' if on else 'off'}.")
        await audit(
            conn, mod, actor, "maintenance.on" if on else "maintenance.off", "the game",
            {"reason": reason or None}, reason=reason or None,
            before={"maintenance": current.on}, after={"maintenance": on},
        )  # fmt: skip
        if on:
            await publish(
                conn, "maintenance_on", "Maintenance",
                "The game is in maintenance" + (f": {reason}" if reason else "") + ". Attempts, "
                "deposits and team funding wait until it ends; your balance, withdrawals and "
                "everything you can read still work.",
            )  # fmt: skip
        else:
            await publish(
                conn, "maintenance_off", "Maintenance over",
                "The game is open again: attempts, deposits and team funding work as before.",
            )  # fmt: skip
        return await state(conn)
