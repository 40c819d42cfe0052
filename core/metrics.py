"""The game's Prometheus metrics, and the thin hooks that move them (SPEC §11).

Every metric carries the process's ``role`` (``bot`` for `bounty run`, ``worker``) as a label. Names
follow Prometheus' conventions: counters end in ``_total``, durations are ``_seconds``, money is in
whole USDC (the ledger's micro-units divided by 10^6, as a float: metrics are for watching, never for
accounting). What is read from the database at scrape time (prize pools, the outbox, the last
`bounty check`) is in ``core.services.gauges``; this module only counts what this process did.

Importing it has no side effects beyond defining the metrics. The worker counts in several
processes (Celery's prefork pool): ``use_multiprocess`` makes every process write its counts to a
shared directory that the worker's main process serves (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import Counter, Histogram, values

from core.errors import BountyError, FeeChanged
from core.logs import bind

if TYPE_CHECKING:
    from core.services.attempts import Outcome

log = logging.getLogger(__name__)

T = TypeVar("T")

ROLE = "cli"

MICRO = 1_000_000

ATTEMPTS = Counter(
    "bounty_attempts",
    "Attempts confirmed by players, by outcome: won, rejected, refunded (the guardian failed), late "
    "(the round ended first), fee_changed (asked again at a higher fee), refused, error.",
    ["role", "outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "bounty_attempt_duration_seconds",
    "Time to pay and record a confirmed attempt, everything but the guardian's (the LLM's) own time.",
    ["role"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ATTEMPT_FEES = Counter(
    "bounty_attempt_fees_usdc",
    "Fees paid for attempts, in USDC (demo: a local demo game's credits).",
    ["role", "demo"],
)
GUARDIAN_SECONDS = Histogram(
    "bounty_guardian_duration_seconds",
    "How long the guardian took to answer, by provider (failures included).",
    ["role", "provider"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0),
)
GUARDIAN_ERRORS = Counter(
    "bounty_guardian_errors",
    "Guardian calls that failed, by provider and kind: timeout, unavailable (the model's API "
    "failed), error (anything else). Each such attempt is refunded.",
    ["role", "provider", "kind"],
)
JOBS = Counter(
    "bounty_jobs",
    "Celery jobs finished, by task and outcome: success, failure, retry, revoked.",
    ["role", "task", "outcome"],
)
JOB_SECONDS = Histogram(
    "bounty_job_duration_seconds",
    "How long Celery jobs ran, by task.",
    ["role", "task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)
PLATFORM_ERRORS = Counter(
    "bounty_platform_api_errors",
    "Failed calls to Discord's and Telegram's APIs, by kind: rate_limited (HTTP 429), server_error "
    "(5xx), client_error (other 4xx), network (no answer).",
    ["role", "platform", "kind"],
)
PLATFORM_REQUESTS = Counter(
    "bounty_platform_api_requests",
    "Calls to Discord's and Telegram's APIs that got an answer or failed on the way.",
    ["role", "platform"],
)


def set_role(role: str) -> None:
    """The process's role, a label on everything it counts (set before anything is counted)."""
    global ROLE
    ROLE = role


def use_multiprocess(directory: str) -> None:
    """Count in files under ``directory`` shared by this process and its children (the worker's
    pool). Must run before anything is counted; every metric here has labels, so its values are
    made on first use, after this."""
    os.makedirs(directory, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.get_value_class()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# --- attempts and the guardian ---------------------------------------------------------------------


@dataclass
class _GuardianClock:
    seconds: float = 0.0


_guardian_clock: contextvars.ContextVar[_GuardianClock | None] = contextvars.ContextVar(
    "bounty_guardian_clock", default=None
)


def count_attempt(outcome: str) -> None:
    """An attempt that ended before the guardian: ``fee_changed``, ``refused`` or ``error``."""
    ATTEMPTS.labels(ROLE, outcome).inc()


async def observe_attempt(
    confirmation: Awaitable[Outcome], *, started: float | None = None
) -> Outcome:
    """Await a confirmed attempt (``attempts.confirm_attempt``, or the answer of one paid since
    ``started``), counting its outcome and its time without the guardian's. A replay (the same
    confirmation again) counts nothing."""
    clock = _GuardianClock()
    token = _guardian_clock.set(clock)
    started = time.perf_counter() if started is None else started
    try:
        outcome = await confirmation
    except FeeChanged:
        ATTEMPTS.labels(ROLE, "fee_changed").inc()
        raise
    except BountyError:
        ATTEMPTS.labels(ROLE, "refused").inc()
        raise
    except Exception:
        ATTEMPTS.labels(ROLE, "error").inc()
        raise
    finally:
        _guardian_clock.reset(token)
    if outcome.replayed:
        return outcome
    elapsed = max(0.0, time.perf_counter() - started - clock.seconds)
    ATTEMPTS.labels(ROLE, outcome.status).inc()
    ATTEMPT_SECONDS.labels(ROLE).observe(elapsed)
    if outcome.status != "refunded":
        ATTEMPT_FEES.labels(ROLE, "true" if outcome.is_demo else "false").inc(outcome.fee / MICRO)
    bind(attempt_id=outcome.attempt_id, round_id=outcome.bounty_id)
    log.info(
        "attempt #%s (number %s) %s: fee %s, %.1f ms without the guardian",
        outcome.attempt_id,
        outcome.number,
        outcome.status,
        outcome.fee,
        elapsed * 1000,
    )
    return outcome


def guardian_answered(provider: str, seconds: float, error: str | None = None) -> None:
    """A guardian call ended (``error``: timeout, unavailable, error; None: it answered)."""
    GUARDIAN_SECONDS.labels(ROLE, provider).observe(seconds)
    if error is not None:
        GUARDIAN_ERRORS.labels(ROLE, provider, error).inc()
    clock = _guardian_clock.get()
    if clock is not None:
        clock.seconds += seconds


# --- platforms and jobs ----------------------------------------------------------------------------


def platform_response(platform: str, status: int) -> None:
    """An answer from a platform's API (``status``: the HTTP status)."""
    PLATFORM_REQUESTS.labels(ROLE, platform).inc()
    if status == 429:
        PLATFORM_ERRORS.labels(ROLE, platform, "rate_limited").inc()
    elif status >= 500:
        PLATFORM_ERRORS.labels(ROLE, platform, "server_error").inc()
    elif status >= 400:
        PLATFORM_ERRORS.labels(ROLE, platform, "client_error").inc()


def platform_unreachable(platform: str) -> None:
    """A call to a platform's API that got no answer (connection refused, reset, timed out)."""
    PLATFORM_REQUESTS.labels(ROLE, platform).inc()
    PLATFORM_ERRORS.labels(ROLE, platform, "network").inc()


def job_finished(task: str, outcome: str, seconds: float | None = None) -> None:
    JOBS.labels(ROLE, task, outcome).inc()
    if seconds is not None:
        JOB_SECONDS.labels(ROLE, task).observe(seconds)
