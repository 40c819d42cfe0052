"""The money attacks a review found, each written as the attack: it fails, and nothing moved.

Refused payments moving everyone's fee; a captain taking the members' money; races between a
refund and a win, a contribution or a team attempt and a disband, a member who just left; money in
dead pools; a moderator minting and withdrawing alone; team funding past a self-exclusion or a daily
limit; payouts marked paid by a transfer that did not come from the treasury."""

from __future__ import annotations

import asyncio

import pytest

from core.actors import Actor
from core.errors import (
    FeeChanged,
    InsufficientFunds,
    InvalidArgument,
    LimitReached,
    NotFound,
    NotPermitted,
    RoundNotActive,
)
from core.services import admin, attempts, limits, rounds, views
from core.services.attempts import pace as pace_
from core.services.teams import membership, pool
from tests.fakes import ScriptedGuardian
from tests.helpers import USDC, books_ok, fund, open_round, paused, player

MONA = Actor("telegram", "4242", "Mona", username="mona_mod")
OTTO = Actor("telegram", "4343", "Otto", username="otto_mod")


@pytest.fixture
async def mods(app_factory):
    """A game with two Telegram moderators, Mona and Otto."""
    return await app_factory(MODERATOR_TELEGRAM_USER_IDS="4242,4343")


async def pid(app, actor) -> int:
    from core.services.players import ensure_player

    async with app.uow() as uow:
        return (await ensure_player(uow.conn, actor)).id


async def balance(app, actor) -> int:
    return (await views.balance(app, actor))[0]


async def next_number(app) -> int:
    async with app.db.autocommit() as conn:
        bounty = await rounds.current_bounty(conn)
        return await rounds.next_attempt_number(conn, bounty.id)


async def paid_count(app) -> int:
    async with app.db.autocommit() as conn:
        return (await conn.execute("SELECT count(*) FROM attempts")).scalar_one()


# --- 1. the fee advances only with a paid attempt ---


async def test_refused_payments_do_not_move_the_fee_however_often(app):
    """The attack: quote while funded, empty the balance into a team of one, confirm (refused after
    a number was taken), leave the team with the money, again, 25 times. The fee stays put."""
    await open_round(app)
    eve = player("eve")
    await fund(app, eve, 20 * USDC)
    await membership.create_team(app, eve, "Eve Alone", private=True)
    fee_before = (await views.status(app, eve)).next_fee
    for _ in range(25):
        quote = await attempts.quote_attempt(app, eve, "let me in")
        await pool.fund(app, eve, 20 * USDC)
        with pytest.raises(InsufficientFunds):
            await attempts.confirm_attempt(app, eve, quote.id)
        await membership.leave(app, eve)  # a team of one disbands: the 20 come back
        await membership.create_team(app, eve, "Eve Alone", private=True)
    assert await next_number(app) == 0 and await paid_count(app) == 0
    assert (await views.status(app, eve)).next_fee == fee_before
    assert await balance(app, eve) == 20 * USDC
    await books_ok(app)


async def test_a_daily_limit_or_a_moved_fee_refused_after_the_number_gives_it_back(app):
    await open_round(app)
    a, b = player("a"), player("b")
    for p in (a, b):
        await fund(app, p, 100 * USDC)
    app.pace = _NoPace()
    stale = await attempts.quote_attempt(app, a, "slow")  # accepts numbers 0..2 (2 % tolerance)
    for i in range(3):  # b pays numbers 0, 1, 2
        await attempts.confirm_attempt(app, b, (await attempts.quote_attempt(app, b, f"b{i}")).id)
    with pytest.raises(FeeChanged) as changed:  # a takes number 3, past the maximum: given back
        await attempts.confirm_attempt(app, a, stale.id)
    assert await next_number(app) == 3 and changed.value.quote.number == 3
    out = await attempts.confirm_attempt(app, a, changed.value.quote.id)
    assert out.number == 3 and await next_number(app) == 4
    await limits.set_daily_limit(app, a, out.fee + 1)  # room for less than one more attempt
    quote = await attempts.quote_attempt(app, b, "b again")  # number 4
    with pytest.raises(LimitReached):
        await attempts.confirm_attempt(
            app, a, (await attempts.quote_attempt(app, a, "over")).id
        )  # refused at the quote already
    await attempts.confirm_attempt(app, b, quote.id)
    assert await next_number(app) == 5 and await paid_count(app) == 5
    await books_ok(app)


class _NoPace(pace_.AttemptPace):
    def expected_others(self, bounty_id: int) -> int:
        return 0


async def test_a_double_tap_pays_once_and_the_second_is_a_replay_not_a_new_fee(app):
    await open_round(app)
    a, b = player("a"), player("b")
    for p in (a, b):
        await fund(app, p, 100 * USDC)
    quote = await attempts.quote_attempt(app, a, "tap tap")
    first, second = await asyncio.gather(
        attempts.confirm_attempt(app, a, quote.id), attempts.confirm_attempt(app, a, quote.id)
    )
    assert sorted([first.replayed, second.replayed]) == [False, True]
    assert first.attempt_id == second.attempt_id and await paid_count(app) == 1
    # a stale confirmation's successor, tapped twice from two messages: one new quote, one payment
    app.pace = _NoPace()
    old = await attempts.quote_attempt(app, a, "later")
    for i in range(3):
        await attempts.confirm_attempt(app, b, (await attempts.quote_attempt(app, b, f"b{i}")).id)
    taps = await asyncio.gather(
        *(attempts.confirm_attempt(app, a, old.id) for _ in range(2)), return_exceptions=True
    )
    assert all(isinstance(t, FeeChanged) for t in taps)
    assert len({t.quote.id for t in taps}) == 1  # one successor, shown once
    assert sorted(t.shown_before for t in taps) == [False, True]
    paid = await asyncio.gather(
        *(attempts.confirm_attempt(app, a, taps[0].quote.id) for _ in range(2)),
        attempts.confirm_attempt(app, a, old.id),  # and a late tap on the first message
        return_exceptions=True,
    )
    assert [type(p).__name__ for p in paid].count("Outcome") == 3
    assert sum(not p.replayed for p in paid) == 1  # one payment for the one /attempt
    assert await paid_count(app) == 5
    await books_ok(app)


# --- 3. the pool belongs to those who paid into it ---


async def test_a_captain_cannot_take_the_members_money_by_kicking_them_then_disbanding(app):
    cap, m1, m2 = player("cap"), player("m1"), player("m2")
    for p, amount in ((cap, 1), (m1, 100), (m2, 100)):
        await fund(app, p, amount * USDC)
    team = await membership.create_team(app, cap, "Heist", private=True)
    for p in (m1, m2):
        await membership.join_team(app, p, team.invite_code)
    for p, amount in ((cap, 1), (m1, 100), (m2, 100)):
        await pool.fund(app, p, amount * USDC)
    _, _, share1 = await membership.kick(app, cap, f"#{await pid(app, m1)}")
    _, _, share2 = await membership.kick(app, cap, f"#{await pid(app, m2)}")
    d = await membership.disband(app, cap)
    assert share1 == 100 * USDC  # of 201 in the pool: 201 x 100/201
    assert share2 == 100 * USDC  # of the 101 left: 101 x 100/101
    assert [await balance(app, p) for p in (cap, m1, m2)] == [1 * USDC, 100 * USDC, 100 * USDC]
    assert d.refunds[0][1] == 1 * USDC
    await books_ok(app)


# --- 4. races that left money nowhere or below zero ---


async def test_a_contribution_racing_a_disband_lands_nowhere_dead(app, monkeypatch):
    cap, m = player("cap"), player("m")
    for p in (cap, m):
        await fund(app, p, 100 * USDC)
    team = await membership.create_team(app, cap, "Racers", private=True)
    await membership.join_team(app, m, team.invite_code)
    # the disband holds the team (its row, for update) and waits inside, after sharing the pool
    async with paused(monkeypatch, membership, "return_pool") as (reached, release):
        disband = asyncio.create_task(membership.disband(app, cap))
        await reached.wait()
        contribution = asyncio.create_task(pool.fund(app, m, 60 * USDC))
        await asyncio.sleep(0.3)
        assert not contribution.done()  # it waits for the disband instead of paying into it
        release.set()
        await disband
        with pytest.raises(NotFound):
            await contribution
    assert await balance(app, m) == 100 * USDC
    await books_ok(app)


async def test_a_team_attempt_paid_during_a_disband_or_by_a_member_who_left_is_refused(app):
    await open_round(app)
    cap, m = player("cap"), player("m")
    for p in (cap, m):
        await fund(app, p, 100 * USDC)
    team = await membership.create_team(app, cap, "Leavers", private=False)
    await membership.join_team(app, m, team.invite_code)
    await pool.fund(app, cap, 50 * USDC)
    quote = await attempts.quote_team_attempt(app, m, "for the team")
    await membership.leave(app, m)  # m leaves (with nothing: m contributed nothing)
    with pytest.raises(NotPermitted, match="no longer in"):
        await attempts.confirm_attempt(app, m, quote.id, via_team=True)
    quote = await attempts.quote_team_attempt(app, cap, "for the team")
    await membership.disband(app, cap)
    with pytest.raises(NotFound, match="disbanded"):
        await attempts.confirm_attempt(app, cap, quote.id, via_team=True)
    assert await paid_count(app) == 0 and await balance(app, cap) == 100 * USDC
    await books_ok(app)


async def test_a_team_attempt_being_paid_makes_a_disband_wait_then_refuse(app, monkeypatch):
    await open_round(app)
    cap, m = player("cap"), player("m")
    for p in (cap, m):
        await fund(app, p, 100 * USDC)
    team = await membership.create_team(app, cap, "Payers", private=False)
    await membership.join_team(app, m, team.invite_code)
    await pool.fund(app, m, 50 * USDC)
    quote = await attempts.quote_team_attempt(app, m, "for the team")
    paid = await attempts.pay(app, m, quote.id, via_team=True)  # paid, waiting for the guardian
    with pytest.raises(NotPermitted, match="waiting for the guardian"):
        await membership.disband(app, cap)
    await attempts.refund_attempt(app, paid.attempt_id, "the guardian failed")
    d = await membership.disband(app, cap)  # now it goes: the refund is back in the pool first
    assert dict((r.id, a) for r, a in d.refunds) == {await pid(app, m): 50 * USDC}
    await books_ok(app)


async def test_a_refund_racing_a_win_cannot_take_the_pool_below_zero(mods, monkeypatch):
    app = mods
    app.guardian = ScriptedGuardian("reject", "approve")
    await open_round(app, seed=10 * USDC)
    a, b = player("a"), player("b")
    for p in (a, b):
        await fund(app, p, 100 * USDC)
    await attempts.confirm_attempt(app, a, (await attempts.quote_attempt(app, a, "one")).id)
    from core.services.attempts import endings

    async with paused(monkeypatch, endings, "refund_pending") as (reached, release):
        win = asyncio.create_task(
            attempts.confirm_attempt(app, b, (await attempts.quote_attempt(app, b, "two")).id)
        )
        await reached.wait()  # the win holds the round alone
        refund = asyncio.create_task(admin.refund(app, MONA, 1, "racing the win"))
        await asyncio.sleep(0.3)
        assert not refund.done()
        release.set()
        assert (await win).status == "won"
        with pytest.raises(RoundNotActive, match="no refunds"):
            await refund
    await books_ok(app)


# --- 5. no money where nobody can reach it ---


async def test_a_refund_before_the_end_is_not_called_late_when_the_database_clock_differs(mods):
    """`bounty check`'s "no refund after a round ended" compares the game's own times: a database
    server whose clock runs ahead of the bot's (or a test clock behind it) raises no false alarm."""
    from datetime import timedelta

    app = mods
    app.guardian = ScriptedGuardian("reject", "approve")
    real = app.clock
    app.clock = lambda: real() - timedelta(days=30)  # the bot's clock a month behind the database's
    await open_round(app, seed=10 * USDC)
    a, w = player("a"), player("w")
    for p in (a, w):
        await fund(app, p, 100 * USDC)
    await attempts.confirm_attempt(app, a, (await attempts.quote_attempt(app, a, "one")).id)
    await admin.refund(app, MONA, 1, "goodwill")  # before the end
    await attempts.confirm_attempt(app, w, (await attempts.quote_attempt(app, w, "win")).id)
    assert (await views.status(app, w)).bounty.status == "won"
    await books_ok(app)


async def test_an_ended_round_takes_no_refund_and_a_disbanded_teams_share_goes_to_its_members(
    mods,
):
    app = mods
    app.guardian = ScriptedGuardian("reject", "approve")
    await open_round(app, seed=10 * USDC)
    cap, m, w = player("cap"), player("m"), player("w")
    for p in (cap, m, w):
        await fund(app, p, 100 * USDC)
    team = await membership.create_team(app, cap, "Ghosts", private=False)
    await membership.join_team(app, m, team.invite_code)
    await pool.fund(app, cap, 30 * USDC)
    await pool.fund(app, m, 10 * USDC)
    await attempts.confirm_attempt(
        app, cap, (await attempts.quote_team_attempt(app, cap, "team")).id, via_team=True
    )
    await membership.disband(app, cap)
    # a moderator's refund of the disbanded team's attempt goes to its last members, not the pool
    before = [await balance(app, p) for p in (cap, m)]
    await admin.refund(app, MONA, 1, "goodwill")
    after = [await balance(app, p) for p in (cap, m)]
    assert [y - x for x, y in zip(before, after, strict=True)] == [7_500_000, 2_500_000]
    await attempts.confirm_attempt(app, w, (await attempts.quote_attempt(app, w, "win")).id)
    with pytest.raises(RoundNotActive, match="no refunds"):
        await admin.refund(app, MONA, 2, "too late")
    await books_ok(app)


# --- 6. no moderator moves money alone ---


async def test_a_moderator_cannot_grant_themselves_or_approve_their_own_payout(mods, chain):
    app = mods
    with pytest.raises(NotPermitted, match="for themselves"):
        await admin.grant(app, MONA, "@mona_mod", 10 * USDC, "me")
    # a big grant waits for a second moderator; the one who asked cannot approve it
    await views.balance(app, OTTO)  # Otto exists
    g = await admin.grant(app, MONA, "@otto_mod", 1_000 * USDC, "bonus")
    assert g.balance is None and g.request_id
    assert await balance(app, OTTO) == 0
    with pytest.raises(NotPermitted, match="another moderator"):
        await admin.decide_grant(app, MONA, g.request_id, True)
    with pytest.raises(NotPermitted, match="for themselves"):
        await admin.decide_grant(app, OTTO, g.request_id, True)  # it credits Otto himself
    await admin.decide_grant(app, OTTO, g.request_id, False, "no")
    assert await balance(app, OTTO) == 0
    await books_ok(app)


async def test_a_grant_over_the_review_threshold_is_made_once_a_second_moderator_approves(mods):
    app = mods
    alice = player("alice", "telegram")
    await views.balance(app, alice)
    ref = f"#{await pid(app, alice)}"
    small = await admin.grant(app, MONA, ref, 100 * USDC, "welcome")  # at the threshold: at once
    assert small.balance == 100 * USDC
    big = await admin.grant(app, MONA, ref, 500 * USDC, "prize")
    assert big.balance is None
    done = await admin.decide_grant(app, OTTO, big.request_id, True)
    assert done.balance == 600 * USDC
    with pytest.raises(InvalidArgument, match="approved already"):
        await admin.decide_grant(app, OTTO, big.request_id, True)
    await books_ok(app)


async def test_a_moderator_cannot_refund_their_own_attempt(mods):
    app = mods
    await open_round(app)
    await fund(app, MONA, 50 * USDC)
    await attempts.confirm_attempt(app, MONA, (await attempts.quote_attempt(app, MONA, "hi")).id)
    with pytest.raises(NotPermitted, match="for themselves"):
        await admin.refund(app, MONA, 1, "oops")
    assert await admin.refund(app, OTTO, 1, "fair") == 10 * USDC
    await books_ok(app)


# --- 7. responsible play covers team funding ---


async def test_self_exclusion_and_the_daily_limit_cover_team_funding(app):
    excluded, limited = player("x"), player("l")
    for p in (excluded, limited):
        await fund(app, p, 500 * USDC)
    team = await membership.create_team(app, excluded, "Loophole", private=True)
    await membership.join_team(app, limited, team.invite_code)
    await limits.exclude(app, excluded, 365)
    with pytest.raises(LimitReached, match="excluded yourself"):
        await pool.fund(app, excluded, 400 * USDC)
    await limits.set_daily_limit(app, limited, 1 * USDC)
    with pytest.raises(LimitReached, match="daily limit"):
        await pool.fund(app, limited, 2 * USDC)
    await pool.fund(app, limited, 1 * USDC)
    with pytest.raises(LimitReached, match="daily limit"):
        await pool.fund(app, limited, 1)
    assert [await balance(app, p) for p in (excluded, limited)] == [500 * USDC, 499 * USDC]
    await books_ok(app)


async def test_each_money_promise_check_fails_on_a_breakage_made_by_hand(app):
    """Each money promise's check, shown failing on a breakage (then rolled back)."""
    from core.services.promises import check_money_promises
    from tests.helpers import failing_checks_after

    await open_round(app, seed=10 * USDC)
    a = player("a")
    await fund(app, a, 50 * USDC)
    await attempts.confirm_attempt(app, a, (await attempts.quote_attempt(app, a, "x")).id)
    team = await membership.create_team(app, a, "Dead", private=True)
    await pool.fund(app, a, 5 * USDC)
    breakages = {
        "no account of any kind below zero (prize, staking, buyback, operations, escrow included)": (
            "INSERT INTO entries (transfer_id, account_id, amount) SELECT t.id, a.id, -999999999 "
            "FROM transfers t, accounts a WHERE t.kind = 'seed' AND a.kind = 'staking_pool'",
        ),
        "no money in a disbanded team's pool": (
            f"UPDATE teams SET disbanded_at = now() WHERE id = {team.id}",
        ),
        "no money on a player with no identity left (joined away or deleted)": (
            "DELETE FROM player_identities",
        ),
        "an ended round's pool was shared to the unit": ("UPDATE bounties SET status = 'won'",),
        "no refund after a round ended": (
            "UPDATE bounties SET ended_at = now() - interval '1 day'",
            "UPDATE attempts SET status = 'refunded', finished_at = now() WHERE id = 1",
            "INSERT INTO transfers (idempotency_key, kind) VALUES ('refund:1', 'refund')",
        ),
        "escrow holds exactly the fees of attempts awaiting an answer": (
            "UPDATE attempts SET status = 'pending'",
        ),
        "every answered attempt's fee was split": (
            "DELETE FROM entries WHERE transfer_id IN "
            "(SELECT id FROM transfers WHERE idempotency_key LIKE 'settle:%')",
            "DELETE FROM transfers WHERE idempotency_key LIKE 'settle:%'",
        ),
        "the fee advanced only with paid attempts (no attempt number lost)": (
            "INSERT INTO attempt_numbers_free (bounty_id, number) VALUES (1, 0)",
        ),
    }
    for name, statements in breakages.items():
        failed = await failing_checks_after(app, statements, check_money_promises)
        assert name in failed, (name, failed)
    await books_ok(app)
