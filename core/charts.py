"""Charts as PNG bytes (matplotlib with the Agg backend, imported only when a chart is drawn)."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta

from core.money import USDC


def stats_chart(
    title: str,
    by_day: list[tuple[str, int, int]],
    pool: list[tuple[datetime, int]],
    *,
    now: datetime | None = None,
    demo: bool = False,
) -> bytes:
    """Attempts per day (bars) above the prize pool over time (a step line up to ``now``), as a PNG.

    Amounts are drawn in whole USDC (integer division): the chart shows, the ledger counts."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    attempts, pooled = figure.subplots(2, 1)
    figure.suptitle(title)

    # Each day's bar stands over that day (centred at noon), not across two days.
    days = [datetime.combine(date.fromisoformat(day), time(12)) for day, _, _ in by_day]
    counts = [n for _, n, _ in by_day]
    if days:
        attempts.bar(days, counts, color="#3b6fb6", width=0.8)
        attempts.set_xlim(min(days) - timedelta(days=1), max(days) + timedelta(days=1))
    else:
        attempts.text(
            0.5, 0.5, "no attempts yet", ha="center", va="center", transform=attempts.transAxes
        )
    attempts.set_title("Attempts per day")
    attempts.set_ylabel("attempts")
    attempts.yaxis.get_major_locator().set_params(integer=True)

    unit = "demo USDC" if demo else "USDC"
    if pool:
        times = [at for at, _ in pool]
        values = [balance // USDC.unit for _, balance in pool]
        if now is not None and now > times[-1]:  # the pool holds its last balance until now
            times.append(now)
            values.append(values[-1])
        pooled.step(times, values, where="post", color="#c98a1b")
        pooled.fill_between(times, values, step="post", alpha=0.2, color="#c98a1b")
        pad = max((times[-1] - times[0]) / 20, timedelta(hours=1))
        pooled.set_xlim(times[0] - pad, times[-1] + pad)
        pooled.set_ylim(bottom=0)
    else:
        pooled.text(
            0.5, 0.5, "no prize pool yet", ha="center", va="center", transform=pooled.transAxes
        )
    pooled.set_title("Prize pool over time")
    pooled.set_ylabel(unit)
    for axis in (attempts, pooled):
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        axis.xaxis.set_major_locator(locator)
        axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axis.grid(axis="y", alpha=0.3)

    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
