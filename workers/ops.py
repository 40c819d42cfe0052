"""The worker's side of operating the game: its logging is the game's own (core.logs), its jobs are
counted by task and outcome (Celery's signals, in whichever pool process runs them), each job's
log lines carry its task and ids, and the main process serves /metrics, /healthz and /readyz on
METRICS_LISTEN once it is ready."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery.signals import (
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_revoked,
    task_success,
    worker_ready,
    worker_shutdown,
)

from core import logs, metrics

log = logging.getLogger("bounty.worker")

# kwargs of a task that name what its log lines are about
_ID_KWARGS = {
    "attempt_id": "attempt_id",
    "player_id": "player_id",
    "team_id": "team_id",
    "bounty_id": "round_id",
    "round_id": "round_id",
}
_running: dict[str, tuple[float, Any]] = {}  # task id -> (start, log ids token)
_server = None


@setup_logging.connect
def _logging(**_: Any) -> None:
    """Celery leaves the root logger alone: `bounty worker` and `bounty beat` configured it
    (core.logs). Started some other way (``celery -A workers.celery_app``), configure it here."""
    if not logs.is_configured():
        from core.settings import load_settings

        logs.configure(load_settings(), role=metrics.ROLE, redirect_output=True)


def _name(task: Any, sender: Any = None) -> str:
    return getattr(task, "name", None) or getattr(sender, "name", None) or "unknown"


@task_prerun.connect
def _job_started(task_id: str = "", task: Any = None, kwargs: dict | None = None, **_: Any) -> None:
    ids = {
        name: value
        for key, name in _ID_KWARGS.items()
        if isinstance(value := (kwargs or {}).get(key), (int, str))
    }
    token = logs.bind(task=_name(task), task_id=task_id, **ids)
    _running[task_id] = (time.perf_counter(), token)


@task_postrun.connect
def _job_ended(task_id: str = "", task: Any = None, **_: Any) -> None:
    started = _running.pop(task_id, None)
    if started is None:
        return
    metrics.JOB_SECONDS.labels(metrics.ROLE, _name(task)).observe(time.perf_counter() - started[0])
    try:
        logs.unbind(started[1])
    except ValueError:  # bound in another context (should not happen): leave it
        pass


@task_success.connect
def _job_succeeded(sender: Any = None, **_: Any) -> None:
    metrics.job_finished(_name(sender), "success")


@task_failure.connect
def _job_failed(sender: Any = None, **_: Any) -> None:
    metrics.job_finished(_name(sender), "failure")


@task_retry.connect
def _job_retried(sender: Any = None, **_: Any) -> None:
    metrics.job_finished(_name(sender), "retry")


@task_revoked.connect
def _job_revoked(request: Any = None, sender: Any = None, **_: Any) -> None:
    metrics.job_finished(_name(getattr(request, "task", None), sender), "revoked")


@worker_ready.connect
def _start_server(**_: Any) -> None:
    """/metrics, /healthz and /readyz in the worker's main process (after its pool started)."""
    global _server
    from core.settings import load_settings

    settings = load_settings()
    address = settings.metrics_address
    if address is None or not os.environ.get("DATABASE_URL"):
        return
    from core.infra.ops_http import OpsServer

    try:
        _server = OpsServer(
            host=address[0],
            port=address[1],
            role=metrics.ROLE,
            database_url=os.environ["DATABASE_URL"],
            redis_url=os.environ.get("REDIS_URL") or None,
        ).start()
    except OSError as exc:
        log.error("cannot serve metrics on %s: %s", settings.METRICS_LISTEN, exc)


@worker_shutdown.connect
def _stop_server(**_: Any) -> None:
    if _server is not None:
        _server.stop()
