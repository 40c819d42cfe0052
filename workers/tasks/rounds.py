"""Round upkeep: expire inactive rounds, refund attempts interrupted between payment and answer."""

from __future__ import annotations

from core.services import outbox, replicas
from core.services.attempts import end_inactive_rounds, recover_stale_attempts
from workers.celery_app import celery_app
from workers.runner import run_with_app


@celery_app.task(name="bounty.rounds.end_inactive", time_limit=120, soft_time_limit=100)
def end_inactive() -> list[int]:
    """Expire every active round past its inactivity deadline; returns the ended round ids."""
    return run_with_app(end_inactive_rounds)


@celery_app.task(name="bounty.attempts.recover_stale", time_limit=120, soft_time_limit=100)
def recover_stale() -> list[int]:
    """Refund attempts left pending past the guardian timeout; returns their ids."""
    return run_with_app(recover_stale_attempts)


@celery_app.task(name="bounty.outbox.purge", time_limit=300, soft_time_limit=280)
def purge_outbox() -> int:
    """Delete outbox rows delivered, failed or expired more than a week ago, and the Telegram update
    ids webhook replicas took more than two days ago; returns how many outbox rows."""

    async def purge(app) -> int:
        await replicas.purge_updates(app)
        return await outbox.purge(app)

    return run_with_app(purge)
