"""Staking on hand-computed months: uneven positions, an empty tier, days a wallet was not seen
holding its stake, a position starting mid-month, amounts that do not divide; every unit accounted
for, a month distributed once; the same tokens moved between wallets never paid twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from solders.keypair import Keypair
from sqlalchemy import text

from core import ledger
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.services.token import holdings, staking
from core.services.token.common import Month, parse_month
from tests.helpers import player
from tests.integration.test_console import run
from tests.integration.token.conftest import TOKEN, Clock, hold, link

MARCH = Month(2026, 3)


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


async def accrue(app, amount: int, when: datetime, key: str) -> None:
    """Revenue reaching the staking pool at ``when`` (as attempts' splits do), dated in the ledger."""
    async with app.uow() as uow:
        conn = uow.conn
        await ledger.transfer(
            conn,
            key,
            "attempt",
            [
                (await app.accounts.get(conn, ledger.OPERATIONS), -amount),
                (await app.accounts.get(conn, ledger.STAKING_POOL), amount),
            ],
        )
        await conn.execute(
            text("UPDATE transfers SET created_at = :t WHERE idempotency_key = :k"),
            {"t": when, "k": key},
        )


async def credits(app, actor) -> int:
    from core.services import views

    return (await views.balance(app, actor))[0]


async def pool_balance(app) -> int:
    async with app.uow() as uow:
        return await ledger.balance(uow.conn, await app.accounts.get(uow.conn, ledger.STAKING_POOL))


@pytest.fixture
async def march(token_app, chain):
    """Stakes made on the dates below, the pool accrued, the clock on 1 April 01:00.

    stake  who    tier  amount ($100Bs)  start             days in March   weight (M tokens x days)
    #1     alice  90    7,000,000        2026-01-05        31 (unlocks 04-05)   217
    #2     dave   30    1,000,000        2026-01-10        0 (ended in Feb, unstaked)
    #3     alice  30    3,000,000        2026-02-20        21 (unlocks 03-22)   63
    #4     carol  30    2,000,000        2026-03-10        22, seen 15          30  (holds 1.5M from 03-25)
    #5     bob    30    1,000,000        2026-03-16 12:00  16 (mid-month)       16
    #6     bob    90      333,333        2026-03-31 23:00  1                    0.333333
    #7     eve    60    1,000,000        2026-04-01 00:30  0 (after the month)
    """
    clock = Clock(at("2026-01-05 00:00"))
    app = await token_app()
    app.clock = clock
    people = {name: player(name) for name in ("alice", "bob", "carol", "dave", "eve")}
    keys = {name: Keypair() for name in people}
    held = {
        "alice": 10_000_000,
        "bob": 2_000_000,
        "carol": 2_000_000,
        "dave": 1_000_000,
        "eve": 1_000_000,
    }
    accounts = {name: hold(chain, keys[name], held[name]) for name in people}
    for name, actor in people.items():
        await link(app, actor, keys[name])

    async def stake_at(when: str, name: str, whole: int, lock: int) -> int:
        clock.now = at(when)
        row, _, _ = await staking.stake(app, people[name], whole * TOKEN, lock)
        return row.id

    ids = [
        await stake_at("2026-01-05 00:00", "alice", 7_000_000, 90),
        await stake_at("2026-01-10 00:00", "dave", 1_000_000, 30),
    ]
    clock.now = at("2026-02-15 00:00")
    await staking.unstake(app, people["dave"], ids[1])
    ids += [
        await stake_at("2026-02-20 00:00", "alice", 3_000_000, 30),
        await stake_at("2026-03-10 00:00", "carol", 2_000_000, 30),
        await stake_at("2026-03-16 12:00", "bob", 1_000_000, 30),
        await stake_at("2026-03-31 23:00", "bob", 333_333, 90),
        await stake_at("2026-04-01 00:30", "eve", 1_000_000, 60),
    ]
    assert ids == [1, 2, 3, 4, 5, 6, 7]
    await accrue(
        app, 100_000, at("2026-02-27 10:00"), "acc:feb"
    )  # never distributed: carried into March
    await accrue(app, 600_000, at("2026-03-03 10:00"), "acc:mar1")
    await accrue(app, 300_003, at("2026-03-31 23:59:59"), "acc:mar2")
    await accrue(app, 555, at("2026-04-01 00:10"), "acc:apr")  # after the month: April's
    # The worker reads every wallet during the month (here once a day, at noon); carol sells part of
    # her stake on 24 March, after that day's read.
    for day in range(1, 32):
        if day == 25:
            chain.set_balance(accounts["carol"][0], 1_500_000 * TOKEN)
        clock.now = at(f"2026-03-{day:02d} 12:00")
        for keypair in keys.values():
            await holdings.refresh(app, str(keypair.pubkey()))
    clock.now = at("2026-04-01 01:00")
    return app, people, clock


async def test_march_is_shared_exactly_as_computed_by_hand(march):
    """Pool 1,000,003 (100,000 carried from February + 900,003 accrued in March).

    Tiers, floored: 30-day 200,000; 60-day 300,000; 90-day 500,001; split remainder 2.
    30-day tier, weight by the days each wallet was seen holding the stake, 63 + 30 + 16 = 109:
      #3 alice 200,000 x 63/109 = 115,596.33 -> 115,596
      #4 carol 200,000 x 30/109 =  55,045.87 ->  55,045 (2M x the 15 days she held it, not 22)
      #5 bob   200,000 x 16/109 =  29,357.79 ->  29,357
      remainder 200,000 - 115,596 - 55,045 - 29,357 = 2
    60-day tier: nobody in March (eve started in April) -> 300,000 carried
    90-day tier, weight 7,000,000 x 31 + 333,333 x 1 = 217,333,333:
      #1 alice 500,001 x 217,000,000/217,333,333 = 499,234.13 -> 499,234
      #6 bob   500,001 x     333,333/217,333,333 =     766.87 ->     766
      remainder 1
    Rewards 699,998 (alice 614,830, bob 30,123, carol 55,045); carried over 300,005 =
      2 + 2 + 300,000 + 1.
    """
    app, people, _ = march
    d = await staking.distribute(app, MARCH, by="test")
    assert not d.already
    assert (d.accrued, d.carried_in, d.shares.pool) == (900_003, 100_000, 1_000_003)
    tiers = {t.lock_days: (t.amount, t.paid, t.forfeited, t.remainder) for t in d.shares.tiers}
    assert tiers == {
        30: (200_000, 199_998, 0, 2),
        60: (300_000, 0, 0, 300_000),
        90: (500_001, 500_000, 0, 1),
    }
    assert d.shares.tier_remainder == 2
    shares = {s.position.stake_id: (s.position.days, s.share, s.paid) for s in d.shares.shares}
    assert shares == {
        1: (31, 499_234, 499_234),
        3: (21, 115_596, 115_596),
        4: (15, 55_045, 55_045),
        5: (16, 29_357, 29_357),
        6: (1, 766, 766),
    }
    assert (d.shares.rewards, d.shares.carry) == (699_998, 300_005)
    assert d.shares.rewards + d.shares.carry == d.shares.pool
    assert [await credits(app, people[n]) for n in ("alice", "bob", "carol", "dave", "eve")] == [
        614_830,
        30_123,
        55_045,
        0,
        0,
    ]
    # the pool keeps the carry-over plus April's 555
    assert await pool_balance(app) == 300_005 + 555
    async with app.engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM staking_distributions"))).one()
        notices = (
            (
                await conn.execute(
                    text("SELECT payload FROM outbox WHERE topic = 'notice' ORDER BY id")
                )
            )
            .scalars()
            .all()
        )
        rewards = (
            await conn.execute(
                text(
                    "SELECT stake_id, share, forfeited, forfeited_share FROM staking_rewards "
                    "ORDER BY stake_id"
                )
            )
        ).all()
    assert (row.pool, row.rewards, row.carry, row.carried_in, row.accrued) == (
        1_000_003,
        699_998,
        300_005,
        100_000,
        900_003,
    )
    assert [tuple(r) for r in rewards] == [
        (1, 499_234, False, 0),
        (3, 115_596, False, 0),
        (4, 55_045, False, 0),
        (5, 29_357, False, 0),
        (6, 766, False, 0),
    ]
    bodies = " | ".join(n["body"] for n in notices)
    assert "0.61483 USDC credited" in bodies
    assert "Stake #4: 0.055045 USDC for 15 days (7 of its 22 days" in bodies
    async with app.uow() as uow:
        assert all(c.ok for c in await ledger.check_invariants(uow.conn))


async def test_a_month_twice_moves_nothing_even_at_once(march):
    app, people, _ = march
    first, second = await asyncio.gather(
        staking.distribute(app, MARCH, by="a"), staking.distribute(app, MARCH, by="b")
    )
    assert sorted([first.already, second.already]) == [False, True]
    again = await staking.distribute(app, MARCH, by="c")
    assert again.already and again.shares.rewards == 699_998 and again.shares.carry == 300_005
    assert await credits(app, people["alice"]) == 614_830
    async with app.engine.connect() as conn:
        n = (
            await conn.execute(text("SELECT count(*) FROM transfers WHERE kind = 'staking_reward'"))
        ).scalar_one()
    assert n == 1


async def test_the_carry_over_flows_into_the_next_month(march):
    app, people, clock = march
    await staking.distribute(app, MARCH, by="test")
    clock.now = at("2026-05-01 00:05")
    april = await staking.distribute(app, Month(2026, 4), by="test")
    assert (april.carried_in, april.accrued) == (300_005, 555)
    assert april.shares.pool == 300_560
    assert april.shares.rewards + april.shares.carry == april.shares.pool
    # every unit that entered the pool is either paid out as a reward or still in it
    async with app.engine.connect() as conn:
        paid = (
            await conn.execute(
                text(
                    "SELECT COALESCE(SUM(e.amount), 0) FROM entries e JOIN transfers t "
                    "ON t.id = e.transfer_id WHERE t.kind = 'staking_reward' AND e.amount > 0"
                )
            )
        ).scalar_one()
    assert paid + await pool_balance(app) == 1_000_558
    assert await pool_balance(app) == april.shares.carry


async def test_months_not_over_malformed_or_out_of_order_are_refused(march):
    app, _, clock = march
    with pytest.raises(InvalidArgument, match="has not ended"):
        await staking.distribute(app, Month(2026, 4), by="t")
    with pytest.raises(InvalidArgument, match="has not ended"):
        await staking.distribute(app, Month(2031, 1), by="t")
    for bad in ("2026-13", "2026-3", "March", "", "2026-03-01", "1999-12"):
        with pytest.raises(InvalidArgument):
            parse_month(bad)
    await staking.distribute(app, MARCH, by="t")
    with pytest.raises(InvalidArgument, match="in order"):
        await staking.distribute(app, Month(2026, 2), by="t")
    assert await pool_balance(app) == 300_005 + 555  # nothing moved


async def test_a_day_no_read_saw_earns_nothing_and_the_chain_is_not_needed_to_distribute(
    march, chain
):
    app, people, _ = march
    async with app.uow() as uow:  # the worker was down on 7 March: no read that day
        await uow.conn.execute("DELETE FROM holding_days WHERE day = '2026-03-07'")
    chain.fail("500", method="getTokenAccountsByOwner", times=20)  # and the chain is down now
    d = await staking.distribute(app, MARCH, by="beat")
    days = {s.position.stake_id: s.position.days for s in d.shares.shares}
    assert days == {1: 30, 3: 20, 4: 15, 5: 16, 6: 1}
    assert d.shares.rewards + d.shares.carry == d.shares.pool


async def test_the_same_tokens_moved_between_wallets_earn_one_share_of_each_day(token_app, chain):
    """The attack: one block of tokens, staked from four wallets in turn, each stake made while the
    tokens sit in its wallet. Each day's reads find the tokens in one wallet only, so the four stakes
    together earn what one honest stake of that block earns."""
    clock = Clock(at("2026-02-28 00:00"))  # the wallets are linked the day before
    app = await token_app()
    app.clock = clock
    sybils = [player(f"sybil{i}") for i in range(4)]
    honest = player("honest")
    keys = [Keypair() for _ in range(5)]
    accounts = [hold(chain, k, 0) for k in keys]
    for actor, keypair in zip([*sybils, honest], keys, strict=True):
        await link(app, actor, keypair)
    chain.set_balance(accounts[4][0], 1_000_000 * TOKEN)  # the honest staker's own block
    clock.now = at("2026-03-01 00:00")
    await staking.stake(app, honest, 1_000_000 * TOKEN, 30)  # counts 1..30 March
    for day in range(1, 32):
        holder = (day - 1) // 8  # the block moves to the next sybil wallet every 8 days
        for i in range(4):
            chain.set_balance(accounts[i][0], 1_000_000 * TOKEN if i == holder else 0)
        clock.now = at(f"2026-03-{day:02d} 06:00")
        if (day - 1) % 8 == 0:
            await staking.stake(app, sybils[holder], 1_000_000 * TOKEN, 30)
        clock.now = at(f"2026-03-{day:02d} 12:00")
        for keypair in keys:
            await holdings.refresh(app, str(keypair.pubkey()))
    await accrue(app, 1_000_000, at("2026-03-15 10:00"), "acc")
    clock.now = at("2026-04-01 01:00")
    d = await staking.distribute(app, MARCH, by="test")
    by_player = {}
    for s in d.shares.shares:
        by_player[s.position.player_id] = by_player.get(s.position.player_id, 0) + s.position.days
    sybil_days = sum(days for pid, days in by_player.items() if pid != max(by_player))
    assert sybil_days == 31  # one share of each day between them, not four
    honest = next(s for s in d.shares.shares if s.position.player_id == max(by_player))
    assert honest.position.days == 30
    sybil_paid = sum(s.paid for s in d.shares.shares) - honest.paid
    # the moving block earned as one block staked all month would: 31 days against the honest 30
    assert abs(sybil_paid * 30 - honest.paid * 31) <= 31 * 4
    async with app.uow() as uow:
        assert all(c.ok for c in await ledger.check_invariants(uow.conn))


async def test_admin_distribute_from_the_console(march):
    app, _, _ = march
    out = " ".join((await run(app, player("mod"), "/admin distribute 2026-03")).split())
    assert "2026-03 distributed" in out and "Rewards: 0.699998 USDC" in out
    assert "already distributed" in await run(app, player("mod"), "/admin distribute 2026-03")
    assert "not a month" in await run(app, player("mod"), "/admin distribute 03/2026")
    assert "has not ended" in await run(app, player("mod"), "/admin distribute 2027-01")


def test_share_month_accounts_for_every_unit_whatever_the_positions():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    position = st.builds(
        staking.Position,
        st.integers(1, 10**6),
        st.integers(1, 5),
        st.sampled_from(staking.LOCKS),
        st.integers(1, 10**17),
        st.integers(0, 31),
        st.booleans(),
    )

    @settings(max_examples=300, deadline=None)
    @given(st.integers(0, 10**15), st.lists(position, max_size=12))
    def check(pool, positions):
        r = staking.share_month(pool, positions)
        assert (
            r.rewards + r.carry == pool and r.rewards <= pool and all(s.paid >= 0 for s in r.shares)
        )
        for t in r.tiers:
            assert t.paid + t.forfeited + t.remainder == t.amount

    check()


async def test_stake_and_unstake_rules(token_app, chain):
    clock = Clock(at("2026-06-01 12:00"))
    app = await token_app()
    app.clock = clock
    me, other = player("s1"), player("s2")
    kp = await link(app, me)
    hold(chain, kp, 1_000_000)
    a, _, _ = await staking.stake(app, me, 600_000 * TOKEN, 30)
    with pytest.raises(InvalidArgument, match="at most 400,000 \\$100Bs more"):
        await staking.stake(app, me, 400_001 * TOKEN, 60)  # active stakes may not exceed holdings
    b, staked, held = await staking.stake(app, me, 400_000 * TOKEN, 60)
    assert (staked, held) == (1_000_000 * TOKEN, 1_000_000 * TOKEN)
    with pytest.raises(NotPermitted, match="locked until 2026-07-01 12:00"):
        await staking.unstake(app, me, a.id)
    with pytest.raises(NotFound):
        await staking.unstake(app, other, a.id)
    clock.advance(days=30)
    await staking.unstake(app, me, a.id)
    with pytest.raises(InvalidArgument, match="already unstaked"):
        await staking.unstake(app, me, a.id)
    with pytest.raises(NotFound, match="Link your wallet"):
        await staking.stake(app, other, TOKEN, 30)
    await staking.stake(app, me, 600_000 * TOKEN, 90)  # freed by the unstake


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("/stake 0 30", "more than zero"),
        ("/stake -5 30", "positive"),
        ("/stake 1.123456789 30", "at most 8 decimals"),
        ("/stake 1000 45", "must be one of: 30, 60, 90"),
        ("/stake 2000000 30", "at most 1,000,000 $100Bs more"),
        ("/stake lots 30", "not an amount"),
        ("/unstake 1", "You have no stake #1"),
        ("/unstake abc", "whole number"),
    ],
)
async def test_bad_stake_input_is_answered_and_changes_nothing(token_app, chain, line, needle):
    app = await token_app()
    me = player("bad")
    kp = await link(app, me)
    hold(chain, kp, 1_000_000)
    assert needle in await run(app, me, line)
    async with app.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM stakes"))).scalar_one() == 0


async def test_staking_shows_positions_the_pool_and_an_estimate(token_app, chain):
    clock = Clock(at("2026-06-11 00:00"))
    app = await token_app()
    app.clock = clock
    me = player("view")
    kp = await link(app, me)
    hold(chain, kp, 5_000_000)
    await staking.stake(app, me, 5_000_000 * TOKEN, 90)
    await accrue(app, 1_000_000, at("2026-06-10 00:00"), "acc:jun")
    shown = " ".join((await run(app, me, "/staking")).split())
    assert "#1 5,000,000 $100Bs, 90 days, locked until 2026-09-09" in shown
    # 19 more days to come; today's first read (at the link) saw the wallet empty, so today is lost
    assert "19 days in 2026-06" in shown
    assert "Pool for 2026-06 so far: 1.00 USDC" in shown
    assert "Your estimate: 0.50 USDC" in shown  # alone in the 90-day tier: half the pool
