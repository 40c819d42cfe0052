"""The one-statement payment (bounty_pay_attempt) against the rules kept in Python: the split, the fee
table, quotes from another process, fee rules changed meanwhile, and the adaptive confirmed maximum."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from core import ledger
from core.errors import FeeChanged
from core.rules import split_payment
from core.services import admin, attempts
from core.services.attempts.pace import AttemptPace
from tests.helpers import CONSOLE_MOD, USDC, fund, open_round, player


async def _legs(app, quote_id: str) -> dict[str, int]:
    """Where the attempt's fee went, the payment into escrow and the settlement out of it together."""
    async with app.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT a.kind, SUM(e.amount) AS amount FROM entries e "
                    "JOIN transfers t ON t.id = e.transfer_id JOIN accounts a ON a.id = e.account_id "
                    "WHERE t.idempotency_key = :k OR t.idempotency_key = "
                    "  (SELECT 'settle:' || id FROM attempts WHERE quote_id = :q) GROUP BY a.kind"
                ),
                {"k": f"attempt:{quote_id}", "q": quote_id},
            )
        ).all()
    return {r.kind: r.amount for r in rows if r.amount}


@pytest.mark.parametrize("base_fee", [1, 3, 7, 99, 1_000_001, 9_999_999])
async def test_the_database_splits_each_fee_exactly_as_the_rules_do(app, base_fee):
    await open_round(app, seed=0)
    await admin.set_bounty(app, CONSOLE_MOD, "base_fee", base_fee)
    a = player("a")
    await fund(app, a, 100 * USDC)
    for i in range(3):  # numbers 0, 1, 2: each its own fee
        quote = await attempts.quote_attempt(app, a, f"try {i}")
        outcome = await attempts.confirm_attempt(app, a, quote.id)
        assert outcome.fee == quote.fee  # nobody else attempted: the fee shown is the fee paid
        split = split_payment(outcome.fee)
        expected = {
            ledger.PLAYER: -outcome.fee,
            ledger.PRIZE_POOL: split.prize,
            ledger.STAKING_POOL: split.staking,
            ledger.BUYBACK_RESERVE: split.buyback,
            ledger.OPERATIONS: split.operations,
        }
        assert await _legs(app, quote.id) == {k: v for k, v in expected.items() if v}


async def test_fees_past_the_cap_and_without_growth_are_the_tail_of_the_table(app):
    await open_round(app, seed=0)
    await admin.set_bounty(app, CONSOLE_MOD, "fee_cap", 10_100_000)  # attempt #2 on costs the cap
    a = player("a")
    await fund(app, a, 100 * USDC)
    fees = []
    for i in range(4):
        quote = await attempts.quote_attempt(app, a, f"try {i}")
        fees.append((await attempts.confirm_attempt(app, a, quote.id)).fee)
    assert fees == [10 * USDC, 10_078_000, 10_100_000, 10_100_000]
    await admin.set_bounty(app, CONSOLE_MOD, "growth_bps", 0)
    quote = await attempts.quote_attempt(app, a, "flat")
    assert (await attempts.confirm_attempt(app, a, quote.id)).fee == 10 * USDC


def test_the_fee_table_a_quote_accepts():
    from core.rules import FeeRule

    def rule(growth: int, cap: int) -> FeeRule:
        return FeeRule(10 * USDC, growth, cap)

    # 2 % over 10 USDC covers numbers 0..2 at 78 bps; number 3 costs more than the maximum
    assert attempts.acceptable_fees(rule(78, 4_500 * USDC), 0, 10_200_000, 0) == (
        [[10_000_000] * 2, [10_078_000] * 2, [10_156_608] * 2],
        False,
    )
    # the cap: its row holds for every later number
    assert attempts.acceptable_fees(rule(78, 10_100_000), 0, 10_200_000, 0) == (
        [[10_000_000] * 2, [10_078_000] * 2, [10_100_000] * 2],
        True,
    )
    assert attempts.acceptable_fees(rule(0, 4_500 * USDC), 5, 10 * USDC, 0) == (
        [[10 * USDC] * 2],
        True,
    )
    assert attempts.acceptable_fees(rule(78, 4_500 * USDC), 0, 9 * USDC, 0) == ([], False)
    # a 50 % discount: the list fee and the fee after it
    assert attempts.acceptable_fees(rule(78, 4_500 * USDC), 0, 5_000_000, 5_000) == (
        [[10_000_000, 5_000_000]],
        False,
    )


async def test_a_quote_made_by_another_process_is_paid_from_its_row(app_factory):
    quoting = await app_factory()
    await open_round(quoting)
    a = player("a")
    await fund(quoting, a, 50 * USDC)
    quote = await attempts.quote_attempt(quoting, a, "from the Telegram process")
    paying = await app_factory(reset=False)  # another process: it never saw the quote
    assert quote.id not in paying.quote_terms
    outcome = await attempts.confirm_attempt(paying, a, quote.id)
    assert (outcome.status, outcome.fee, outcome.number) == ("rejected", 10 * USDC, 0)
    replay = await attempts.confirm_attempt(
        quoting, a, quote.id
    )  # and the first process, once more
    assert replay.replayed and replay.attempt_id == outcome.attempt_id


async def test_fee_rules_changed_after_the_quote_ask_again_at_the_new_fee(app):
    await open_round(app)
    a = player("a")
    await fund(app, a, 50 * USDC)
    quote = await attempts.quote_attempt(app, a, "mine")
    await admin.set_bounty(app, CONSOLE_MOD, "base_fee", 12 * USDC)
    with pytest.raises(FeeChanged) as changed:
        await attempts.confirm_attempt(app, a, quote.id)
    assert changed.value.quote.fee == 12 * USDC
    outcome = await attempts.confirm_attempt(app, a, changed.value.quote.id)
    assert outcome.fee == 12 * USDC


def test_the_pace_is_the_recent_drift_between_quoted_and_paid_numbers():
    now = [100.0]
    pace = AttemptPace(clock=lambda: now[0])
    assert pace.expected_others(1) == 0  # nothing known: the fixed tolerance alone
    for drift in [*range(19), 60]:  # quoted number 10, paid 10 + drift
        pace.drifted(1, 10, 10 + drift)
    assert pace.expected_others(1) == 18  # nineteen payments in twenty drifted at most 18 numbers
    assert pace.expected_others(2) == 0  # another round
    pace.drifted(1, 50, 40)  # a number below the quote (a fee-rules change) counts as no drift
    now[0] += 31  # old payments fall out of the window
    assert pace.expected_others(1) == 0
    for _ in range(5):
        pace.drifted(1, 0, 10_000)
    assert (
        pace.expected_others(1) == 0
    )  # kept for a quarter of a second (every quote asks under load)...
    now[0] += 0.25
    assert (
        pace.expected_others(1) == 200
    )  # ...then recomputed; capped: past that the player is asked again
    for _ in range(95):
        pace.drifted(1, 0, 0)
    assert (
        pace.expected_others(1) == 0
    )  # or at once after 16 new payments (here 95 quiet ones of 100)


class _FixedTolerance(AttemptPace):
    """The confirmed maximum without the pace: the fee plus the fixed tolerance alone."""

    def expected_others(self, bounty_id: int) -> int:
        return 0


async def test_under_load_the_maximum_covers_others_and_nobody_pays_more_than_confirmed(app):
    """The same load (30 players x 6 attempts, all at once) twice in one run: first with the fixed
    tolerance alone, then with the pace. How often players are asked again depends on the machine's
    speed, so the pace is judged against the fixed tolerance on the same machine, not against a
    count. Measured: the fixed tolerance asks again 720-800 times, the pace 126-216."""
    await open_round(app)
    players = [player(f"c{i}") for i in range(30)]
    for p in players:
        await fund(app, p, 2_000 * USDC)

    async def load() -> int:
        asked_again = 0

        async def play(p, rounds: int) -> None:
            nonlocal asked_again
            for i in range(rounds):
                quote = await attempts.quote_attempt(app, p, f"{p.external_id} {i}")
                while True:
                    try:
                        outcome = await attempts.confirm_attempt(app, p, quote.id)
                        break
                    except FeeChanged as changed:
                        asked_again += 1
                        quote = changed.quote
                assert outcome.fee <= quote.max_fee  # never more than confirmed

        await asyncio.gather(*(play(p, 6) for p in players))
        return asked_again

    app.pace = _FixedTolerance()
    fixed = await load()
    app.pace = AttemptPace()  # knows nothing yet: the cold start is inside the count
    paced = await load()
    assert app.pace.expected_others(next(iter(app.pace._drifts))) > 0  # it saw the load
    async with app.db.autocommit() as conn:
        results = await ledger.check_invariants(conn)
    assert all(r.ok for r in results)
    assert (
        fixed > 30 * 6
    )  # the load is real: a fixed tolerance asks again more than once per attempt
    assert paced * 2 < fixed, (paced, fixed)  # the pace asks again less than half as often


async def test_bounty_check_finds_what_no_foreign_key_guards_any_more(app):
    """Entries, attempts and quotes carry no foreign key onto the rows every payment shares (the
    shared accounts, the round): ``bounty check`` finds a dangling reference instead."""
    await open_round(app)
    a = player("a")
    await fund(app, a, 50 * USDC)
    quote = await attempts.quote_attempt(app, a, "hello")
    await attempts.confirm_attempt(app, a, quote.id)

    async def dangling_check():
        async with app.db.autocommit() as conn:
            results = {r.name: r for r in await ledger.check_invariants(conn)}
        return results["entries, attempts and quotes reference what exists"]

    assert (await dangling_check()).ok
    async with app.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO transfers (idempotency_key, kind) VALUES ('broken', 'grant')")
        )
        await conn.execute(
            text(
                "INSERT INTO entries (transfer_id, account_id, amount) SELECT id, 999999, 5 FROM transfers "
                "WHERE idempotency_key = 'broken' UNION ALL SELECT id, 999999, -5 FROM transfers WHERE idempotency_key = 'broken'"
            )
        )
    check = await dangling_check()
    assert not check.ok and check.detail == "2 dangling"
