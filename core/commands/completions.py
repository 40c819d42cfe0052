"""Values a platform can offer while a person types an argument (Discord autocomplete).

An ``Arg`` names its source (``autocomplete="attempts"``); later features add sources (teams,
stake positions) here, and every adapter that offers completion gets them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from core.actors import Actor
from core.money import usdc
from core.services import rounds
from core.services.players import is_moderator

if TYPE_CHECKING:
    from core.app import App

MAX_CHOICES = 25  # Discord's limit, and plenty for a menu

Completion = tuple[str, str]  # (what the menu shows, the value the argument gets)


async def _attempts(app: App, actor: Actor, typed: str) -> list[Completion]:
    """Attempts of the current round, newest first, for moderators (refunds)."""
    if not is_moderator(app.settings, actor):
        return []
    typed = typed.strip().lstrip("#")
    async with app.uow() as uow:
        bounty = await rounds.current_bounty(uow.conn)
        if bounty is None:
            return []
        rows = (
            await uow.conn.execute(
                (
                    "SELECT a.number, a.fee, a.status, p.display_name FROM attempts a JOIN players p ON p.id = a.player_id "
                    "WHERE a.bounty_id = :b AND (:typed = '' OR CAST(a.number + 1 AS text) LIKE :prefix) "
                    "ORDER BY a.number DESC LIMIT :n"
                ),
                {"b": bounty.id, "typed": typed, "prefix": typed + "%", "n": MAX_CHOICES},
            )
        ).all()
    return [
        (
            f"#{r.number + 1} {r.display_name} {usdc(r.fee, demo=bounty.is_demo)} {r.status}"[:100],
            str(r.number + 1),
        )
        for r in rows
    ]


SOURCES: dict[str, Callable[[App, Actor, str], Awaitable[list[Completion]]]] = {
    "attempts": _attempts
}


async def complete(app: App, actor: Actor, source: str, typed: str) -> list[Completion]:
    fn = SOURCES.get(source)
    if fn is None or len(typed) > 100:
        return []
    return (await fn(app, actor, typed))[:MAX_CHOICES]
