"""A player's own data with a wallet: the export lists the wallet, the payout and the stake; deleting
waits for the payout and the stake, unlinks the wallet, and keeps the payout's record (amount,
address, transaction) for the ledger, with ``bounty check`` clean."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from core import ledger
from core.errors import NotPermitted
from core.services.players import ensure_player
from core.services.privacy import erase, export
from core.services.token import payouts, staking
from core.services.token.checks import check_token_invariants
from tests.helpers import CONSOLE_MOD, USDC, fund, player
from tests.integration.token.conftest import TOKEN, Clock, hold, link


async def test_a_payout_and_a_stake_are_settled_before_the_wallet_is_forgotten(token_app, chain):
    clock = Clock()
    app = await token_app()
    app.clock = clock
    me = player("wallet-owner")
    await fund(app, me, 40 * USDC)
    kp = await link(app, me)
    hold(chain, kp, 2_000_000)
    stake, _, _ = await staking.stake(app, me, 1_000_000 * TOKEN, 30)
    row, _ = await payouts.request(app, me, 40 * USDC)
    async with app.uow() as uow:
        me_id = (await ensure_player(uow.conn, me)).id

    _, document = await export.export_data(app, me)
    data = json.loads(document)
    assert data["wallet"]["wallets"][0]["address"] == str(kp.pubkey())
    assert [p["status"] for p in data["wallet"]["payouts"]] == ["requested"]
    assert [s["id"] for s in data["wallet"]["stakes"]] == [stake.id]

    with pytest.raises(NotPermitted) as refused:
        await erase.erase(app, me, me_id)
    assert f"payout #{row.id} of 40.00 USDC is requested" in refused.value.message
    assert f"stake #{stake.id} is locked until" in refused.value.message

    await payouts.approve(app, CONSOLE_MOD, row.id)
    assert await payouts.pay(app, row.id) == "paid"
    clock.advance(days=31)
    await staking.unstake(app, me, stake.id)
    with pytest.raises(NotPermitted) as refused:
        await erase.erase(app, me, me_id)
    # the ended stake still earns its months' shares: they must not land on nobody
    assert f"stake #{stake.id} still earns a share of" in refused.value.message

    async with app.engine.begin() as conn:  # the months were shared (nothing to share: no revenue)
        for month in erase._months(stake.started_at, stake.unlocks_at):
            await conn.execute(
                text(
                    "INSERT INTO staking_distributions (month, accrued, carried_in, pool, rewards, carry, "
                    "tiers, distributed_by) VALUES (:m, 0, 0, 0, 0, 0, '{}', 'test')"
                ),
                {"m": month},
            )
    done = await erase.erase(app, me, me_id)
    assert done.kept["payouts"] == 1 and done.kept["stakes"] == 1

    async with app.engine.connect() as conn:
        wallet = (await conn.execute(text("SELECT * FROM wallets"))).one()
        assert wallet.unlinked_at is not None and wallet.signature == ""
        paid = (await conn.execute(text("SELECT * FROM payouts"))).one()
        assert (paid.player_id, paid.amount, paid.status) == (me_id, 40 * USDC, "paid")
        assert paid.wallet_address == str(kp.pubkey()) and paid.tx_signature
        assert not (await conn.execute(text("SELECT 1 FROM wallet_challenges"))).all()
    async with app.uow() as uow:
        results = [
            *await ledger.check_invariants(uow.conn),
            *await check_token_invariants(uow.conn),
        ]
    assert all(c.ok for c in results), [c for c in results if not c.ok]
