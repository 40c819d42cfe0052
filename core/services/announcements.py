"""Delivering the announcement outbox to a platform: at least once per platform, after commit.

Each adapter runs ``run_announcer`` with a ``send`` coroutine. Rows are written in the transaction
that caused them (a win, a new round), so nothing is announced that did not happen and nothing that
happened is lost; NOTIFY wakes the announcers, and a slow poll covers a dropped LISTEN connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import text

from core.services.rounds import ANNOUNCE_CHANNEL

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)

MAX_AGE = timedelta(hours=6)  # a bot connected for the first time does not replay old news


@dataclass(frozen=True)
class AnnouncementRow:
    id: int
    kind: str
    title: str
    body: str
    created_at: datetime


async def pending(app: App, platform: str, limit: int = 20) -> list[AnnouncementRow]:
    async with app.uow() as uow:
        rows = (
            await uow.conn.execute(
                text(
                    "SELECT a.id, a.kind, a.title, a.body, a.created_at FROM announcements a "
                    "WHERE a.created_at > :since AND NOT EXISTS (SELECT 1 FROM announcement_deliveries d "
                    "WHERE d.announcement_id = a.id AND d.platform = :p) ORDER BY a.id LIMIT :n"
                ),
                {"since": app.clock() - MAX_AGE, "p": platform, "n": limit},
            )
        ).all()
    return [AnnouncementRow(*r) for r in rows]


async def mark_delivered(app: App, announcement_id: int, platform: str) -> None:
    async with app.uow() as uow:
        await uow.conn.execute(
            text(
                "INSERT INTO announcement_deliveries (announcement_id, platform) VALUES (:a, :p) ON CONFLICT DO NOTHING"
            ),
            {"a": announcement_id, "p": platform},
        )


async def deliver_pending(app: App, platform: str, send: Callable[[AnnouncementRow], Awaitable[None]]) -> int:
    """Send what this platform has not had yet; a failed send is retried on the next round."""
    sent = 0
    for row in await pending(app, platform):
        try:
            await send(row)
        except Exception:
            log.exception("announcement %s could not be sent to %s; will retry", row.id, platform)
            break
        await mark_delivered(app, row.id, platform)
        sent += 1
    return sent


async def run_announcer(
    app: App,
    platform: str,
    send: Callable[[AnnouncementRow], Awaitable[None]],
    stop: asyncio.Event,
    poll_seconds: float = 5.0,
) -> None:
    """Deliver announcements until ``stop`` is set, woken by NOTIFY or the poll interval."""
    wake = asyncio.Event()
    raw = None

    def on_notify(*_: object) -> None:
        wake.set()

    pool = await app.db.pool()
    try:
        raw = await pool.acquire()
        await raw.add_listener(ANNOUNCE_CHANNEL, on_notify)
    except Exception:
        log.warning("LISTEN unavailable; announcements are polled every %ss", poll_seconds)
        raw = None
    try:
        while not stop.is_set():
            wake.clear()
            try:
                await deliver_pending(app, platform, send)
            except Exception:
                log.exception("announcer for %s failed; retrying", platform)
            waiter = asyncio.ensure_future(wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
    finally:
        if raw is not None:
            try:
                await raw.remove_listener(ANNOUNCE_CHANNEL, on_notify)
            finally:
                await pool.release(raw)
