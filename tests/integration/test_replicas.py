"""More than one process on one database: the game's pool follows DATABASE_POOL_SIZE, the connection
budget is read from the server, and a Telegram update id is taken by one replica only, even when two
take it at the same moment."""

from __future__ import annotations

import asyncio

from core.app import bootstrap
from core.services import replicas
from tests.conftest import make_settings


async def test_the_pool_size_setting_bounds_the_games_connections(pg_url):
    app = bootstrap(make_settings(DATABASE_POOL_SIZE=3), pg_url)  # as `bounty run` makes it
    try:
        await _bounded(app)
    finally:
        await app.aclose()


async def _bounded(app) -> None:
    assert app.db.max_size == 3
    held = [await (await app.db.pool()).acquire() for _ in range(3)]
    try:
        pool = await app.db.pool()
        # a fourth waits: the pool never opens more than the setting allows
        waiting = asyncio.ensure_future(pool.acquire())
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done
        await pool.release(held.pop())
        held.append(await waiting)
    finally:
        for conn in held:
            await (await app.db.pool()).release(conn)
    budget = await replicas.connection_budget(app)
    assert budget.this_process == 3 + replicas.BATCH_CONNECTIONS
    assert budget.max_connections > budget.reserved >= 0 and budget.in_use >= 1
    assert "DATABASE_POOL_SIZE" in budget.describe()


async def test_an_update_is_taken_once_whoever_races_for_it(app_factory):
    one = await app_factory()
    two = await app_factory(reset=False)
    results = await asyncio.gather(
        *(
            replicas.take_update(app, 7, update_id, name)
            for update_id in range(1, 21)
            for app, name in ((one, "a"), (two, "b"))
        )
    )
    pairs = [results[i : i + 2] for i in range(0, len(results), 2)]
    assert all(sorted(p) == [False, True] for p in pairs)
    assert await replicas.take_update(one, 8, 1, "a")  # another bot's ids are its own
