"""Announcements: news for every announcement channel on every platform, sent once per platform.

``publish`` records the news and writes one outbox row per platform in the transaction that caused it
(a win, a new round, a moderator's announcement), so nothing is announced that did not happen and
nothing that happened is lost. Each platform's bot processes consume their rows through the outbox;
however many processes run for one platform, each row is claimed by one of them, so every channel
gets each announcement once. News older than ``MAX_AGE`` is not sent (a bot connected for the first
time, or back after a long outage, does not replay old news).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.db import Conn
from core.services import outbox

if TYPE_CHECKING:
    from core.app import App

TOPIC = "announcement"
MAX_AGE = timedelta(hours=6)


@dataclass(frozen=True)
class AnnouncementRow:
    id: int
    kind: str
    title: str
    body: str
    created_at: datetime


async def publish(conn: Conn, kind: str, title: str, body: str) -> int:
    """Record the news and queue it for every platform, inside the caller's transaction."""
    row = (
        await conn.execute(
            "INSERT INTO announcements (kind, title, body) VALUES (:k, :t, :b) RETURNING id, created_at",
            {"k": kind, "t": title, "b": body},
        )
    ).one()
    payload = {
        "id": row.id,
        "kind": kind,
        "title": title,
        "body": body,
        "created_at": row.created_at.isoformat(),
    }
    for platform in outbox.BOT_PLATFORMS:
        await outbox.put(
            conn, TOPIC, platform, payload, key=f"{TOPIC}:{row.id}:{platform}", ttl=MAX_AGE
        )
    return row.id


def row_of(item: outbox.OutboxItem) -> AnnouncementRow:
    p = item.payload
    return AnnouncementRow(
        p["id"], p["kind"], p["title"], p["body"], datetime.fromisoformat(p["created_at"])
    )


Send = Callable[[AnnouncementRow], Awaitable[None]]


async def deliver_pending(app: App, platform: str, send: Send, *, worker: str | None = None) -> int:
    """Send what waits for this platform now (tests, and a caller without a running consumer)."""

    async def handle(item: outbox.OutboxItem) -> None:
        await send(row_of(item))

    drained = await outbox.drain(
        app, platform, handle, worker=worker or outbox.consumer_name(platform), topics=[TOPIC]
    )
    return drained.done


async def run_announcer(
    app: App, platform: str, send: Send, stop: asyncio.Event, poll_seconds: float = 5.0
) -> None:
    """Deliver announcements to ``platform`` until ``stop`` is set."""

    async def handle(item: outbox.OutboxItem) -> None:
        await send(row_of(item))

    await outbox.run_consumer(
        app, platform, handle, stop, topics=[TOPIC], poll_seconds=poll_seconds
    )
