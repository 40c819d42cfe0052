"""Property: any sequence of grants, attempts, refunds and wins keeps the ledger whole."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from core import ledger
from core.errors import BountyError
from core.ports.guardian import Verdict
from core.services import admin, attempts
from tests.conftest import reset_database
from tests.fakes import ScriptedGuardian
from tests.helpers import CONSOLE_MOD, USDC, open_round, player

ops = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(0, 3), st.integers(1, 40 * USDC)),
        st.tuples(
            st.just("attempt"),
            st.integers(0, 3),
            st.sampled_from(["reject", "fail", "approve", "pending"]),
        ),
        st.tuples(st.just("refund"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("new_round"), st.just(0), st.integers(0, 50 * USDC)),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=ops)
async def test_random_sequences_keep_the_ledger_whole(app, sequence):
    await reset_database(app)
    guardian = ScriptedGuardian()
    app.guardian = guardian
    await open_round(app, seed=10 * USDC)
    actors = [player(i) for i in range(4)]
    pending: list[int] = []
    round_no = 1
    for op, who, arg in sequence:
        try:
            if op == "grant":
                from core.services.players import ensure_player

                async with app.uow() as uow:
                    p = await ensure_player(uow.conn, actors[who])
                await admin.grant(app, CONSOLE_MOD, f"#{p.id}", arg, "prop")
            elif op == "attempt":
                q = await attempts.quote_attempt(app, actors[who], f"m{who}")
                if arg == "pending":
                    paid = await attempts.pay(app, actors[who], q.id)
                    pending.append(paid.attempt_id)
                else:
                    guardian.script.append(arg)
                    await attempts.confirm_attempt(app, actors[who], q.id)
            elif op == "refund":
                if pending and who % 2 == 0:
                    await attempts.refund_attempt(app, pending.pop(0), "prop")
                elif pending:
                    await attempts.record_verdict(
                        app, pending.pop(0), Verdict(who % 3 == 0, "r", "prop", "p")
                    )
                else:
                    await admin.refund(app, CONSOLE_MOD, who + 1, "prop")
            elif op == "new_round":
                round_no += 1
                await open_round(app, seed=arg, name=f"R{round_no}")
        except BountyError:
            pass  # refused operations must leave nothing behind; the checks below prove it
        async with app.db.autocommit() as conn:
            checks = await ledger.check_invariants(conn)
            assert all(c.ok for c in checks), (op, [c for c in checks if not c.ok])
            assert (
                await conn.execute(
                    text("SELECT count(*) FROM accounts WHERE guarded AND balance < 0")
                )
            ).scalar_one() == 0
