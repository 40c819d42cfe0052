"""Part 2: one team pool hit by many concurrent team attempts, repeated: debits per second, and
proof that contention never overdraws it (overdrafts 0) nor breaks the ledger (sum 0)."""

from __future__ import annotations

import asyncio
import secrets
import time

from benchmarks import env
from benchmarks.play import Tally, play
from benchmarks.stats import error_names, rate
from core import ledger
from core.app import App
from core.services import rounds
from core.services.attempts import Payer
from core.services.players import ensure_player
from core.services.promises import check_money_promises

AFFORDABLE = (
    0.8  # each round the pool holds the next fees of 80 % of the attempts: the rest run dry
)


async def _team(app: App, actors) -> int:
    """One team with every teammate in it (more members than TEAM_MAX_MEMBERS allows players to
    gather by themselves: the bench needs many payers on one pool)."""
    async with app.uow() as uow:
        conn = uow.conn
        ids = [(await ensure_player(conn, a)).id for a in actors]
        team_id = (
            await conn.execute(
                "INSERT INTO teams (name, name_key, captain_player_id, invite_code) "
                "VALUES ('Bench', 'bench ' || :code, :captain, :code) RETURNING id",
                {"captain": ids[0], "code": secrets.token_hex(6)},
            )
        ).scalar_one()
        await conn.execute(
            "INSERT INTO team_members (team_id, player_id) SELECT :t, p FROM unnest(CAST(:ids AS bigint[])) p",
            {"t": team_id, "ids": ids},
        )
    return team_id


async def run(app: App, concurrent: int, repeats: int) -> tuple[dict, dict]:
    bounty = await env.ensure_round(app)
    actors = env.players("teammate", concurrent)
    team_id = await _team(app, actors)
    async with app.uow() as uow:
        pool = await app.accounts.get(uow.conn, ledger.TEAM_POOL, team_id)
        grants = await app.accounts.get(uow.conn, ledger.GRANTS)
    payer = Payer(pool, team_id)
    tally = Tally()
    funded = 0
    wall = 0.0
    for r in range(repeats):
        async with app.uow() as uow:
            upcoming = await rounds.next_attempt_number(uow.conn, bounty.id)
            target = sum(bounty.fee(upcoming + k) for k in range(int(concurrent * AFFORDABLE)))
            top_up = target - await ledger.balance(uow.conn, pool)
            if top_up > 0:
                await ledger.transfer(
                    uow.conn,
                    f"bench-top-up:{secrets.token_hex(8)}",
                    "grant",
                    [(grants, -top_up), (pool, top_up)],
                    memo="bench: team pool",
                )
                funded += top_up
        started = time.perf_counter()
        await asyncio.gather(
            *(
                play(
                    app,
                    a,
                    f"team {team_id}, {a.external_id}: open the vault for the team ({r})",
                    tally,
                    payer,
                )
                for a in actors
            )
        )
        wall += time.perf_counter() - started

    async with app.uow() as uow:
        conn = uow.conn
        balance = await ledger.balance(conn, pool)
        entries = (
            await conn.execute(
                "SELECT CAST(COALESCE(SUM(amount), 0) AS bigint) FROM entries WHERE account_id = :a",
                {"a": pool.id},
            )
        ).scalar_one()
        spent = (
            await conn.execute(
                "SELECT CAST(COALESCE(SUM(fee), 0) AS bigint) FROM attempts WHERE payer_account_id = :a "
                "AND status <> 'refunded'",
                {"a": pool.id},
            )
        ).scalar_one()
        negative = (
            await conn.execute("SELECT count(*) FROM accounts WHERE guarded AND balance < 0")
        ).scalar_one()
    overdrafts = negative + (1 if spent > funded else 0)
    ran_dry = tally.refusals.get("InsufficientFunds", 0)
    figures = {
        "hot_pool_debits_per_s": rate(tally.paid, wall),
        "hot_pool_overdrafts": overdrafts,
        "hot_pool_debits": tally.paid,
        "hot_pool_ran_dry": ran_dry,
        # 0 unless the pool's balance column, its entries and funded - spent disagree
        "hot_pool_drift": abs(balance - entries) + abs(funded - spent - balance),
    }
    parameters = {
        "concurrent": concurrent,
        "repeats": repeats,
        "team_id": team_id,
        "wall_s": round(wall, 2),
        "funded_each_repeat": f"the next {int(concurrent * AFFORDABLE)} fees",
        "funded_total": funded,
        "spent_total": spent,
        "final_balance": balance,
        "statuses": dict(tally.statuses),
        "fee_changed_retries": tally.fee_changed,
        "refusals": error_names(tally.refusals),
        "crashes": error_names(tally.crashes),
    }
    return figures, parameters


async def ledger_figures(app: App) -> tuple[dict, dict]:
    """The sum of every entry (must be 0) and how many of the ledger's invariants (``bounty check``) fail."""
    async with app.uow() as uow:
        total = (
            await uow.conn.execute("SELECT CAST(COALESCE(SUM(amount), 0) AS bigint) FROM entries")
        ).scalar_one()
        checks = await ledger.check_invariants(uow.conn) + await check_money_promises(uow.conn)
    failed = [c.name for c in checks if not c.ok]
    return {"ledger_sum": total, "ledger_checks_failed": len(failed)}, {
        "checks": len(checks),
        "failed": failed,
    }
