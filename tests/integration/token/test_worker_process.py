"""A real Celery worker pays approved payouts; killed (SIGKILL) after sending and before marking,
the payout is finished by the next try without being sent again."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

from sqlalchemy import text

from core.services.token import payouts
from tests.helpers import CONSOLE_MOD, USDC, fund, player
from tests.integration.test_processes import ROOT, bounty_env
from tests.integration.token.conftest import USDC_MINT, link


async def _approved(app, name: str, amount: int):
    me = player(name)
    await fund(app, me, amount)
    kp = await link(app, me)
    row, _ = await payouts.request(app, me, amount)
    await payouts.approve(app, CONSOLE_MOD, row.id)
    return row.id, kp


async def _until(check, seconds: float = 60) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting")


async def test_a_worker_pays_and_a_killed_one_never_pays_twice(
    token_app, chain, treasury, pg_url, redis_url, tmp_path
):
    app = await token_app()
    first, kp1 = await _approved(app, "p1", 30 * USDC)
    second, kp2 = await _approved(app, "p2", 12 * USDC)
    env = bounty_env(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        BOUNTY_DATA_DIR=str(tmp_path),
        SOLANA_RPC_URL=chain.url,
        SOLANA_RPC_TIMEOUT_SECONDS="1",
        SOLANA_POLL_SECONDS="0.05",
        TREASURY_WALLET=treasury.wallet,
        TREASURY_KEYPAIR_PATH=str(treasury.keypair_path),
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "--pool=solo"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    from workers.celery_app import celery_app

    celery_app.conf.broker_url = celery_app.conf.result_backend = redis_url
    try:
        paid = celery_app.send_task("bounty.token.pay_payout", kwargs={"payout_id": first})
        assert await asyncio.to_thread(paid.get, timeout=120) == "paid"
        assert chain.balance_of(str(kp1.pubkey()), USDC_MINT) == 30 * USDC

        # The node accepts the second payout, then stops answering status queries: the worker is
        # killed while it waits to see it finalized, before it could mark it paid.
        chain.fail("hang", method="getSignatureStatuses", times=10_000)
        celery_app.send_task("bounty.token.pay_payout", kwargs={"payout_id": second})

        async def sent_and_waiting() -> bool:
            return len(chain.sent) == 2 and chain.calls[-1][0] == "getSignatureStatuses"

        await _until(sent_and_waiting)
        worker.send_signal(signal.SIGKILL)
        await asyncio.to_thread(worker.wait, timeout=30)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        said, _ = await asyncio.to_thread(worker.communicate, timeout=30)
        print(said[-6000:])  # the worker's own lines, shown if the test fails
        celery_app.control.purge()  # the killed task's redelivery is not for later tests
    async with app.engine.connect() as conn:
        state = (
            await conn.execute(
                text("SELECT status, tx_signature FROM payouts WHERE id = :id"), {"id": second}
            )
        ).one()
    assert state.status == "sending" and chain.sent[-1] == state.tx_signature
    chain.faults.clear()

    async def finished() -> bool:
        return (
            await payouts.pay(app, second) == "paid"
        )  # "busy" until the dead session's lock is gone

    await _until(finished, 30)
    assert chain.sends_of(state.tx_signature) == 1
    assert chain.balance_of(str(kp2.pubkey()), USDC_MINT) == 12 * USDC
