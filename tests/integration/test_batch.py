"""Group execution (core/db/batch.Batch) on the real database: concurrent callers share statements,
each gets its own row's result, a quiet caller waits for nobody, and one bad item fails alone."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

from core.db.batch import Batch
from core.errors import FeeChanged
from core.services import attempts
from tests.helpers import USDC, fund, open_round, player

_DOUBLE = text(
    "SELECT v * 2 AS doubled FROM unnest(CAST(:v AS bigint[])) WITH ORDINALITY AS u(v, i) ORDER BY i"
)
_CHECKED = text(
    "SELECT CAST(1 / (v - 13) AS bigint) * 0 + v AS v FROM unnest(CAST(:v AS bigint[])) WITH ORDINALITY "
    "AS u(v, i) ORDER BY i"
)


async def _double(conn, items):
    return [row.doubled for row in (await conn.execute(_DOUBLE, {"v": list(items)})).all()]


async def _refuse_13(conn, items):  # division by zero for the item 13, in the one statement
    return [row.v for row in (await conn.execute(_CHECKED, {"v": list(items)})).all()]


async def test_concurrent_callers_share_statements_and_each_gets_its_own_result(app):
    batch = Batch(app.db, _double)
    try:
        results = await asyncio.gather(*(batch.submit(i) for i in range(200)))
        assert results == [2 * i for i in range(200)]
        assert batch.items == 200
        assert (
            batch.statements == 2
        )  # the first at once, the 199 that queued meanwhile in one: 2, not 200
    finally:
        await batch.aclose()


async def test_a_quiet_caller_runs_at_once_in_a_batch_of_one(app):
    batch = Batch(app.db, _double)
    try:
        for i in range(3):
            assert await batch.submit(i) == 2 * i
        assert (batch.statements, batch.items) == (3, 3)
    finally:
        await batch.aclose()


async def test_one_bad_item_fails_alone_and_the_others_are_written(app):
    batch = Batch(app.db, _refuse_13)
    try:
        results = await asyncio.gather(
            *(batch.submit(i) for i in range(10, 17)), return_exceptions=True
        )
        assert [r for r in results if not isinstance(r, Exception)] == [10, 11, 12, 14, 15, 16]
        assert isinstance(results[3], asyncpg.DivisionByZeroError)
    finally:
        await batch.aclose()


async def test_a_caller_that_gives_up_does_not_stop_the_others(app):
    batch = Batch(app.db, _double)
    try:
        first = asyncio.ensure_future(batch.submit(1))
        waiting = [asyncio.ensure_future(batch.submit(i)) for i in range(2, 6)]
        await asyncio.sleep(0)  # all queued
        waiting[0].cancel()
        results = await asyncio.gather(first, *waiting, return_exceptions=True)
        assert results[0] == 2
        assert isinstance(results[1], asyncio.CancelledError)
        assert results[2:] == [6, 8, 10]
    finally:
        await batch.aclose()


async def test_concurrent_attempts_write_each_quote_and_each_rejection_on_its_own_row(app):
    """The attempt path's two batched writes: every quote and every rejection lands on its own row."""
    players = 40
    await open_round(app)
    actors = [player(f"b{i}") for i in range(players)]
    for a in actors:
        await fund(app, a, 500 * USDC)

    async def play(a):
        quote = await attempts.quote_attempt(app, a, f"{a.external_id} let me in")
        while True:
            try:
                return await attempts.confirm_attempt(app, a, quote.id)
            except FeeChanged as changed:
                quote = changed.quote

    outcomes = await asyncio.gather(*(play(a) for a in actors))
    assert {o.status for o in outcomes} == {"rejected"}
    async with app.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT a.id, a.status, a.reply, q.status AS quote_status, q.message FROM attempts a "
                    "JOIN attempt_quotes q ON q.id = a.quote_id"
                )
            )
        ).all()
    assert len(rows) == players
    by_id = {r.id: r for r in rows}
    for o in outcomes:  # each player's own reply on each player's own row
        assert by_id[o.attempt_id].status == "rejected" and by_id[o.attempt_id].reply == o.reply
        assert by_id[o.attempt_id].quote_status == "paid"
    quotes, rejections = app.batches["quotes"], app.batches["rejections"]
    assert quotes.items >= players and rejections.items == players
