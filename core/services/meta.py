"""What the whole game is now: a demo on demo credits, or in maintenance (``game_meta``)."""

from __future__ import annotations

from core.db import Conn


async def is_demo_install(conn: Conn) -> bool:
    """Whether this game runs on demo credits (a local game seeded by `bounty run`)."""
    return bool(
        (await conn.execute("SELECT value FROM game_meta WHERE key = 'demo'")).scalar_one_or_none()
    )
