"""The guardian as the game calls it: whichever provider answers, its time and failures are counted
by provider (core.metrics), and its time is left out of the attempt's own latency."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from core import metrics
from core.ports.guardian import Guardian, GuardianRequest, GuardianUnavailable, Verdict


class MeasuredGuardian(Guardian):
    """Wraps a guardian; everything but ``judge`` is the wrapped one's (name, description...)."""

    def __init__(self, inner: Guardian) -> None:
        self.inner = inner

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def description(self) -> str:  # type: ignore[override]
        return self.inner.description

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def terms(self) -> dict:
        return self.inner.terms()

    async def judge(self, request: GuardianRequest) -> Verdict:
        started = time.perf_counter()
        error: str | None = "error"
        try:
            verdict = await self.inner.judge(request)
            error = None
            return verdict
        except asyncio.CancelledError:  # the attempt's GUARDIAN_TIMEOUT_SECONDS ran out
            error = "timeout"
            raise
        except TimeoutError:
            error = "timeout"
            raise
        except GuardianUnavailable:
            error = "unavailable"
            raise
        finally:
            metrics.guardian_answered(self.inner.name, time.perf_counter() - started, error)

    async def aclose(self) -> None:
        await self.inner.aclose()
