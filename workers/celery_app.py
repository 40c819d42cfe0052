"""The Celery application: broker and backend are the game's Redis; tasks live in workers/tasks/."""

from __future__ import annotations

import os
import pkgutil

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_ready, worker_shutdown

import workers.tasks
from core.settings import SettingsError, load_settings

# Every module of workers/tasks/ is a job family; a new one is picked up without touching this file.
TASK_MODULES = sorted(
    f"workers.tasks.{m.name}" for m in pkgutil.iter_modules(workers.tasks.__path__)
)

try:
    _settings = load_settings()
    VISIBILITY_TIMEOUT = _settings.JOB_VISIBILITY_TIMEOUT_SECONDS
except SettingsError:  # the entry points report bad settings themselves, before starting Celery
    VISIBILITY_TIMEOUT = 900

celery_app = Celery("bounty", include=TASK_MODULES)
celery_app.conf.update(
    broker_url=os.environ.get("REDIS_URL") or "redis://localhost:6379/0",
    result_backend=os.environ.get("REDIS_URL") or "redis://localhost:6379/0",
    task_acks_late=True,  # a worker killed mid-task leaves the task for another
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # Redis away for minutes: the worker waits for it, never gives up
    # A task taken by a worker that died (SIGKILL, a lost machine) is given to another after this;
    # every task's time limit is shorter. Redis's own restore sweep looks every few seconds.
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "unacked_restore_interval": max(1, min(10, VISIBILITY_TIMEOUT // 5)),
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 5,
    },
    timezone="UTC",
    beat_schedule={
        "recover-stale-attempts": {"task": "bounty.attempts.recover_stale", "schedule": 60.0},
        "end-inactive-rounds": {"task": "bounty.rounds.end_inactive", "schedule": 60.0},
        # the $100Bs token: holdings older than the cache, the price, payouts, and the month's staking
        # pool every hour of the 1st (a no-op once last month is distributed)
        "token-refresh-holdings": {"task": "bounty.token.refresh_holdings", "schedule": 60.0},
        "token-record-price": {"task": "bounty.token.record_price", "schedule": 300.0},
        "token-resume-payouts": {"task": "bounty.token.resume_payouts", "schedule": 120.0},
        "token-distribute-staking": {
            "task": "bounty.token.distribute",
            "schedule": crontab(minute=5, hour="*", day_of_month="1"),
        },
        "memory-catch-up": {"task": "bounty.memory.catch_up", "schedule": 60.0},
        "purge-outbox": {
            "task": "bounty.outbox.purge",
            "schedule": 3600.0,
        },  # rows done over a week ago
        # `bounty check` every hour: its result is on /metrics, a failure is logged at ERROR
        "bounty-check": {"task": "bounty.check.run", "schedule": 3600.0},
    },
)

import workers.ops  # noqa: E402, F401 - logging, job metrics and the metrics server, by Celery's signals

_relay = None


@worker_ready.connect
def _start_relay(**_: object) -> None:
    """Every worker relays the outbox's jobs to Celery (workers/relay.py says why here)."""
    global _relay
    if os.environ.get("DATABASE_URL") and os.environ.get("BOUNTY_OUTBOX_RELAY", "1") != "0":
        from workers.relay import Relay

        _relay = Relay(celery_app)
        _relay.start()


@worker_shutdown.connect
def _stop_relay(**_: object) -> None:
    if _relay is not None:
        _relay.stop()
