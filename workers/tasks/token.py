"""$100Bs token jobs: holdings refresh, the price, the monthly staking distribution, payouts.
Each is idempotent (safe to run twice, or after a worker died half-way) and calls a core service."""

from __future__ import annotations

from core.services.token import holdings, payouts, price, staking
from core.services.token.common import parse_month
from workers.celery_app import celery_app
from workers.runner import run_with_app


@celery_app.task(name="bounty.token.refresh_holdings", time_limit=300, soft_time_limit=280)
def refresh_holdings(address: str | None = None) -> int:
    """Refresh one wallet's holdings, or every linked wallet's that are older than the cache time."""

    async def go(app) -> int:
        if address is None:
            return await holdings.refresh_stale(app)
        await holdings.refresh(app, address)
        return 1

    return run_with_app(go)


@celery_app.task(name="bounty.token.record_price", time_limit=60, soft_time_limit=50)
def record_price() -> str | None:
    """Record the token's price from TOKEN_PRICE_URL (a failure is recorded too: the price turns stale)."""

    async def go(app) -> str | None:
        value = await price.record_price(app)
        return None if value is None else str(value)

    return run_with_app(go)


@celery_app.task(name="bounty.token.distribute", time_limit=900, soft_time_limit=870)
def distribute(month: str | None = None) -> str | None:
    """Distribute ``month`` (YYYY-MM), or last month when it is not yet (the beat, on the 1st)."""

    async def go(app) -> str | None:
        if month is None:
            done = await staking.distribute_due(app)
        else:
            done = await staking.distribute(app, parse_month(month), by="worker")
        return None if done is None else done.month

    return run_with_app(go)


@celery_app.task(name="bounty.token.pay_payout", time_limit=900, soft_time_limit=870)
def pay_payout(payout_id: int) -> str:
    """Pay one approved payout with the treasury keypair (never twice: see core.services.token.payouts)."""
    return run_with_app(lambda app: payouts.pay(app, payout_id))


@celery_app.task(name="bounty.token.resume_payouts", time_limit=900, soft_time_limit=870)
def resume_payouts() -> dict:
    """Try again every approved or in-flight payout that is due."""
    return run_with_app(payouts.resume)
