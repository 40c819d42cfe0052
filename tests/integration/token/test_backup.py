"""`bounty backup` and `bounty restore` (SPEC §11): a game with money, a team pool, a stake and a
pending payout is dumped by the real command, restored into a fresh embedded database, and
`bounty check` passes on the copy with every balance the same; a database that holds anything is
refused."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from core.infra.embedded import EmbeddedPostgres
from core.services import attempts, teams
from core.services.token import payouts, staking
from tests.helpers import USDC, fund, open_round, player
from tests.integration.test_processes import bounty_env, run_cli
from tests.integration.token.conftest import TOKEN, hold, link

BALANCES = (
    "SELECT a.kind, a.owner_id, a.currency, a.balance, "
    "(SELECT COALESCE(sum(e.amount), 0) FROM entries e WHERE e.account_id = a.id) AS entries "
    "FROM accounts a ORDER BY a.kind, a.owner_id, a.currency"
)
COUNTS = (
    "SELECT (SELECT count(*) FROM attempts), (SELECT count(*) FROM teams), "
    "(SELECT count(*) FROM stakes WHERE unstaked_at IS NULL), "
    "(SELECT count(*) FROM payouts WHERE status = 'requested'), (SELECT count(*) FROM transfers)"
)


async def _read(url: str) -> tuple[list, tuple]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            balances = [tuple(r) for r in (await conn.execute(text(BALANCES))).all()]
            counts = tuple((await conn.execute(text(COUNTS))).one())
        return balances, counts
    finally:
        await engine.dispose()


async def test_backup_restore_into_a_fresh_database_and_check(token_app, chain, pg_url, tmp_path):
    app = await token_app()
    await open_round(app)
    a, b = player("backup-a"), player("backup-b")
    await fund(app, a, 200 * USDC)
    await fund(app, b, 100 * USDC)
    await attempts.confirm_attempt(app, a, (await attempts.quote_attempt(app, a, "one")).id)
    await teams.create_team(app, a, "Backup Crew", False)
    await teams.join_team(app, b, "Backup Crew")
    await teams.fund(app, b, 30 * USDC)
    wallet = await link(app, a)
    hold(chain, wallet, 5_000_000)
    await staking.stake(app, a, 1_000_000 * TOKEN, 30)
    await payouts.request(app, a, 25 * USDC)  # waiting for a moderator
    original = await _read(pg_url)
    _, (n_attempts, n_teams, n_stakes, n_payouts, _) = original
    assert (n_attempts, n_teams, n_stakes, n_payouts) == (1, 1, 1, 1)

    dump = tmp_path / "game.dump"
    backed = await asyncio.to_thread(
        run_cli,
        "backup",
        str(dump),
        env=bounty_env(DATABASE_URL=pg_url, BOUNTY_DATA_DIR=str(tmp_path)),
    )
    assert backed.returncode == 0, backed.stderr
    assert dump.stat().st_size > 0 and not (tmp_path / "game.dump.partial").exists()

    fresh = tmp_path / "elsewhere"
    env = bounty_env(BOUNTY_DATA_DIR=str(fresh))  # no DATABASE_URL: a new embedded database
    restored = await asyncio.to_thread(run_cli, "restore", str(dump), env=env)
    assert restored.returncode == 0, restored.stderr
    checked = await asyncio.to_thread(run_cli, "check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    passed = re.search(r"^(\d+)/(\d+) checks passed$", checked.stdout, re.M)
    assert "FAIL" not in checked.stdout and passed and passed[1] == passed[2], checked.stdout

    again = await asyncio.to_thread(run_cli, "restore", str(dump), env=env)
    assert again.returncode == 2
    assert "Refusing to restore: the database at" in again.stderr and "is not empty" in again.stderr

    pg = EmbeddedPostgres(fresh)
    url = pg.start()
    try:
        copy = await _read(url)
    finally:
        pg.stop()
    assert copy[0] == original[0]  # every account, its balance and its entries
    assert copy[1] == original[1]  # attempts, teams, stakes, pending payouts, transfers


def test_restore_refuses_a_file_that_is_not_there(tmp_path):
    done = run_cli(
        "restore", str(tmp_path / "nothing.dump"), env=bounty_env(BOUNTY_DATA_DIR=str(tmp_path))
    )
    assert done.returncode == 2 and "No backup at" in done.stderr
