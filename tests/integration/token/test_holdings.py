"""Holdings, tiers and discounts: read through the real solana client, cached, refreshed by the
worker's job; RPC faults keep the last known value; discounts on individual and team attempts are
charged and recorded; /balance shows it all with the price's age."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from solders.keypair import Keypair
from sqlalchemy import text

from core import ledger
from core.services import attempts
from core.services.teams import membership
from core.services.teams import pool as pool_
from core.services.token import holdings, price
from core.services.token.common import next_tier, tier_bps
from tests.helpers import USDC, fund, open_round, player
from tests.integration.test_console import run
from tests.integration.token.conftest import TOKEN, Clock, hold, link


def test_tiers_at_their_exact_boundaries(app_factory):
    from core.settings import load_settings

    s = load_settings(_env_file=None)
    assert tier_bps(None, s) == 0 and tier_bps(0, s) == 0
    assert tier_bps(1_000_000 * TOKEN - 1, s) == 0
    assert tier_bps(1_000_000 * TOKEN, s) == 1_000
    assert tier_bps(10_000_000 * TOKEN - 1, s) == 1_000
    assert tier_bps(10_000_000 * TOKEN, s) == 2_500
    assert tier_bps(100_000_000 * TOKEN - 1, s) == 2_500
    assert tier_bps(100_000_000 * TOKEN, s) == 5_000
    assert next_tier(0, s) == (1_000, 1_000_000 * TOKEN)
    assert next_tier(12_500_000 * TOKEN, s) == (5_000, 87_500_000 * TOKEN)
    assert next_tier(100_000_000 * TOKEN, s) is None


@pytest.mark.parametrize("fault", ["500", "hang", "garbage", "malformed", "rpc_error", "odd_error"])
async def test_an_rpc_fault_keeps_the_last_known_holdings_never_zero(token_app, chain, fault):
    clock = Clock()
    app = await token_app()
    app.clock = clock
    me = player(f"h-{fault}")
    kp = await link(app, me)
    accounts = hold(chain, kp, 12_000_000)
    await holdings.refresh(app, str(kp.pubkey()))
    async with app.uow() as uow:
        before = await holdings.cached(uow.conn, (await _player_id(uow.conn, me)))
        bps_before = await app.discounts.discount_bps(uow.conn, await _player_id(uow.conn, me))
    assert before.amount == 12_000_000 * TOKEN and bps_before == 2_500
    chain.set_balance(accounts[0], 200_000_000 * TOKEN)  # the chain says more, but cannot be read
    clock.advance(minutes=6)
    chain.fail(fault, method="getTokenAccountsByOwner", times=3)
    with pytest.raises(holdings.SolanaUnavailable):
        await holdings.refresh(app, str(kp.pubkey()))
    async with app.uow() as uow:
        pid = await _player_id(uow.conn, me)
        after = await holdings.cached(uow.conn, pid)
        assert await app.discounts.discount_bps(uow.conn, pid) == 2_500  # neither zero nor higher
    assert after.amount == before.amount and after.checked_at == before.checked_at
    assert after.failing and after.last_error
    assert "127.0.0.1" not in after.last_error  # never the RPC URL (it can carry an API key)
    text_ = await run(app, me, "/balance")
    assert "12,000,000 $100Bs" in text_ and "last refresh failed" in text_
    chain.faults.clear()
    await holdings.refresh(app, str(kp.pubkey()))
    async with app.uow() as uow:
        assert (await holdings.cached(uow.conn, pid)).amount == 200_000_000 * TOKEN


async def test_the_workers_job_refreshes_only_what_is_older_than_the_cache(token_app, chain):
    clock = Clock()
    app = await token_app()
    app.clock = clock
    a, b = player("r1"), player("r2")
    ka, kb = await link(app, a), await link(app, b)  # both read at link time (nothing held)
    acc = hold(chain, ka, 3_000_000)
    hold(chain, kb, 4_000_000)
    assert await holdings.refresh_stale(app) == 0  # fresh for 5 minutes
    clock.advance(minutes=5, seconds=1)
    calls = len(chain.calls)
    assert await holdings.refresh_stale(app) == 2
    assert len(chain.calls) == calls + 2
    chain.set_balance(acc[0], 0)
    clock.advance(minutes=2)
    assert await holdings.refresh_stale(app) == 0
    async with app.uow() as uow:
        assert (await holdings.of_address(uow.conn, str(ka.pubkey()))).amount == 3_000_000 * TOKEN


async def _player_id(conn, actor) -> int:
    from core.services.players import ensure_player

    return (await ensure_player(conn, actor)).id


async def _discount_uses(app) -> list:
    async with app.engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT attempt_id, player_id, discount_bps, holdings FROM discount_uses "
                    "ORDER BY attempt_id"
                )
            )
        ).all()


async def test_the_discount_is_quoted_charged_and_recorded(token_app, chain):
    app = await token_app()
    await open_round(app)
    me, plain = player("d1"), player("d2")
    await fund(app, me, 100 * USDC)
    await fund(app, plain, 100 * USDC)
    kp = await link(app, me)
    hold(chain, kp, 10_000_000)
    await holdings.refresh(app, str(kp.pubkey()))
    q = await attempts.quote_attempt(app, me, "let me in")
    assert (q.list_fee, q.discount_bps, q.fee) == (10 * USDC, 2_500, 7_500_000)
    out = await attempts.confirm_attempt(app, me, q.id)
    assert out.fee == 7_500_000
    q2 = await attempts.quote_attempt(app, plain, "and me")
    assert q2.discount_bps == 0 and q2.fee == q2.list_fee
    await attempts.confirm_attempt(app, plain, q2.id)
    uses = await _discount_uses(app)
    async with app.uow() as uow:
        pid = await _player_id(uow.conn, me)
        bal = await ledger.balance(uow.conn, await app.accounts.get(uow.conn, ledger.PLAYER, pid))
    assert [(u.attempt_id, u.player_id, u.discount_bps, u.holdings) for u in uses] == [
        (out.attempt_id, pid, 2_500, 10_000_000 * TOKEN)
    ]
    assert bal == 100 * USDC - 7_500_000  # charged the discounted fee


async def test_a_team_attempt_uses_the_paying_members_holdings(token_app, chain):
    """The team pool pays; the discount is the member's who makes the attempt (SPEC §6, §7)."""
    app = await token_app()
    await open_round(app)
    member, other = player("t1"), player("t2")
    kp = await link(app, member)
    hold(chain, kp, 1_000_000)
    await holdings.refresh(app, str(kp.pubkey()))
    team = await membership.create_team(app, member, "Holders", private=False)
    await membership.join_team(app, other, team.invite_code)
    await fund(app, member, 50 * USDC)
    await pool_.fund(app, member, 50 * USDC)
    async with app.uow() as uow:
        pool = await app.accounts.get(uow.conn, ledger.TEAM_POOL, team.id)
    q = await attempts.quote_team_attempt(app, member, "team push")
    assert q.discount_bps == 1_000 and q.fee == 9 * USDC
    out = await attempts.confirm_attempt(app, member, q.id, via_team=True)
    q2 = await attempts.quote_team_attempt(app, other, "team push 2")
    assert q2.discount_bps == 0
    await attempts.confirm_attempt(app, other, q2.id, via_team=True)
    async with app.uow() as uow:
        left = await ledger.balance(uow.conn, pool)
        member_id = await _player_id(uow.conn, member)
    assert left == 50 * USDC - 9 * USDC - q2.fee
    assert [(u.attempt_id, u.player_id, u.discount_bps) for u in await _discount_uses(app)] == [
        (out.attempt_id, member_id, 1_000)
    ]


async def test_unlinking_ends_the_discount(token_app, chain):
    from core.services.token import wallets

    app = await token_app()
    await open_round(app)
    me = player("u1")
    await fund(app, me, 50 * USDC)
    kp = await link(app, me)
    hold(chain, kp, 100_000_000)
    await holdings.refresh(app, str(kp.pubkey()))
    assert (await attempts.quote_attempt(app, me, "x")).discount_bps == 5_000
    await wallets.unlink(app, me)
    assert (await attempts.quote_attempt(app, me, "x")).discount_bps == 0


async def test_balance_shows_credits_holdings_tier_next_tier_and_value_with_the_prices_age(
    token_app, chain, price_source
):
    clock = Clock()
    app = await token_app(
        TOKEN_PRICE_URL=price_source.url, TOKEN_PRICE_JSON_PATH=price_source.json_path
    )
    app.clock = clock
    me = player("b1")
    await fund(app, me, 25 * USDC)
    assert "no wallet linked" in await run(app, me, "/balance")
    kp = Keypair()
    hold(chain, kp, 12_500_000)
    await link(app, me, kp)
    assert "no token price recorded yet" in await run(app, me, "/balance")
    assert await price.record_price(app) == Decimal("0.00004217")  # exact: never through a float
    clock.advance(minutes=3)
    shown = await run(app, me, "/balance")
    assert "Balance:" in shown and "25.00 USDC" in shown
    assert "12,500,000 $100Bs" in shown
    assert "25 % off attempts" in shown
    assert "Next tier:" in shown and "50 % with 87,500,000 $100Bs more" in shown
    # 12,500,000 × 0.00004217 = 527.125 USD, shown to the cent
    assert "$527.12 at $0.00004217 per token (price from 3 min ago)" in shown
    price_source.faults.append("500")
    assert await price.record_price(app) is None
    stale = await run(app, me, "/balance")
    assert "$527.12" in stale and "stale" in stale  # the last price stays, marked stale


@pytest.mark.parametrize("fault", ["500", "hang", "garbage", "missing"])
async def test_the_price_source_down_keeps_the_last_price_marked_stale(
    token_app, price_source, fault
):
    app = await token_app(
        TOKEN_PRICE_URL=price_source.url,
        TOKEN_PRICE_JSON_PATH=price_source.json_path,
        SOLANA_RPC_TIMEOUT_SECONDS=0.5,
    )
    await price.record_price(app)
    price_source.faults.append(fault)
    assert await price.record_price(app) is None
    async with app.uow() as uow:
        view = await price.latest(uow.conn, app)
    assert view.price == Decimal("0.00004217") and view.stale and view.last_error
    async with app.engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT price_usd, error FROM token_prices ORDER BY id"))
        ).all()
    assert [r.price_usd is None for r in rows] == [False, True]


async def test_an_old_price_is_stale_even_without_a_failure(token_app, price_source):
    clock = Clock()
    app = await token_app(
        TOKEN_PRICE_URL=price_source.url, TOKEN_PRICE_JSON_PATH=price_source.json_path
    )
    app.clock = clock
    await price.record_price(app)
    async with app.uow() as uow:
        assert not (await price.latest(uow.conn, app)).stale
    clock.now += timedelta(seconds=app.settings.TOKEN_PRICE_STALE_SECONDS + 1)
    async with app.uow() as uow:
        assert (await price.latest(uow.conn, app)).stale
