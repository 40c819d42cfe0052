"""Percentiles and small counters shared by the bench's parts."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence


def percentile(samples: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile (``pct`` in 0..100) of ``samples``; None when there are none."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def latency_figures(prefix: str, seconds: Sequence[float]) -> dict[str, float | None]:
    """``{prefix}_p50_ms`` and ``{prefix}_p99_ms`` of samples given in seconds."""
    return {
        f"{prefix}_p50_ms": ms(percentile(seconds, 50)),
        f"{prefix}_p99_ms": ms(percentile(seconds, 99)),
    }


def rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None


def error_names(errors: Counter[str]) -> dict[str, int]:
    return dict(sorted(errors.items()))


async def open_loop_arrivals(
    rate_per_s: float, duration: float, arrival: Callable[[int, float], Awaitable[None]]
) -> float:
    """Start ``arrival(i, scheduled)`` at fixed times (``rate_per_s`` for ``duration`` seconds), whatever
    the earlier ones are doing, and wait for all; returns the loop time of the first arrival."""
    loop = asyncio.get_running_loop()
    tasks = []
    start = loop.time() + 0.05
    for i in range(int(rate_per_s * duration)):
        scheduled = start + i / rate_per_s
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(arrival(i, scheduled)))
    await asyncio.gather(*tasks)
    return start
