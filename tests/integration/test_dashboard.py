"""Every panel of docs/grafana-dashboard.json evaluated against /metrics scraped after a short game.

No Prometheus or Grafana runs here. The panels use a small part of PromQL (``sum``/``max``/``min``
with ``by``, ``rate``, ``increase``, ``histogram_quantile``, label matchers, a constant factor), so
this test evaluates exactly that part itself: ``rate`` and ``increase`` between two scrapes taken
before and after the game (as Prometheus would between two samples of the range), the rest as
PromQL defines it. Each panel must give a series with the values the game implies; the table is
printed (``pytest -s``) for the operators' guide and the closing note."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.services import checks
from tests.fakes import ScriptedGuardian
from tests.helpers import USDC, fund, open_round, player
from tests.integration.test_operations import _attempt, ops, scrape  # noqa: F401 (fixture)
from tests.promql import PromQL, Series

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def _show(series: Series) -> str:
    if not series:
        return "(no series)"
    return "; ".join(
        f"{{{', '.join(f'{k}={v}' for k, v in sorted(labels))}}} {value:.4g}"
        for labels, value in sorted(series.items(), key=lambda kv: sorted(kv[0]))
    )


async def test_every_dashboard_panel_has_its_series_after_a_short_game(app_factory, ops):  # noqa: F811
    app = await app_factory(guardian=ScriptedGuardian("reject", "fail", "reject", "approve"))
    await open_round(app)
    a, b = player("dash-a"), player("dash-b")
    await fund(app, a, 100 * USDC)
    await fund(app, b, 100 * USDC)
    server = ops()
    async with app.uow() as uow:  # the hourly job's check, recorded as the worker records it
        await checks.check_and_record(uow.conn, by="test", now=app.clock())
    before = await scrape(server.url)
    started = time.monotonic()
    outcomes = [await _attempt(app, p, text) for p, text in ((a, "one"), (b, "two"), (a, "three"))]
    after = await scrape(server.url)
    dt = time.monotonic() - started
    print(f"\n{len(after)} samples scraped; {dt:.2f} s between the two scrapes; {outcomes}")

    evaluate = PromQL(before, after, dt).evaluate
    results: dict[str, list[Series]] = {}
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        results[panel["title"]] = [evaluate(t["expr"]) for t in panel.get("targets", [])]
        for target, series in zip(panel.get("targets", []), results[panel["title"]], strict=True):
            print(f"{panel['title']}\n    {target['expr']}\n    = {_show(series)}")

    def one(title: str, i: int = 0, **labels: str) -> float:
        return results[title][i][frozenset(labels.items())]

    per_minute = 60 / dt
    title = "Attempts per minute by outcome"
    assert one(title, outcome="rejected") == pytest.approx(2 * per_minute)
    assert one(title, outcome="refunded") == pytest.approx(1 * per_minute)
    quantiles = results["Attempt latency without the guardian (p50, p90, p99)"]
    assert all(len(s) == 1 and 0 < next(iter(s.values())) < 60 for s in quantiles)
    assert one("Guardian latency p99 by provider", provider="scripted") > 0
    errors = "Guardian errors per minute (each attempt refunded)"
    assert one(errors, provider="scripted", kind="unavailable") == pytest.approx(per_minute)
    pools = results["Prize pool of open rounds (USDC)"][0]
    assert len(pools) == 1 and next(iter(pools.values())) > 500  # the seed and part of two fees
    fees = one("Fees paid per hour (USDC, real money)")
    async with app.db.autocommit() as conn:  # two fees kept, one refunded
        kept = (
            await conn.execute("SELECT sum(fee) FROM attempts WHERE status <> 'refunded'")
        ).scalar_one()
    assert fees == pytest.approx(int(kept) / USDC * 3600 / dt)
    assert results["Outbox depth by channel and topic"][0]
    assert results["Oldest waiting outbox row (age)"][0]
    assert one("Last bounty check") == 1
    assert 0 <= one("Age of the last bounty check") < 600
    assert one("Database reachable from each process", role="bot") == 1
    # Jobs and platform calls happen in the worker and the bots: their panels are read (parsed and
    # evaluated) here, and checked against a real worker's scrape in test_operations.py.
    assert {"Job failures per hour by task", "Platform API errors per minute (429s apart)"} <= set(
        results
    )
