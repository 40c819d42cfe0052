"""The outbox: work that must happen because a transaction committed, written in that transaction.

A row names a ``topic`` (job, announcement, relay, notice...) and the ``channel`` that consumes it
("celery" for background jobs, "discord", "telegram" or "console" for what a bot sends). A rolled-back
transaction leaves no row; a committed one leaves a row that stays until a consumer has done it, so a
consumer (or Redis, or a platform) being down for minutes delays the work and never loses it.

Consumers claim rows with ``FOR UPDATE SKIP LOCKED`` and a lease: however many processes consume one
channel (two Discord shards, two Telegram webhook replicas, several relays), each row is handed to one
of them at a time. A failed row is released with a growing delay; a row whose lease ran out (its
consumer died mid-way) is claimed again. Delivery is therefore at least once, and exactly once unless a
consumer dies between doing the work and marking it done. Times here are the database's, since leases
are about real processes whatever clock the game runs on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.db import Conn

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "bounty_outbox"  # NOTIFY payload: the channel that has new work
CELERY = "celery"
BOT_PLATFORMS = ("discord", "telegram", "console")
MAX_ATTEMPTS = 25  # then the row is marked failed and logged; nothing retries it by itself
DEFAULT_LEASE = timedelta(minutes=2)


class Undeliverable(Exception):
    """Raised by a consumer for work that can never succeed (a chat that is gone): no retry."""


@dataclass(frozen=True)
class OutboxItem:
    id: int
    topic: str
    channel: str
    payload: dict[str, Any]
    attempts: int  # including this claim
    created_at: datetime


def consumer_name(role: str) -> str:
    """A name for this process's consumer, shown in ``claimed_by``."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


async def put(
    conn: Conn,
    topic: str,
    channel: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    delay: timedelta | None = None,
    ttl: timedelta | None = None,
) -> int | None:
    """Write one row in the caller's transaction; returns its id, or None when ``key`` exists already
    (the same work asked twice is done once). ``ttl``: after that, nobody does it (stale news)."""
    row = (
        await conn.execute(
            (
                "INSERT INTO outbox (topic, channel, payload, dedupe_key, available_at, expires_at) "
                "VALUES (:topic, :channel, :payload, :key, now() + CAST(:delay AS interval), "
                "now() + CAST(:ttl AS interval)) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
            ),
            {
                "topic": topic,
                "channel": channel,
                "payload": payload,
                "key": key,
                "delay": delay or timedelta(0),
                "ttl": ttl,
            },
        )
    ).first()
    if row is None:
        return None
    await conn.execute("SELECT pg_notify(:n, :c)", {"n": NOTIFY_CHANNEL, "c": channel})
    return row.id


async def enqueue_job(
    conn: Conn, name: str, *, key: str | None = None, **kwargs: Any
) -> int | None:
    """A background job (a Celery task by name, JSON keyword arguments) that runs if and only if the
    caller's transaction commits. ``key`` makes asking twice run it once."""
    return await put(conn, "job", CELERY, {"name": name, "kwargs": kwargs}, key=key)


async def enqueue_jobs(conn: Conn, jobs: Sequence[tuple[str, str | None, dict[str, Any]]]) -> int:
    """Several background jobs (name, key, keyword arguments) in one statement of the caller's
    transaction, with one notification: what ``enqueue_job`` does for each, in one round trip (the
    attempt path enqueues two or three per attempt). Returns how many were new."""
    if not jobs:
        return 0
    row = (
        await conn.execute(
            (
                "WITH j AS (INSERT INTO outbox (topic, channel, payload, dedupe_key, available_at) "
                "SELECT 'job', :c, p.value, (CAST(:keys AS text[]))[p.i], now() "
                "FROM jsonb_array_elements(CAST(:payloads AS jsonb)) WITH ORDINALITY p(value, i) "
                "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id) "
                "SELECT (SELECT count(*) FROM j) AS new, "
                "(SELECT pg_notify(:n, :c) WHERE EXISTS (SELECT 1 FROM j)) AS notified"
            ),
            {
                "c": CELERY,
                "keys": [key for _, key, _ in jobs],
                "payloads": [{"name": name, "kwargs": kwargs} for name, _, kwargs in jobs],
                "n": NOTIFY_CHANNEL,
            },
        )
    ).one()
    return int(row.new)


async def claim(
    app: App,
    channel: str,
    *,
    worker: str,
    topics: Sequence[str] | None = None,
    limit: int = 20,
    lease: timedelta = DEFAULT_LEASE,
) -> list[OutboxItem]:
    """Take up to ``limit`` waiting rows of ``channel`` (oldest first) for ``lease``; others skip them."""
    async with app.uow() as uow:
        rows = (
            await uow.conn.execute(
                (
                    "UPDATE outbox o SET claimed_by = :w, claimed_until = now() + CAST(:lease AS interval), "
                    "attempts = o.attempts + 1 FROM (SELECT id FROM outbox WHERE channel = :c "
                    "  AND done_at IS NULL AND failed_at IS NULL AND available_at <= now() "
                    "  AND (claimed_until IS NULL OR claimed_until < now()) "
                    "  AND (expires_at IS NULL OR expires_at > now()) "
                    "  AND (CAST(:topics AS text[]) IS NULL OR topic = ANY(CAST(:topics AS text[]))) "
                    "  ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED) pick "
                    "WHERE o.id = pick.id RETURNING o.id, o.topic, o.channel, o.payload, o.attempts, o.created_at"
                ),
                {
                    "w": worker,
                    "lease": lease,
                    "c": channel,
                    "topics": list(topics) if topics else None,
                    "n": limit,
                },
            )
        ).all()
    return sorted((OutboxItem(*r) for r in rows), key=lambda item: item.id)


async def complete(app: App, item_id: int) -> None:
    """The work is done: the row is never handed out again."""
    async with app.uow() as uow:
        await uow.conn.execute(
            "UPDATE outbox SET done_at = now(), claimed_until = NULL, last_error = NULL WHERE id = :id",
            {"id": item_id},
        )


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... at most 5 minutes between tries."""
    return timedelta(seconds=min(300, 2 ** max(0, attempts - 1)))


async def release(app: App, item: OutboxItem, error: str, *, retry: bool = True) -> None:
    """Give a claimed row back after a failure: tried again after ``backoff``, or marked failed when
    it cannot succeed or has been tried ``MAX_ATTEMPTS`` times."""
    give_up = not retry or item.attempts >= MAX_ATTEMPTS
    async with app.uow() as uow:
        await uow.conn.execute(
            (
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, last_error = :e, "
                "available_at = now() + CAST(:wait AS interval), "
                "failed_at = CASE WHEN :give_up THEN now() END WHERE id = :id AND done_at IS NULL"
            ),
            {"e": error[:1000], "wait": backoff(item.attempts), "give_up": give_up, "id": item.id},
        )
    if give_up:
        log.error(
            "outbox %s (%s for %s) failed for good after %d tries: %s",
            item.id,
            item.topic,
            item.channel,
            item.attempts,
            error[:200],
        )


async def unclaim(app: App, items: Sequence[OutboxItem]) -> None:
    """Hand back rows claimed but not tried (a batch cut short), for the next claim at once."""
    if items:
        async with app.uow() as uow:
            await uow.conn.execute(
                (
                    "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, attempts = attempts - 1 "
                    "WHERE id = ANY(:ids) AND done_at IS NULL"
                ),
                {"ids": [i.id for i in items]},
            )


Handler = Callable[[OutboxItem], Awaitable[None]]


@dataclass(frozen=True)
class Drained:
    claimed: int
    done: int
    failed: bool  # a row failed: stop for now (a platform outage costs one call per wake, not one per row)


async def drain(
    app: App,
    channel: str,
    handle: Handler,
    *,
    worker: str,
    topics: Sequence[str] | None = None,
    limit: int = 20,
    lease: timedelta = DEFAULT_LEASE,
) -> Drained:
    """Claim what waits and handle it oldest first. The first failure stops the batch and hands the
    untried rest back at once."""
    items = await claim(app, channel, worker=worker, topics=topics, limit=limit, lease=lease)
    done = 0
    for i, item in enumerate(items):
        try:
            await handle(item)
        except Undeliverable as exc:
            await release(app, item, f"undeliverable: {exc}", retry=False)
            continue
        except Exception as exc:
            log.warning(
                "outbox %s (%s for %s) failed, try %d: %s: %s",
                item.id,
                item.topic,
                channel,
                item.attempts,
                type(exc).__name__,
                exc,
            )
            await release(app, item, f"{type(exc).__name__}: {exc}")
            await unclaim(app, items[i + 1 :])
            return Drained(len(items), done, True)
        await complete(app, item.id)
        done += 1
    return Drained(len(items), done, False)


async def run_consumer(
    app: App,
    channel: str,
    handle: Handler,
    stop: asyncio.Event,
    *,
    topics: Sequence[str] | None = None,
    worker: str | None = None,
    poll_seconds: float = 5.0,
    lease: timedelta = DEFAULT_LEASE,
    batch: int = 20,
) -> None:
    """Consume ``channel`` until ``stop`` is set: woken by NOTIFY at once, and polling every
    ``poll_seconds`` for retries that came due and in case the LISTEN connection dropped."""
    worker = worker or consumer_name(channel)
    wake = asyncio.Event()

    def on_notify(_conn: object, _pid: object, _channel: object, payload: str) -> None:
        if payload == channel:
            wake.set()

    pool = await app.db.pool()
    listener = None
    try:
        listener = await pool.acquire()
        await listener.add_listener(NOTIFY_CHANNEL, on_notify)
    except Exception:
        log.warning("LISTEN unavailable; the %s outbox is polled every %ss", channel, poll_seconds)
        if listener is not None:
            await pool.release(listener)
        listener = None
    try:
        while not stop.is_set():
            wake.clear()
            try:
                while not stop.is_set():
                    drained = await drain(
                        app, channel, handle, worker=worker, topics=topics, limit=batch, lease=lease
                    )
                    if drained.failed or drained.claimed < batch:
                        break
            except Exception:
                log.exception("the %s outbox consumer failed; retrying", channel)
            waiter = asyncio.ensure_future(wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            stopper.cancel()
    finally:
        if listener is not None:
            try:
                await listener.remove_listener(NOTIFY_CHANNEL, on_notify)
            finally:
                await pool.release(listener)


async def purge(app: App, *, keep: timedelta = timedelta(days=7)) -> int:
    """Delete rows done, failed or expired longer than ``keep`` ago (a beat job)."""
    async with app.uow() as uow:
        rows = (
            await uow.conn.execute(
                (
                    "DELETE FROM outbox WHERE (done_at < now() - CAST(:keep AS interval)) "
                    "OR (failed_at < now() - CAST(:keep AS interval)) "
                    "OR (expires_at < now() - CAST(:keep AS interval)) RETURNING id"
                ),
                {"keep": keep},
            )
        ).all()
    return len(rows)
