"""Operating it (SPEC §11): /metrics scraped over HTTP while attempts run, /readyz following the
database and the platform connections, the worker's job metrics from a real Celery worker (its
prefork pool), and the hourly `bounty check` job with its result on /metrics."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from core import health, metrics
from core.commands import find, run_command, run_confirmation
from core.db.migrate import upgrade
from core.errors import InsufficientFunds
from core.infra.ops_http import OpsServer
from core.services import views
from tests.fakes import ScriptedGuardian
from tests.helpers import PASSPHRASE, USDC, fund, open_round, player
from tests.integration.test_processes import ROOT, bounty_env
from tests.promql import PromQL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except HTTPError as err:
        return err.code, err.read().decode()


async def scrape(server_url: str) -> dict[tuple[str, frozenset], float]:
    """One scrape of /metrics: {(sample name, labels): value}."""
    status, body = await asyncio.to_thread(get, f"{server_url}/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def ops(app_factory, pg_url, redis_url):
    started: list[OpsServer] = []
    role = metrics.ROLE
    metrics.set_role("bot")  # as `bounty run` says of itself

    def start(**kwargs) -> OpsServer:
        base = {
            "host": "127.0.0.1",
            "port": 0,
            "role": "bot",
            "database_url": pg_url,
            "redis_url": redis_url,
        }
        base.update(kwargs)
        started.append(OpsServer(**base).start())
        return started[-1]

    yield start
    for server in started:
        await asyncio.to_thread(server.stop)
    metrics.set_role(role)


async def _attempt(app, actor, message: str) -> str:
    quote = await run_command(app, actor, find("attempt"), {"message": message})
    reply = await run_confirmation(app, actor, quote.confirm.token, True)
    return reply.title or ""


async def test_metrics_move_by_what_the_attempts_did(app_factory, ops):
    app = await app_factory(guardian=ScriptedGuardian("reject", "fail", "reject", "approve"))
    bounty_id = await open_round(app)
    a, b = player("metrics-a"), player("metrics-b")
    await fund(app, a, 100 * USDC)
    await fund(app, b, 100 * USDC)
    server = ops()
    before = await scrape(server.url)
    await _attempt(app, a, "first")  # rejected
    await _attempt(app, b, "second")  # the guardian fails: refunded
    await _attempt(app, a, "third")  # rejected
    mid = await scrape(server.url)
    pool_mid = value(
        mid,
        "bounty_prize_pool_usdc",
        role="bot",
        round=str(bounty_id),
        status="active",
        demo="false",
    )
    status = await views.status(app, a)
    assert pool_mid == status.pool / USDC  # the gauge is the round's pool as players see it
    await _attempt(app, b, "fourth")  # approved: the round is won
    after = await scrape(server.url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("bounty_attempts_total", role="bot", outcome="rejected") == 2
    assert moved("bounty_attempts_total", role="bot", outcome="refunded") == 1
    assert moved("bounty_attempts_total", role="bot", outcome="won") == 1
    assert moved("bounty_attempt_duration_seconds_count", role="bot") == 4
    assert moved("bounty_guardian_duration_seconds_count", role="bot", provider="scripted") == 4
    assert (
        moved("bounty_guardian_errors_total", role="bot", provider="scripted", kind="unavailable")
        == 1
    )
    async with app.engine.connect() as conn:
        paid = (
            await conn.execute(
                text("SELECT COALESCE(sum(fee), 0) FROM attempts WHERE status <> 'refunded'")
            )
        ).scalar_one()
    assert moved("bounty_attempt_fees_usdc_total", role="bot", demo="false") == pytest.approx(
        int(paid) / USDC
    )
    # the won round is no longer open; its announcements wait in the outbox for the bots
    assert not [
        k for k in after if k[0] == "bounty_prize_pool_usdc" and ("round", str(bounty_id)) in k[1]
    ]
    assert (
        value(after, "bounty_outbox_depth", role="bot", channel="discord", topic="announcement")
        >= 1
    )
    assert value(after, "bounty_database_up", role="bot") == 1


async def test_a_refused_confirmation_is_counted_apart_and_a_replay_not_at_all(app, ops):
    await open_round(app)
    me = player("metrics-twice")
    await fund(app, me, 15 * USDC)  # enough for one 10 USDC attempt, not two
    server = ops()
    before = await scrape(server.url)
    first = await run_command(app, me, find("attempt"), {"message": "hello"})
    second = await run_command(app, me, find("attempt"), {"message": "hello again"})
    await run_confirmation(app, me, first.confirm.token, True)
    await run_confirmation(app, me, first.confirm.token, True)  # the same button pressed again
    with pytest.raises(InsufficientFunds):
        await run_confirmation(app, me, second.confirm.token, True)
    after = await scrape(server.url)

    def moved(outcome: str) -> float:
        return value(after, "bounty_attempts_total", role="bot", outcome=outcome) - value(
            before, "bounty_attempts_total", role="bot", outcome=outcome
        )

    assert (moved("rejected"), moved("refused")) == (1, 1)


async def test_readyz_follows_the_database_and_the_platform(ops, redis_url, tmp_path):
    from core.infra.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(tmp_path)
    url = pg.start()
    await asyncio.to_thread(upgrade, url)
    try:
        server = ops(database_url=url)
        status, body = await asyncio.to_thread(get, f"{server.url}/readyz")
        assert status == 200 and json.loads(body)["checks"] == {"database": "ok", "redis": "ok"}
        assert (await asyncio.to_thread(get, f"{server.url}/healthz"))[0] == 200

        connected = {"now": False}
        with health.platform_probe("discord", lambda: connected["now"]):
            status, body = await asyncio.to_thread(get, f"{server.url}/readyz")
            assert status == 503 and json.loads(body)["checks"]["discord"] == "down: not connected"
            connected["now"] = True
            assert (await asyncio.to_thread(get, f"{server.url}/readyz"))[0] == 200

        pg.stop()  # the database goes away
        status, body = await asyncio.to_thread(get, f"{server.url}/readyz")
        checks = json.loads(body)["checks"]
        assert status == 503 and checks["database"].startswith("down") and checks["redis"] == "ok"
        scraped = await scrape(server.url)  # /metrics still answers, and says the database is down
        assert value(scraped, "bounty_database_up", role="bot") == 0
        assert (await asyncio.to_thread(get, f"{server.url}/healthz"))[0] == 200  # alive all along

        url_again = pg.start()  # and comes back
        assert url_again == url
        status, body = await asyncio.to_thread(get, f"{server.url}/readyz")
        assert status == 200, body
        assert value(await scrape(server.url), "bounty_database_up", role="bot") == 1
    finally:
        pg.stop()


def _wait_for(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} never answered")


async def test_the_worker_counts_its_jobs_and_exports_the_hourly_check(
    app, pg_url, redis_url, tmp_path
):
    await open_round(app)
    a = player("worker-metrics")
    await fund(app, a, 30 * USDC)
    port = free_port()
    env = bounty_env(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        BOUNTY_DATA_DIR=str(tmp_path),
        METRICS_LISTEN=f"127.0.0.1:{port}",
        OFFLINE_GUARDIAN_PASSPHRASE=PASSPHRASE,
    )
    # the default pool (prefork, 2 processes): jobs are counted in the pool, served by the main process
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(_wait_for, f"{base}/healthz", time.monotonic() + 120)
        from workers.celery_app import celery_app

        celery_app.conf.broker_url = celery_app.conf.result_backend = redis_url
        checked = celery_app.send_task("bounty.check.run")
        assert (await asyncio.to_thread(checked.get, timeout=90))["failed"] == []
        for _ in range(2):
            purged = celery_app.send_task("bounty.outbox.purge")
            await asyncio.to_thread(purged.get, timeout=60)
        failing = celery_app.send_task("bounty.token.pay_payout", kwargs={"payout_id": 987654})
        with pytest.raises(Exception):  # noqa: B017 - no such payout: the job fails
            await asyncio.to_thread(failing.get, timeout=60)
        scraped = await scrape(base)
        assert (
            value(
                scraped,
                "bounty_jobs_total",
                role="worker",
                task="bounty.check.run",
                outcome="success",
            )
            == 1
        )
        assert (
            value(
                scraped,
                "bounty_jobs_total",
                role="worker",
                task="bounty.outbox.purge",
                outcome="success",
            )
            == 2
        )
        assert (
            value(
                scraped,
                "bounty_jobs_total",
                role="worker",
                task="bounty.token.pay_payout",
                outcome="failure",
            )
            == 1
        )
        assert (
            value(
                scraped,
                "bounty_job_duration_seconds_count",
                role="worker",
                task="bounty.outbox.purge",
            )
            == 2
        )
        assert value(scraped, "bounty_check_ok", role="worker") == 1
        assert value(scraped, "bounty_check_failed_checks", role="worker") == 0
        # the dashboard's job panel on the worker's scrape (its counters started at zero)
        panel = 'sum by (task) (increase(bounty_jobs_total{outcome="failure"}[1h]))'
        assert PromQL({}, scraped, 1.0).evaluate(panel) == {
            frozenset({("task", "bounty.token.pay_payout")}): 1.0
        }
        assert ("bounty_check_age_seconds", frozenset({("role", "worker")})) in scraped
        status, body = await asyncio.to_thread(get, f"{base}/readyz")
        assert status == 200 and json.loads(body)["role"] == "worker"

        # a broken ledger: the hourly job fails the check, says so at ERROR, and /metrics shows it
        async with app.engine.begin() as conn:
            await conn.execute(
                text("UPDATE accounts SET balance = balance + 1 WHERE kind = 'player'")
            )
        broken = celery_app.send_task("bounty.check.run")
        assert (
            "guarded balances equal their entries"
            in (await asyncio.to_thread(broken.get, timeout=90))["failed"]
        )
        scraped = await scrape(base)
        assert value(scraped, "bounty_check_ok", role="worker") == 0
        assert value(scraped, "bounty_check_failed_checks", role="worker") >= 1
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(worker.communicate, timeout=60)
        async with app.engine.begin() as conn:
            await conn.execute(
                text("UPDATE accounts SET balance = balance - 1 WHERE kind = 'player'")
            )
    assert "ERROR core.services.checks: bounty check FAILED" in out
    assert "guarded balances equal their entries" in out
