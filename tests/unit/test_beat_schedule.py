"""Every beat entry names a task some worker module registers (a typo would schedule nothing)."""

from workers.celery_app import celery_app


def test_every_scheduled_task_exists():
    celery_app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    assert {
        "bounty.token.refresh_holdings",
        "bounty.token.record_price",
        "bounty.token.resume_payouts",
        "bounty.token.distribute",
    } <= scheduled
    assert scheduled <= set(celery_app.tasks)
    assert "bounty.token.pay_payout" in celery_app.tasks
