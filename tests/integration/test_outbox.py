"""The outbox on real PostgreSQL: written with what caused it, claimed by one consumer at a time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from core.services import announcements, outbox


async def _rows(app) -> list:
    async with app.engine.connect() as conn:
        return (await conn.execute(text("SELECT * FROM outbox ORDER BY id"))).all()


async def test_a_rolled_back_transaction_leaves_no_work(app):
    with pytest.raises(RuntimeError):
        async with app.uow() as uow:
            await outbox.enqueue_job(uow.conn, "bounty.test.job", x=1)
            raise RuntimeError("the attempt failed")
    assert await _rows(app) == []
    async with app.uow() as uow:
        await outbox.enqueue_job(uow.conn, "bounty.test.job", x=1)
    (row,) = await _rows(app)
    assert (row.topic, row.channel, row.payload) == (
        "job",
        "celery",
        {"name": "bounty.test.job", "kwargs": {"x": 1}},
    )


async def test_the_same_key_is_work_once(app):
    async with app.uow() as uow:
        first = await outbox.enqueue_job(uow.conn, "bounty.test.job", key="embed:7", attempt_id=7)
        second = await outbox.enqueue_job(uow.conn, "bounty.test.job", key="embed:7", attempt_id=7)
    assert first is not None and second is None
    assert len(await _rows(app)) == 1


async def test_jobs_enqueued_together_are_each_work_once_and_wake_the_relay_once(app):
    """``enqueue_jobs`` (the attempt path's jobs in one statement) keeps what ``enqueue_job``
    promises: the caller's transaction, one row per key, one notification when there is news."""
    pool = await app.db.pool()
    woken: list[str] = []
    async with pool.acquire() as listener:

        def wake(*args) -> None:
            woken.append(args[-1])

        await listener.add_listener(outbox.NOTIFY_CHANNEL, wake)
        with pytest.raises(RuntimeError):
            async with app.uow() as uow:
                await outbox.enqueue_jobs(uow.conn, [("bounty.test.job", "a:1", {"x": 1})])
                raise RuntimeError("the verdict failed")
        async with app.uow() as uow:
            jobs = [
                ("bounty.test.job", "a:1", {"x": 1}),
                ("bounty.test.other", "b:1", {"y": [1, 2]}),
                ("bounty.test.job", "a:1", {"x": 1}),  # the same key twice in one call
            ]
            assert await outbox.enqueue_jobs(uow.conn, jobs) == 2
        async with app.uow() as uow:  # asked again: nothing new, no wake-up
            assert await outbox.enqueue_jobs(uow.conn, jobs[:2]) == 0
        await asyncio.sleep(0.2)
        await listener.remove_listener(outbox.NOTIFY_CHANNEL, wake)
    rows = await _rows(app)
    assert [(r.dedupe_key, r.payload) for r in rows] == [
        ("a:1", {"name": "bounty.test.job", "kwargs": {"x": 1}}),
        ("b:1", {"name": "bounty.test.other", "kwargs": {"y": [1, 2]}}),
    ]
    assert woken == ["celery"]


async def test_concurrent_consumers_never_get_the_same_row(app):
    async with app.uow() as uow:
        for i in range(60):
            await outbox.put(uow.conn, "notice", "discord", {"n": i})
    seen: list[int] = []

    async def consumer(name: str) -> None:
        while True:
            items = await outbox.claim(app, "discord", worker=name, limit=7)
            if not items:
                return
            for item in items:
                seen.append(item.payload["n"])
                await asyncio.sleep(0)
                await outbox.complete(app, item.id)

    await asyncio.gather(*(consumer(f"c{i}") for i in range(4)))
    assert sorted(seen) == list(range(60))
    assert all(r.done_at is not None for r in await _rows(app))


async def test_a_lease_that_ran_out_is_claimed_again_and_a_failure_waits(app):
    async with app.uow() as uow:
        await outbox.put(uow.conn, "notice", "telegram", {"n": 1})
    (item,) = await outbox.claim(app, "telegram", worker="dies", lease=timedelta(milliseconds=50))
    assert await outbox.claim(app, "telegram", worker="other") == []  # still leased
    await asyncio.sleep(0.2)
    (again,) = await outbox.claim(app, "telegram", worker="other")
    assert again.id == item.id and again.attempts == 2
    await outbox.release(app, again, "Forbidden: bot was blocked")
    assert await outbox.claim(app, "telegram", worker="other") == []  # waits its backoff (2 s)
    (row,) = await _rows(app)
    assert row.last_error == "Forbidden: bot was blocked" and row.failed_at is None


async def test_undeliverable_work_fails_at_once_and_the_batch_goes_on(app):
    async with app.uow() as uow:
        for n in range(3):
            await outbox.put(uow.conn, "notice", "discord", {"n": n})
    sent = []

    async def handle(item: outbox.OutboxItem) -> None:
        if item.payload["n"] == 1:
            raise outbox.Undeliverable("the channel is gone")
        sent.append(item.payload["n"])

    drained = await outbox.drain(app, "discord", handle, worker="w")
    assert (drained.claimed, drained.done, drained.failed) == (3, 2, False)
    assert sent == [0, 2]
    rows = await _rows(app)
    assert rows[1].failed_at is not None and rows[1].last_error.startswith("undeliverable")


async def test_a_failure_stops_the_batch_and_hands_back_the_rest_untried(app):
    async with app.uow() as uow:
        for n in range(4):
            await outbox.put(uow.conn, "notice", "discord", {"n": n})

    async def handle(item: outbox.OutboxItem) -> None:
        if item.payload["n"] == 1:
            raise ConnectionError("Discord is down")

    drained = await outbox.drain(app, "discord", handle, worker="w")
    assert (drained.done, drained.failed) == (1, True)
    rest = await outbox.claim(app, "discord", worker="w2")
    assert [i.payload["n"] for i in rest] == [2, 3] and all(i.attempts == 1 for i in rest)


async def test_news_older_than_its_ttl_is_not_sent(app):
    async with app.uow() as uow:
        await outbox.put(
            uow.conn, "announcement", "console", {"n": 1}, ttl=timedelta(milliseconds=1)
        )
    await asyncio.sleep(0.05)
    assert await outbox.claim(app, "console", worker="w") == []


async def test_each_platform_gets_each_announcement_once_with_two_consumers(app):
    """Two bot processes of one platform (two shards, two webhook replicas) share the work."""
    async with app.uow() as uow:
        for i in range(15):
            await announcements.publish(uow.conn, "news", f"News {i}", "body")
    got: dict[str, list[str]] = {"a": [], "b": []}
    stop = asyncio.Event()

    def sender(name: str):
        async def send(row: announcements.AnnouncementRow) -> None:
            got[name].append(row.title)
            await asyncio.sleep(0.001)

        return send

    consumers = [
        asyncio.create_task(
            announcements.run_announcer(app, "discord", sender(n), stop, poll_seconds=0.05)
        )
        for n in got
    ]
    for _ in range(200):
        if len(got["a"]) + len(got["b"]) >= 15:
            break
        await asyncio.sleep(0.02)
    async with app.uow() as uow:  # one more while both run: woken by NOTIFY
        await announcements.publish(uow.conn, "news", "News 15", "body")
    for _ in range(200):
        if len(got["a"]) + len(got["b"]) >= 16:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.gather(*consumers)
    titles = got["a"] + got["b"]
    assert sorted(titles) == sorted(f"News {i}" for i in range(16))  # each exactly once
    telegram = await outbox.claim(app, "telegram", worker="t", limit=100)
    assert len(telegram) == 16  # the other platform's copies are untouched


async def test_purge_keeps_what_is_recent_or_waiting(app):
    async with app.uow() as uow:
        old = await outbox.put(uow.conn, "notice", "discord", {"n": 1})
        await outbox.put(uow.conn, "notice", "discord", {"n": 2})
    await outbox.complete(app, old)
    async with app.engine.begin() as conn:
        await conn.execute(
            text("UPDATE outbox SET done_at = now() - interval '8 days' WHERE id = :id"),
            {"id": old},
        )
    assert await outbox.purge(app) == 1
    assert [r.payload["n"] for r in await _rows(app)] == [2]
