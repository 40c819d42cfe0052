"""Shared by the team end-to-end tests: waiting until the bots have done what the outbox holds."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from core.app import App

TOPICS = [
    "team_sync",
    "relay",
    "notice",
]  # (announcements wait for a channel these tests do not set)


async def settled(app: App, *channels: str, timeout: float = 30.0) -> None:
    """Wait until every team sync, relay and notice row for these bot channels is done (or given up):
    what core asked the bots to do has been done."""

    async def waiting() -> int:
        async with app.engine.connect() as conn:
            return (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM outbox WHERE channel = ANY(:c) AND topic = ANY(:t) AND done_at IS NULL "
                        "AND failed_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
                    ),
                    {"c": list(channels), "t": TOPICS},
                )
            ).scalar_one()

    async def poll() -> None:
        while await waiting():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def failed_rows(app: App, channel: str) -> list[str]:
    async with app.engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        "SELECT last_error FROM outbox WHERE channel = :c AND failed_at IS NOT NULL ORDER BY id"
                    ),
                    {"c": channel},
                )
            )
            .scalars()
            .all()
        )
