"""/metrics, /healthz and /readyz on METRICS_LISTEN (SPEC §11), for the bot process and the worker.

The server runs in a thread of its own with its own event loop and its own database connection, so
it answers however busy the process's own work is, and a scrape never takes a connection from the
game's pool. /healthz says the process is alive (for the bot: its event loop still runs callbacks);
/readyz says the database, Redis and the platform connections are up (503 with what is not).
/metrics is prometheus_client's text format: what this process (or, for the worker, its pool's
processes) counted, and what is read from the database at scrape time (core.services.gauges).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core import health, metrics
from core.logs import redact

log = logging.getLogger("bounty.ops")

CHECK_TIMEOUT = 3.0
SAMPLE_TIMEOUT = 5.0


class SampledGauges(Collector):
    """The database's figures of the last scrape, as gauges with this process's role."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.sample: Any = None  # core.services.gauges.Sample, or None when the read failed
        self.database_up = False

    def collect(self):
        role = self.role
        up = GaugeMetricFamily(
            "bounty_database_up",
            "1 when this scrape could read the game's database, else 0.",
            labels=["role"],
        )
        up.add_metric([role], 1.0 if self.database_up else 0.0)
        yield up
        sample = self.sample
        if sample is None or not self.database_up:
            return
        pool = GaugeMetricFamily(
            "bounty_prize_pool_usdc",
            "The prize pool of each open (active or paused) round, in USDC.",
            labels=["role", "round", "status", "demo"],
        )
        for p in sample.pools:
            pool.add_metric(
                [role, str(p.round_id), p.status, "true" if p.demo else "false"],
                p.amount / metrics.MICRO,
            )
        yield pool
        depth = GaugeMetricFamily(
            "bounty_outbox_depth",
            "Outbox rows waiting to be done, by channel (celery, discord, telegram, console) and topic.",
            labels=["role", "channel", "topic"],
        )
        age = GaugeMetricFamily(
            "bounty_outbox_oldest_age_seconds",
            "Age of the oldest outbox row still waiting, by channel and topic.",
            labels=["role", "channel", "topic"],
        )
        failed = GaugeMetricFamily(
            "bounty_outbox_failed",
            "Outbox rows given up on (after their retries), by channel and topic, until purged.",
            labels=["role", "channel", "topic"],
        )
        for k in sample.outbox:
            depth.add_metric([role, k.channel, k.topic], k.waiting)
            age.add_metric([role, k.channel, k.topic], k.oldest_age_seconds)
            failed.add_metric([role, k.channel, k.topic], k.failed)
        yield depth
        yield age
        yield failed
        check = sample.check
        if check is None:
            return
        ok = GaugeMetricFamily(
            "bounty_check_ok",
            "1 when the last `bounty check` passed every check, 0 when any failed.",
            labels=["role"],
        )
        ok.add_metric([role], 1.0 if check.ok else 0.0)
        yield ok
        broken = GaugeMetricFamily(
            "bounty_check_failed_checks",
            "How many checks the last `bounty check` failed.",
            labels=["role"],
        )
        broken.add_metric([role], len(check.failed))
        yield broken
        when = GaugeMetricFamily(
            "bounty_check_timestamp_seconds",
            "When the last `bounty check` ran (Unix time).",
            labels=["role"],
        )
        when.add_metric([role], check.at.timestamp())
        yield when
        age_check = GaugeMetricFamily(
            "bounty_check_age_seconds",
            "How long ago the last `bounty check` ran, at this scrape.",
            labels=["role"],
        )
        age_check.add_metric([role], max(0.0, (sample.at - check.at).total_seconds()))
        yield age_check


class OpsServer:
    """``start()`` binds host:port (raises if it cannot) and serves until ``stop()``."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        role: str,
        database_url: str,
        redis_url: str | None,
        alive: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.role = role
        self.database_url = database_url
        self.redis_url = redis_url
        self._alive = alive
        disable_created_metrics()  # the *_created series only double what a scrape needs
        self._gauges = SampledGauges(role)
        self._sampled = CollectorRegistry(auto_describe=True)
        self._sampled.register(self._gauges)
        if metrics.multiprocess_dir():
            self._base = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._base)
            ProcessCollector(registry=self._base)
        else:
            self._base = REGISTRY
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> OpsServer:
        self._thread = threading.Thread(target=self._main, name="ops-http", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error
        log.info("metrics and health on %s (/metrics, /healthz, /readyz)", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        web_app = web.Application()
        web_app.router.add_get("/metrics", self._metrics)
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            if self.port == 0:  # an ephemeral port: say which
                self.port = int(runner.addresses[0][1])
            self._started.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _read(self, sample):
        """One connection per scrape: nothing to keep alive (or to complain) while the database is
        away, and nothing taken from the game's pool."""
        import asyncpg

        from core.db.raw import Conn, Row, asyncpg_dsn

        raw = await asyncpg.connect(
            asyncpg_dsn(self.database_url), timeout=SAMPLE_TIMEOUT, record_class=Row
        )
        try:
            await raw.set_type_codec(
                "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
            return await sample(Conn(raw))
        finally:
            await raw.close(timeout=SAMPLE_TIMEOUT)

    async def _healthz(self, request: web.Request) -> web.Response:
        alive = True
        if self._alive is not None:
            try:
                alive = await asyncio.wait_for(self._alive(), CHECK_TIMEOUT)
            except Exception:
                alive = False
        return web.Response(
            status=200 if alive else 503, text="ok\n" if alive else "not responding\n"
        )

    async def _readyz(self, request: web.Request) -> web.Response:
        checks: dict[str, str] = {}

        async def run(name: str, check: Awaitable[None]) -> None:
            try:
                await asyncio.wait_for(check, CHECK_TIMEOUT)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = redact(f"down: {type(exc).__name__}: {exc}".strip())[:300]

        jobs = [run("database", health.database_up(self.database_url, CHECK_TIMEOUT))]
        if self.redis_url:
            jobs.append(run("redis", health.redis_up(self.redis_url, CHECK_TIMEOUT)))
        await asyncio.gather(*jobs)
        for name, connected in health.platform_states().items():
            checks[name] = "ok" if connected else "down: not connected"
        ready = all(v == "ok" for v in checks.values())
        return web.Response(
            status=200 if ready else 503,
            content_type="application/json",
            text=json.dumps({"ready": ready, "role": self.role, "checks": checks}) + "\n",
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        from core.services.gauges import sample

        try:
            self._gauges.sample = await asyncio.wait_for(self._read(sample), SAMPLE_TIMEOUT)
            self._gauges.database_up = True
        except Exception as exc:
            self._gauges.database_up = False
            log.warning("metrics could not read the database: %s", type(exc).__name__)
        body = generate_latest(self._base) + generate_latest(self._sampled)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
