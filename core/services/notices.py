"""Notices: something a player must be told privately (their share of a team's prize, a payout paid),
written in the transaction that caused it and delivered by each platform's bot as a direct message.

A player is told on every platform they play from, since either may be the one they read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.db import Conn
from core.services import outbox

TOPIC = "notice"
MAX_AGE = timedelta(days=7)


async def notify(
    conn: Conn, player_id: int, title: str, body: str, *, key: str | None = None, tone: str = "info"
) -> int:
    """Queue a private message to the player in the caller's transaction; returns how many platform
    deliveries were queued. ``key`` makes the same notice asked twice go out once."""
    identities = (
        await conn.execute(
            "SELECT platform, external_id FROM player_identities WHERE player_id = :p ORDER BY id",
            {"p": player_id},
        )
    ).all()
    queued = 0
    for identity in identities:
        payload: dict[str, Any] = {
            "player_id": player_id,
            "external_id": identity.external_id,
            "title": title,
            "body": body,
            "tone": tone,
        }
        row_key = f"{TOPIC}:{key}:{identity.platform}:{identity.external_id}" if key else None
        if (
            await outbox.put(conn, TOPIC, identity.platform, payload, key=row_key, ttl=MAX_AGE)
            is not None
        ):
            queued += 1
    return queued
