"""Responsible play: a player's own daily cap and self-exclusion; neither loosens before it runs out."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from core.actors import Actor
from core.errors import InvalidArgument
from core.money import usdc
from core.services.audit import audit
from core.services.meta import is_demo_install
from core.services.players import ensure_player

if TYPE_CHECKING:
    from core.app import App

LOOSEN_AFTER = timedelta(hours=24)


async def set_daily_limit(app: App, actor: Actor, amount: int) -> str:
    now = app.clock()
    async with app.uow() as uow:
        player = await ensure_player(uow.conn, actor)
        row = (
            await uow.conn.execute(
                "SELECT daily_limit, daily_limit_set_at FROM players WHERE id = :id FOR UPDATE",
                {"id": player.id},
            )
        ).one()
        demo = await is_demo_install(uow.conn)
        if (
            row.daily_limit is not None
            and amount > row.daily_limit
            and row.daily_limit_set_at + LOOSEN_AFTER > now
        ):
            until = row.daily_limit_set_at + LOOSEN_AFTER
            raise InvalidArgument(
                f"Your daily limit of {usdc(row.daily_limit, demo=demo)} can be raised only after "
                f"{until:%Y-%m-%d %H:%M} UTC."
            )
        await uow.conn.execute(
            "UPDATE players SET daily_limit = :a, daily_limit_set_at = :now WHERE id = :id",
            {"a": amount, "now": now, "id": player.id},
        )
        await _record(
            uow.conn,
            player,
            actor,
            "limits.daily",
            {"daily_limit": row.daily_limit},
            {"daily_limit": amount},
        )
    return (
        f"Your daily spending limit is now {usdc(amount, demo=demo)} (UTC days). It can be lowered any time, "
        "raised after 24 hours."
    )


async def exclude(app: App, actor: Actor, days: int) -> str:
    now = app.clock()
    async with app.uow() as uow:
        player = await ensure_player(uow.conn, actor)
        current = (
            await uow.conn.execute(
                "SELECT excluded_until FROM players WHERE id = :id FOR UPDATE", {"id": player.id}
            )
        ).scalar_one()
        until = now + timedelta(days=days)
        if current is not None and current > until:
            raise InvalidArgument(
                f"You are already excluded until {current:%Y-%m-%d %H:%M} UTC; that cannot be shortened."
            )
        await uow.conn.execute(
            "UPDATE players SET excluded_until = :u WHERE id = :id", {"u": until, "id": player.id}
        )
        await _record(
            uow.conn,
            player,
            actor,
            "limits.exclude",
            {"excluded_until": current.isoformat(timespec="seconds") if current else None},
            {"excluded_until": until.isoformat(timespec="seconds")},
        )
    return f"You cannot pay for attempts until {until:%Y-%m-%d %H:%M} UTC. This cannot be undone early."


async def _record(conn, player, actor: Actor, action: str, before: dict, after: dict) -> None:
    """A player's own limit change, kept in the audit log beside moderators' actions (/admin audit)."""
    await audit(
        conn,
        player,
        actor,
        action,
        f"#{player.id}",
        {},
        target_player_id=player.id,
        before=before,
        after=after,
    )


async def show(app: App, actor: Actor) -> str:
    now = app.clock()
    async with app.uow() as uow:
        player = await ensure_player(uow.conn, actor)
        row = (
            await uow.conn.execute(
                "SELECT daily_limit, excluded_until FROM players WHERE id = :id", {"id": player.id}
            )
        ).one()
        demo = await is_demo_install(uow.conn)
    parts = [
        f"Daily limit: {usdc(row.daily_limit, demo=demo)}"
        if row.daily_limit is not None
        else "Daily limit: none"
    ]
    if row.excluded_until and row.excluded_until > now:
        parts.append(f"Excluded until {row.excluded_until:%Y-%m-%d %H:%M} UTC")
    return "\n".join(parts)
