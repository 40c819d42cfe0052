"""The money promises under random sequences, then under concurrency, on the real database.

A hypothesis state machine plays players, teams and two moderators doing random sequences of
attempts (fresh, replayed, stale), team create/join/fund/leave/kick/disband/attempt, /link, grants
(small and reviewed), refunds, stakes, withdrawals, wins and expiries; after every step every check
of `bounty check` passes, no attempt is left waiting, and the fee's number is the count of paid
attempts. Then 1,000 of the same operations from 50 players in 5 teams fired concurrently in random
interleavings: no overdraft, the ledger sums to zero, nothing stranded, every charged attempt with
exactly one answer or one refund."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from solders.keypair import Keypair

from core.actors import Actor
from core.errors import BountyError, FeeChanged
from core.services import admin, attempts, identity
from core.services.teams import membership, pool
from core.services.token import payouts, staking
from tests.conftest import reset_database
from tests.helpers import CONSOLE_MOD, PASSPHRASE, USDC, books_ok, open_round
from tests.integration.token.conftest import TOKEN, hold, link

MONA = Actor("telegram", "4242", "Mona", username="mona_mod")
OTTO = Actor("telegram", "4343", "Otto", username="otto_mod")
PLAYERS = [Actor("telegram", f"{100 + i}", f"T{i}", username=f"t{i}") for i in range(6)]
OTHER_SIDE = [Actor("discord", f"{900 + i}", f"D{i}", username=f"d{i}") for i in range(2)]
WALLETS = 3  # the first players have a linked wallet holding tokens


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _state_ok(app) -> None:
    """After every step: every check passes, nothing waits, numbers match paid attempts."""
    await books_ok(app)
    async with app.db.autocommit() as conn:
        row = (
            await conn.execute(
                "SELECT (SELECT count(*) FROM attempts WHERE status = 'pending') AS pending, "
                "(SELECT count(*) FROM attempts a WHERE a.status IN ('rejected', 'won') AND a.reply IS NULL) "
                "  AS unanswered, "
                "(SELECT count(*) FROM attempt_numbers_free) AS free"
            )
        ).one()
    assert (row.pending, row.unanswered) == (0, 0)


def _quiet(fn):
    """A refused operation is part of the game: it must leave nothing behind (checked after)."""

    async def run(*args, **kwargs):
        try:
            return await fn(*args, **kwargs)
        except (BountyError, FeeChanged):
            return None

    return run


class Game:
    """The operations, each one as a player or a moderator does it."""

    def __init__(self, app, clock: Clock) -> None:
        self.app = app
        self.clock = clock
        self.round = 1

    async def setup(self, chain) -> None:
        await reset_database(self.app)
        await open_round(self.app, seed=20 * USDC)
        for actor in PLAYERS:
            await admin.grant(self.app, CONSOLE_MOD, await self._ref(actor), 300 * USDC, "start")
        for actor in PLAYERS[:WALLETS]:
            keypair = Keypair()
            hold(chain, keypair, 1_000_000)
            await link(self.app, actor, keypair)

    async def _ref(self, actor: Actor) -> str:
        from core.services.players import ensure_player

        async with self.app.uow() as uow:
            return f"#{(await ensure_player(uow.conn, actor)).id}"

    @_quiet
    async def attempt(self, who: Actor, mode: str, text: str) -> None:
        app = self.app
        quote = await attempts.quote_attempt(app, who, text)
        if mode == "stale":  # someone else pays first, then this confirmation (maybe past its max)
            other = (
                PLAYERS[(PLAYERS.index(who) + 1) % len(PLAYERS)] if who in PLAYERS else PLAYERS[0]
            )
            await self.attempt(other, "fresh", "in between")
        try:
            await attempts.confirm_attempt(app, who, quote.id)
        except FeeChanged as changed:
            await attempts.confirm_attempt(app, who, changed.quote.id)
        if mode == "replay":
            out = await attempts.confirm_attempt(app, who, quote.id)
            assert out.replayed

    @_quiet
    async def win(self, who: Actor) -> None:
        await self.attempt(who, "fresh", f"please {PASSPHRASE}")
        await self.new_round_if_ended()

    async def new_round_if_ended(self) -> None:
        async with self.app.db.autocommit() as conn:
            open_ = (
                await conn.execute(
                    "SELECT count(*) FROM bounties WHERE status IN ('active','paused')"
                )
            ).scalar_one()
        if not open_:
            self.round += 1
            await open_round(self.app, seed=5 * USDC, name=f"R{self.round}")

    @_quiet
    async def expire(self) -> None:
        self.clock.now += timedelta(days=2)
        await attempts.end_inactive_rounds(self.app)
        await self.new_round_if_ended()

    @_quiet
    async def team_create(self, who: Actor) -> None:
        await membership.create_team(self.app, who, f"Team {who.display_name}", private=False)

    @_quiet
    async def team_join(self, who: Actor, captain: Actor) -> None:
        await membership.join_team(self.app, who, f"Team {captain.display_name}")

    @_quiet
    async def team_fund(self, who: Actor, amount: int) -> None:
        await pool.fund(self.app, who, amount)

    @_quiet
    async def team_leave(self, who: Actor) -> None:
        await membership.leave(self.app, who)

    @_quiet
    async def team_kick(self, captain: Actor, who: Actor) -> None:
        await membership.kick(self.app, captain, await self._ref(who))

    @_quiet
    async def team_disband(self, captain: Actor) -> None:
        await membership.disband(self.app, captain)

    @_quiet
    async def team_attempt(self, who: Actor) -> None:
        quote = await attempts.quote_team_attempt(self.app, who, "for the team")
        try:
            await attempts.confirm_attempt(self.app, who, quote.id, via_team=True)
        except FeeChanged as changed:
            await attempts.confirm_attempt(self.app, who, changed.quote.id, via_team=True)

    @_quiet
    async def link(self, telegram: Actor, discord: Actor) -> None:
        code = await identity.new_code(self.app, discord)
        await identity.join(self.app, telegram, code.code)

    @_quiet
    async def grant(self, whom: Actor, amount: int, second: bool) -> None:
        granted = await admin.grant(self.app, MONA, await self._ref(whom), amount, "machine")
        if granted.request_id and second:
            await admin.decide_grant(self.app, OTTO, granted.request_id, True)

    @_quiet
    async def refund(self, number: int) -> None:
        await admin.refund(self.app, OTTO, number, "machine")

    @_quiet
    async def stake(self, who: Actor, whole: int) -> None:
        await staking.stake(self.app, who, whole * TOKEN, 30)

    @_quiet
    async def withdraw(self, who: Actor, amount: int, decision: str) -> None:
        row, _ = await payouts.request(self.app, who, amount)
        if decision == "reject":
            await payouts.reject(self.app, MONA, row.id, "machine")
        elif decision == "approve":
            await payouts.approve(self.app, MONA, row.id)
            await payouts.approve(self.app, OTTO, row.id)


who = st.sampled_from(PLAYERS)


class MoneyMachine(RuleBasedStateMachine):
    """Each rule is one operation; the invariant is every promise of `bounty check`. The test sets
    ``game``, ``chain`` and ``run`` (which runs a coroutine on the test's event loop)."""

    game: Game
    chain: object
    run = None
    checks = 0

    @initialize()
    def start(self) -> None:
        self.run(self.game.setup(self.chain))
        self.game.ready = True

    @rule(
        p=who,
        mode=st.sampled_from(["fresh", "replay", "stale"]),
        text=st.text(min_size=1, max_size=20),
    )
    def attempt(self, p, mode, text):
        self.run(self.game.attempt(p, mode, text.strip() or "x"))

    @rule(p=who)
    def win(self, p):
        self.run(self.game.win(p))

    @rule()
    def expire(self):
        self.run(self.game.expire())

    @rule(p=who)
    def team_create(self, p):
        self.run(self.game.team_create(p))

    @rule(p=who, captain=who)
    def team_join(self, p, captain):
        self.run(self.game.team_join(p, captain))

    @rule(p=who, amount=st.integers(1, 120 * USDC))
    def team_fund(self, p, amount):
        self.run(self.game.team_fund(p, amount))

    @rule(p=who)
    def team_leave(self, p):
        self.run(self.game.team_leave(p))

    @rule(captain=who, p=who)
    def team_kick(self, captain, p):
        self.run(self.game.team_kick(captain, p))

    @rule(captain=who)
    def team_disband(self, captain):
        self.run(self.game.team_disband(captain))

    @rule(p=who)
    def team_attempt(self, p):
        self.run(self.game.team_attempt(p))

    @rule(p=who, other=st.sampled_from(OTHER_SIDE))
    def link(self, p, other):
        self.run(self.game.link(p, other))

    @rule(p=who, amount=st.integers(1, 250 * USDC), second=st.booleans())
    def grant(self, p, amount, second):
        self.run(self.game.grant(p, amount, second))

    @rule(number=st.integers(1, 12))
    def refund(self, number):
        self.run(self.game.refund(number))

    @rule(p=st.sampled_from(PLAYERS[:WALLETS]), whole=st.integers(1, 600_000))
    def stake(self, p, whole):
        self.run(self.game.stake(p, whole))

    @rule(p=st.sampled_from(PLAYERS[:WALLETS]), amount=st.integers(1, 80 * USDC),
          decision=st.sampled_from(["reject", "approve", "leave"]))  # fmt: skip
    def withdraw(self, p, amount, decision):
        self.run(self.game.withdraw(p, amount, decision))

    @invariant()
    def promises(self):
        if getattr(self.game, "ready", False):
            self.run(_state_ok(self.game.app))
            type(self).checks += 1


EXAMPLES = 12
STEPS = 25


async def test_random_sequences_keep_every_money_promise(app_factory, chain):
    app = await app_factory(
        MODERATOR_TELEGRAM_USER_IDS="4242,4343",
        ROUND_MIN_ATTEMPTS_FOR_EXPIRY=2,
        SOLANA_RPC_URL=chain.url,
    )
    clock = Clock()
    app.clock = clock
    loop = asyncio.get_running_loop()

    def run(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=120)

    game = Game(app, clock)
    game.ready = False
    MoneyMachine.game, MoneyMachine.chain, MoneyMachine.run = game, chain, staticmethod(run)
    MoneyMachine.checks = 0
    from hypothesis.stateful import run_state_machine_as_test

    await asyncio.to_thread(
        run_state_machine_as_test,
        MoneyMachine,
        settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )  # fmt: skip
    print(f"\nmoney state machine: {EXAMPLES} examples of up to {STEPS} steps, "
          f"{MoneyMachine.checks} steps checked")  # fmt: skip
    assert MoneyMachine.checks >= EXAMPLES


@pytest.mark.parametrize("seed", [7])
async def test_a_thousand_operations_at_once_keep_every_money_promise(app_factory, seed):
    """1,000 operations from 50 players in 5 teams, fired 50 at a time in a random interleaving."""
    app = await app_factory(MODERATOR_TELEGRAM_USER_IDS="4242,4343", TEAM_MAX_MEMBERS=10)
    rng = random.Random(seed)
    players = [Actor("telegram", f"{1000 + i}", f"P{i}", username=f"p{i}") for i in range(50)]
    game = Game(app, Clock())
    app.clock = game.clock
    await open_round(app, seed=50 * USDC)
    for p in players:
        await admin.grant(app, CONSOLE_MOD, await game._ref(p), 200 * USDC, "start")
    captains = players[:5]
    for c in captains:
        await membership.create_team(app, c, f"Team {c.display_name}", private=False)
    for i, p in enumerate(players[5:]):
        await membership.join_team(app, p, f"Team {captains[i % 5].display_name}")
    ops = []
    for _ in range(1_000):
        p = rng.choice(players)
        kind = rng.choices(
            ["attempt", "replay", "team_attempt", "fund", "leave", "kick", "refund", "grant", "disband"],
            weights=[40, 8, 20, 12, 3, 3, 5, 6, 1],
        )[0]  # fmt: skip
        if kind == "attempt":
            ops.append(lambda p=p: game.attempt(p, "fresh", "go"))
        elif kind == "replay":
            ops.append(lambda p=p: game.attempt(p, "replay", "again"))
        elif kind == "team_attempt":
            ops.append(lambda p=p: game.team_attempt(p))
        elif kind == "fund":
            ops.append(lambda p=p, a=rng.randint(1, 30) * USDC: game.team_fund(p, a))
        elif kind == "leave":
            ops.append(lambda p=p: game.team_leave(p))
        elif kind == "kick":
            ops.append(lambda c=rng.choice(captains), p=p: game.team_kick(c, p))
        elif kind == "refund":
            ops.append(lambda n=rng.randint(1, 300): game.refund(n))
        elif kind == "grant":
            ops.append(lambda p=p, a=rng.randint(1, 150) * USDC: game.grant(p, a, True))
        else:
            ops.append(lambda c=rng.choice(captains): game.team_disband(c))
    for start in range(0, len(ops), 50):
        await asyncio.gather(*(op() for op in ops[start : start + 50]))
    async with app.db.autocommit() as conn:
        row = (
            await conn.execute(
                "SELECT (SELECT count(*) FROM accounts WHERE balance < 0) AS overdrafts, "
                "(SELECT COALESCE(SUM(amount), 0) FROM entries) AS ledger_sum, "
                "(SELECT count(*) FROM attempts) AS charged, "
                "(SELECT count(*) FROM attempts WHERE status = 'refunded') AS refunded, "
                "(SELECT count(*) FROM attempts WHERE status IN ('rejected', 'won') AND reply IS NOT NULL) "
                "  AS answered"
            )
        ).one()
    print(f"\n1,000 concurrent operations: {row.charged} attempts charged ({row.answered} answered, "
          f"{row.refunded} refunded), {row.overdrafts} overdrafts, ledger sum {row.ledger_sum}")  # fmt: skip
    assert row.overdrafts == 0 and row.ledger_sum == 0
    assert row.answered + row.refunded == row.charged > 100
    await _state_ok(app)
