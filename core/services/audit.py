"""The append-only audit log: every moderator action, and what players and the worker do with money
that a moderator may need to see (stakes, payouts, wallet links). A trigger refuses UPDATE and DELETE."""

from __future__ import annotations

from typing import Any

from core.actors import Actor
from core.db import Conn
from core.services.players import PlayerRef


async def audit(
    conn: Conn,
    moderator: PlayerRef,
    actor: Actor,
    action: str,
    target: str | None,
    details: dict[str, Any],
    *,
    target_player_id: int | None = None,
    reason: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """One append-only audit row: who (``actor``), what (``action``), about whom (``target``, and
    ``target_player_id`` when it is a player), why, and the state before and after."""
    await conn.execute(
        (
            "INSERT INTO audit_log (actor_player_id, actor, action, target, details, target_player_id, reason, "
            "before, after) VALUES (:p, :a, :act, :t, :d, :tp, :r, :b, :af)"
        ),
        {
            "p": moderator.id,
            "a": f"{actor.label} ({moderator.display_name})",
            "act": action,
            "t": target,
            "d": details,
            "tp": target_player_id,
            "r": reason,
            "b": before,
            "af": after,
        },
    )


async def audit_line(
    conn: Conn,
    *,
    actor: str,
    action: str,
    target: str | None,
    details: dict[str, Any],
    player_id: int | None = None,
) -> None:
    """One line of the append-only audit log (moderators, players and the worker alike)."""
    await conn.execute(
        "INSERT INTO audit_log (actor_player_id, actor, action, target, details) VALUES (:p, :a, :act, :t, :d)",
        {"p": player_id, "a": actor, "act": action, "t": target, "d": details},
    )
