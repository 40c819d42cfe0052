"""Why money may not go to the game now, in the player's words.

The rules themselves live in the database (migration 0012), once, where the quote reads them and the
payment applies them under its locks: ``bounty_spend_refusal`` (a ban, a self-exclusion: may this
player's own money go to the game), ``bounty_daily_room`` (what a daily limit counts) and
``bounty_attempt_refusal`` (the round, maintenance, the cooldown, a team's rights). They answer a code
with its values; this module is the one place that turns a code into an error a player reads.
"""

from __future__ import annotations

from datetime import datetime

from core.db import Conn
from core.errors import (
    BountyError,
    CooldownActive,
    InvalidArgument,
    LimitReached,
    NotFound,
    NotPermitted,
    RoundNotActive,
)
from core.money import usdc
from core.services.players import PERMANENT, ban_end_text


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def error(code: str, detail: str = "", extra: str = "", *, demo: bool = False) -> BountyError:
    """The error for a refusal ``code`` with its ``detail`` and ``extra`` values."""
    if code == "banned":
        until = _when(detail)
        return NotPermitted(
            f"You are banned {ban_end_text(min(until, PERMANENT))}: {extra or 'no reason given'}."
        )
    if code == "excluded":
        return LimitReached(
            f"You excluded yourself from paying until {_when(detail):%Y-%m-%d %H:%M} UTC."
        )
    if code == "daily_limit":
        spent, amount = (int(x) for x in detail.split())
        return LimitReached(
            f"This ({usdc(amount, demo=demo)}) would pass your daily limit of "
            f"{usdc(int(extra), demo=demo)} (spent today: {usdc(spent, demo=demo)}). Nothing was charged."
        )
    if code == "round":
        name = f"Round {extra}" if extra else "The round"
        if detail == "none":
            return RoundNotActive(
                "No round has started yet. A moderator opens one with /admin bounty new."
            )
        if detail == "paused":
            return RoundNotActive(f"{name} is paused by the moderators. Try again later.")
        return RoundNotActive(f"{name} is over ({detail}). Wait for the next one.")
    if code == "maintenance":
        return RoundNotActive(
            f"The game is in maintenance{f' ({detail})' if detail else ''}: attempts, deposits and "
            "team funding wait until it ends. Balances, withdrawals and everything you can read "
            "still work."
        )
    if code == "cooldown":
        return CooldownActive(f"Slow down: you can attempt again in {detail} s.")
    if code == "team_gone":
        return NotFound(f"{detail or 'That team'} was disbanded.")
    if code == "not_member":
        return NotPermitted(f"You are no longer in {detail}: its pool is not yours to spend.")
    if code == "captain_spends":
        return NotPermitted(
            f"In {detail} only the captain spends the pool (the captain chose /team spend captain)."
        )
    if code == "team_button":
        return NotPermitted("A team attempt is confirmed with its own button (/team attempt).")
    return InvalidArgument(f"Refused ({code}).")


async def check_spend(
    conn: Conn, player_id: int, amount: int, now: datetime, *, demo: bool
) -> None:
    """Refuse (raise) unless this player's own ``amount`` may go to the game now: no ban, no
    self-exclusion, within the daily limit. For money that leaves a player's balance towards the
    guardian outside an attempt's payment (a team contribution)."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    row = (
        await conn.execute(
            "SELECT s.code, s.detail, s.extra, d.daily_limit, d.spent "
            "FROM (SELECT 1) one LEFT JOIN LATERAL bounty_spend_refusal(:p, :now) s ON true "
            "LEFT JOIN LATERAL bounty_daily_room(:p, :day) d ON true",
            {"p": player_id, "now": now, "day": day_start},
        )
    ).one()
    if row.code is not None:
        raise error(row.code, row.detail, row.extra, demo=demo)
    if row.daily_limit is not None and row.spent + amount > row.daily_limit:
        raise error("daily_limit", f"{row.spent} {amount}", str(row.daily_limit), demo=demo)
