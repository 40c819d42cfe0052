"""The outbox relay: hands the "celery" outbox rows (jobs written in the same transaction as what
caused them) to Celery through Redis and marks them sent.

It runs in every worker's main process, in a thread of its own, started when the worker is ready
and stopped with it. In the worker rather than in beat: beat must run as a single process and is a
scheduler, while workers are what a deployment scales and restarts; with several workers, several
relays claim rows with ``FOR UPDATE SKIP LOCKED``, so each row is handed over by one of them, and
jobs keep flowing while beat is down. A row is marked sent after Redis accepted it; a relay killed
in between sends it again later (same task id ``outbox-<row id>``), which the idempotent tasks absorb.

Redis being down is not the row's failure: the rows are handed back untried (no attempt counted,
no backoff of their own), the relay waits 1, 2, 4 ... at most ``BROKER_WAIT_MAX`` seconds and tries
again, so every committed job goes out within seconds of Redis coming back, however long it was away.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from datetime import timedelta
from typing import Any

from core.app import App, bootstrap
from core.services import outbox
from core.settings import load_settings

log = logging.getLogger("bounty.relay")

BATCH = 50
LEASE = timedelta(seconds=60)
POLL_SECONDS = 2.0
BROKER_WAIT_MAX = 5.0


def broker_errors() -> tuple[type[BaseException], ...]:
    import kombu.exceptions
    import redis.exceptions

    return (
        kombu.exceptions.OperationalError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        ConnectionError,
        OSError,
        TimeoutError,
    )


class Relay:
    def __init__(self, celery_app: Any, database_url: str | None = None) -> None:
        self.celery = celery_app
        self.database_url = database_url or os.environ["DATABASE_URL"]
        self.sent = 0
        self.broker_down = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="outbox-relay", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.run(self._run_thread())

    async def _run_thread(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        settings = load_settings().model_copy(update={"ENABLE_ENHANCED_CONTEXT": False})
        app = bootstrap(settings, self.database_url, pool_size=3)
        try:
            await self.run(app, self._stop)
        except Exception:
            log.exception("the outbox relay stopped")
        finally:
            await app.aclose()

    def _send(self, item: outbox.OutboxItem) -> None:
        payload = item.payload
        self.celery.send_task(
            payload["name"],
            kwargs=payload.get("kwargs") or {},
            task_id=f"outbox-{item.id}",
            retry=False,
        )

    async def run(self, app: App, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set: woken by NOTIFY at once, polling every POLL_SECONDS."""
        worker = outbox.consumer_name("relay")
        errors = broker_errors()
        wake = asyncio.Event()

        def on_notify(_conn: object, _pid: object, _channel: object, payload: str) -> None:
            if payload == outbox.CELERY:
                wake.set()

        pool = await app.db.pool()
        listener = await pool.acquire()
        await listener.add_listener(outbox.NOTIFY_CHANNEL, on_notify)
        broker_wait = 0.0
        log.info("outbox relay %s started", worker)
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    claimed, down = await self._batch(app, worker, errors)
                except Exception:
                    log.exception("the outbox relay failed; retrying")
                    claimed, down = 0, True
                if down:
                    broker_wait = min(BROKER_WAIT_MAX, max(1.0, broker_wait * 2))
                    await _wait(stop, None, broker_wait)
                    continue
                broker_wait = 0.0
                if claimed == BATCH:
                    continue
                await _wait(stop, wake, POLL_SECONDS)
        finally:
            try:
                await listener.remove_listener(outbox.NOTIFY_CHANNEL, on_notify)
            finally:
                await pool.release(listener)
            log.info("outbox relay %s stopped after handing over %d jobs", worker, self.sent)

    async def _batch(
        self, app: App, worker: str, errors: tuple[type[BaseException], ...]
    ) -> tuple[int, bool]:
        items = await outbox.claim(
            app, outbox.CELERY, worker=worker, topics=("job",), limit=BATCH, lease=LEASE
        )
        for i, item in enumerate(items):
            name = item.payload.get("name") if isinstance(item.payload, dict) else None
            if name not in self.celery.tasks:
                await outbox.release(app, item, f"no such task: {name!r}", retry=False)
                continue
            try:
                await asyncio.to_thread(self._send, item)
            except errors as exc:
                await outbox.unclaim(app, items[i:])
                if not self.broker_down:  # once per outage, not once per retry
                    log.warning(
                        "Redis is unavailable (%s: %s); jobs wait in the outbox until it is back",
                        type(exc).__name__,
                        exc,
                    )
                self.broker_down = True
                return len(items), True
            await outbox.complete(app, item.id)
            self.sent += 1
            if self.broker_down:
                log.info("Redis is back: the outbox relay hands jobs over again")
                self.broker_down = False
        return len(items), False


async def _wait(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    waiters = {asyncio.ensure_future(stop.wait())}
    if wake is not None:
        waiters.add(asyncio.ensure_future(wake.wait()))
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        w.cancel()
