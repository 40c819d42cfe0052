"""The quote and the payment apply the same rules (they call the same database functions): random
player states (ban, self-exclusion, cooldown, daily limit, balance, discount, a team's rights) give
the same verdict at the quote and at the payment, and when paid, the fee the quote showed and the
split core/rules.py computes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BountyError
from core.ports.discounts import DiscountPolicy
from core.rules import apply_discount, split_payment
from core.services import attempts
from core.services.players import ensure_player
from core.services.teams import membership, pool
from tests.helpers import USDC, fund, open_round, player

EXAMPLES = 60


class SetDiscount(DiscountPolicy):
    """A holder discount the test sets (the holdings policy reads the chain; the rule is the same)."""

    bps = 0

    def quote_sql(self, player_id: str) -> str:
        return "NULL"

    def from_quote(self, value: object) -> int:
        return self.bps

    async def discount_bps(self, conn, player_id: int) -> int:
        return self.bps


state = st.fixed_dictionaries(
    {
        "banned": st.sampled_from([None, None, None, -1, 1]),  # hours from now: over, or running
        "excluded": st.sampled_from([None, None, None, -1, 24]),
        "cooled": st.sampled_from([None, None, -30, -5]),  # seconds ago the last attempt was paid
        "daily": st.sampled_from([None, 5, 10, 50, 500]),  # USDC
        "balance": st.sampled_from([0, 5, 9, 10, 100]),  # USDC (the quote's fee is about 10)
        "discount": st.sampled_from([0, 1_000, 2_500, 5_000]),
        "team": st.sampled_from([None, None, "member", "left", "captain_only"]),
    }
)


def _verdict(outcome) -> str:
    if not isinstance(outcome, BountyError):
        return "paid"
    if "not in a team" in outcome.message or "no longer in" in outcome.message:
        return "not a member"  # no team to quote for, or the payment's own check of the team
    return f"{type(outcome).__name__}: {outcome.message[:20]}"


async def test_the_quote_and_the_payment_agree_on_every_state(app_factory):
    discounts = SetDiscount()
    app = await app_factory(ATTEMPT_COOLDOWN_SECONDS=10)
    app.discounts = discounts
    await open_round(app)
    p, captain = player("p"), player("captain")
    await fund(app, captain, 10_000 * USDC)
    team = await membership.create_team(app, captain, "Agreement", private=False)
    async with app.uow() as uow:
        pid = (await ensure_player(uow.conn, p)).id
        account = await app.accounts.get(uow.conn, "player", pid)
    counts: dict[str, int] = {}

    async def set_state(s: dict) -> None:
        now = app.clock()

        def hours(h):
            return None if h is None else now + timedelta(hours=h)

        async with app.uow() as uow:
            conn = uow.conn
            await conn.execute(
                "UPDATE players SET banned_until = :b, ban_reason = 'test', excluded_until = :e, "
                "last_attempt_at = :c, daily_limit = :d WHERE id = :id",
                {"b": hours(s["banned"]), "e": hours(s["excluded"]),
                 "c": None if s["cooled"] is None else now + timedelta(seconds=s["cooled"]),
                 "d": None if s["daily"] is None else s["daily"] * USDC, "id": pid},
            )  # fmt: skip
            have = await conn.execute(
                "SELECT balance FROM accounts WHERE id = :a", {"a": account.id}
            )
            delta = s["balance"] * USDC - have.scalar_one()
            await conn.execute(  # the test moves the balance as a grant would, both sides written
                "WITH t AS (INSERT INTO transfers (idempotency_key, kind) VALUES (gen_random_uuid()::text, 'grant') "
                "RETURNING id) INSERT INTO entries (transfer_id, account_id, amount) "
                "SELECT t.id, x.a, x.m FROM t, (VALUES (CAST(:me AS bigint), CAST(:d AS bigint)), "
                "((SELECT id FROM accounts WHERE kind = 'grants'), -CAST(:d AS bigint))) x(a, m) WHERE :d <> 0",
                {"me": account.id, "d": delta},
            )
            await conn.execute(
                "UPDATE accounts SET balance = :b WHERE id = :a",
                {"b": s["balance"] * USDC, "a": account.id},
            )
            await conn.execute(
                "UPDATE team_members SET left_at = CASE WHEN :left THEN now() END WHERE team_id = :t "
                "AND player_id = :p",
                {"left": s["team"] == "left", "t": team.id, "p": pid},
            )
            await conn.execute(
                "UPDATE teams SET spend_mode = :m WHERE id = :t",
                {"m": "captain" if s["team"] == "captain_only" else "members", "t": team.id},
            )
        discounts.bps = s["discount"]

    async def quote(s: dict):
        if s["team"] is None:
            return await attempts.quote_attempt(app, p, "agree?")
        return await attempts.quote_team_attempt(app, p, "agree?")

    await membership.join_team(app, p, team.invite_code)
    await pool.fund(app, captain, 5_000 * USDC)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(s=state)
    def check(s):
        run(one(s))

    async def one(s: dict) -> None:
        clean = {"banned": None, "excluded": None, "cooled": None, "daily": None, "balance": 100,
                 "discount": s["discount"], "team": "member" if s["team"] else None}  # fmt: skip
        await set_state(clean)
        confirmed = await quote(s)  # made while everything allowed it
        await set_state(s)
        try:
            at_quote = await quote(s)
        except BountyError as exc:
            at_quote = exc
        try:
            paid = await attempts.pay(app, p, confirmed.id, via_team=s["team"] is not None)
        except BountyError as exc:
            paid = exc
        if s["team"] == "left":  # no team left to quote for: refused before any rule is read
            assert isinstance(at_quote, BountyError) and isinstance(paid, BountyError), (s, paid)
        else:
            assert _verdict(at_quote) == _verdict(paid), (s, at_quote, paid)
        if not isinstance(paid, BountyError):
            assert paid.fee == at_quote.fee == apply_discount(at_quote.list_fee, s["discount"])
            await attempts.refund_attempt(app, paid.attempt_id, "the test's own")
            # the split the settlement would make is core/rules' (checked on real settlements in
            # test_payment.py); here, that the payment's escrow holds exactly the fee
            assert split_payment(paid.fee).total == paid.fee
        counts[_verdict(paid)] = counts.get(_verdict(paid), 0) + 1

    loop = asyncio.get_running_loop()

    def run(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    await asyncio.to_thread(check)
    print(
        f"\nquote and payment agreed on {sum(counts.values())} states: {dict(sorted(counts.items()))}"
    )
    assert "paid" in counts and len(counts) >= 5  # the states reached both sides of every rule
