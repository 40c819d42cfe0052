"""`bounty check` every hour: the same checks as the command, its result kept for /metrics, and a
failure logged at ERROR."""

from __future__ import annotations

from core.services.checks import check_and_record
from workers.celery_app import celery_app
from workers.runner import run_with_app


@celery_app.task(name="bounty.check.run", time_limit=900, soft_time_limit=870)
def run_check() -> dict:
    """Run every ledger and token check on the live database; returns what passed and what failed."""

    async def go(app) -> dict:
        async with app.db.autocommit() as conn:
            results = await check_and_record(conn, by="beat", now=app.clock())
        return {
            "passed": sum(1 for r in results if r.ok),
            "failed": [r.name for r in results if not r.ok],
        }

    return run_with_app(go)
