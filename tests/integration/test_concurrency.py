"""200 attempts from 20 players with small balances, all at once, against real PostgreSQL."""

import asyncio
import random

from sqlalchemy import text

from core import ledger
from core.errors import BountyError, FeeChanged, InsufficientFunds
from core.services import attempts
from tests.fakes import ScriptedGuardian
from tests.helpers import USDC, fund, open_round, player

PLAYERS, TRIES = 20, 10


async def test_concurrent_attempts_conserve_money_and_never_overdraw(app_factory):
    rng = random.Random(7)
    # a third of the answers fail: those attempts must be refunded in full, concurrently with the rest
    guardian = ScriptedGuardian(
        *[rng.choice(["reject", "reject", "fail"]) for _ in range(PLAYERS * TRIES)]
    )
    app = await app_factory(guardian=guardian)
    bounty_id = await open_round(app, seed=0)
    actors = [player(i) for i in range(PLAYERS)]
    funded = {}
    for i, actor in enumerate(actors):
        funded[actor.external_id] = (25 + i) * USDC  # enough for 2-3 attempts, not for 10
        await fund(app, actor, funded[actor.external_id])

    outcomes: list[attempts.Outcome] = []
    refusals: dict[str, int] = {}

    async def play(actor):
        for t in range(TRIES):
            try:
                quote = await attempts.quote_attempt(
                    app, actor, f"try {t} from {actor.external_id}"
                )
                for _ in range(50):
                    try:
                        outcomes.append(await attempts.confirm_attempt(app, actor, quote.id))
                        break
                    except FeeChanged as changed:
                        quote = changed.quote
            except BountyError as err:
                refusals[type(err).__name__] = refusals.get(type(err).__name__, 0) + 1

    await asyncio.gather(*(play(a) for a in actors))

    assert len(outcomes) + sum(refusals.values()) == PLAYERS * TRIES
    assert set(refusals) <= {InsufficientFunds.__name__}
    assert {o.status for o in outcomes} <= {"rejected", "refunded"}
    assert any(o.status == "refunded" for o in outcomes) and any(
        o.status == "rejected" for o in outcomes
    )
    async with app.db.autocommit() as conn:
        checks = await ledger.check_invariants(conn)
        assert all(c.ok for c in checks), [c for c in checks if not c.ok]
        rows = (
            await conn.execute(
                text(
                    "SELECT i.external_id, a.balance, COALESCE((SELECT SUM(fee) FROM attempts t WHERE t.player_id = i.player_id "
                    "AND t.status <> 'refunded'), 0) AS spent FROM player_identities i JOIN accounts a "
                    "ON a.kind = 'player' AND a.owner_id = i.player_id"
                )
            )
        ).all()
        for ext, balance, spent in rows:
            assert balance >= 0
            assert balance == funded[ext] - spent, ext
        # every debit is matched by a reply or a refund, and numbers were handed out once each
        assert (
            await conn.execute(text("SELECT count(*) FROM attempts WHERE status = 'pending'"))
        ).scalar_one() == 0
        assert (
            await conn.execute(
                text("SELECT count(*) FROM attempts WHERE status = 'rejected' AND reply IS NULL")
            )
        ).scalar_one() == 0
        numbers = (
            (
                await conn.execute(
                    text("SELECT number FROM attempts WHERE bounty_id = :b ORDER BY number"),
                    {"b": bounty_id},
                )
            )
            .scalars()
            .all()
        )
        assert len(numbers) == len(set(numbers)) == len(outcomes)
        fees = (
            await conn.execute(
                text("SELECT number, list_fee FROM attempts WHERE bounty_id = :b"), {"b": bounty_id}
            )
        ).all()
        from core.rules import attempt_fee

        assert all(fee == attempt_fee(n, 10 * USDC, 78, 4_500 * USDC) for n, fee in fees)
    await app.aclose()
