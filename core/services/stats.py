"""/admin stats: the round's numbers, attempts and prize pool over time (for the chart), and the
seed's success measures.

Each success measure is one small function returning basis points, or None while the feature that
measures it has not landed ("not available yet" is shown, never a made-up figure). The memory, token
and teams features replace their function in ``MEASURES``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.db import Conn
from core.memory.stats import success_by_context
from core.rules import split_payment
from core.services import rounds
from core.services.audit import audit
from core.services.players import ensure_player, require_moderator

if TYPE_CHECKING:
    from core.app import App

# A measure: basis points, a sentence, or None while the feature behind it is not there.
Measure = Callable[["App", Conn, rounds.BountyRow], Awaitable[int | str | None]]


async def _success_rate(conn: Conn, bounty: rounds.BountyRow, mode: str) -> str:

    s = (await success_by_context(conn, bounty.id))[mode]
    if not s.attempts:
        return "no attempt answered this way yet"
    return f"{s.wins * 10_000 // s.attempts / 100:.2f} % ({s.wins:,} of {s.attempts:,} answered attempts)"


async def success_rate_enhanced_on(app: App, conn: Conn, bounty: rounds.BountyRow) -> str:
    """Wins among the round's attempts answered with the enhanced context (the guardian's memory)."""
    return await _success_rate(conn, bounty, "on")


async def success_rate_enhanced_off(app: App, conn: Conn, bounty: rounds.BountyRow) -> str:
    """Wins among the round's attempts answered with the plain conversation."""
    return await _success_rate(conn, bounty, "off")


async def staked_share_of_supply(app: App, conn: Conn, bounty: rounds.BountyRow) -> int | None:
    """$100Bs in active stakes over the circulating supply (TOKEN_CIRCULATING_SUPPLY), in bps."""
    staked = (
        await conn.execute("SELECT COALESCE(SUM(amount), 0) FROM stakes WHERE unstaked_at IS NULL")
    ).scalar_one()
    supply = app.settings.TOKEN_CIRCULATING_SUPPLY * 10**app.settings.TOKEN_DECIMALS
    return int(staked) * 10_000 // supply


async def active_players_in_teams(app: App, conn: Conn, bounty: rounds.BountyRow) -> int | None:
    """Share (bps) of the round's active players (who paid an attempt in it) who are in a team now."""
    row = (
        await conn.execute(
            (
                "SELECT count(*) AS active, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM team_members m "
                "WHERE m.player_id = a.player_id AND m.left_at IS NULL)) AS in_teams "
                "FROM (SELECT DISTINCT player_id FROM attempts WHERE bounty_id = :b AND status <> 'refunded') a"
            ),
            {"b": bounty.id},
        )
    ).one()
    return row.in_teams * 10_000 // row.active if row.active else 0


async def payout_approvals(app: App, conn: Conn, bounty: rounds.BountyRow) -> str:
    """How many moderators approve a payout (one: a moderator decides alone, said so)."""
    n = app.settings.PAYOUT_APPROVALS
    if n == 1:
        return "1 moderator per payout: one moderator decides alone (PAYOUT_APPROVALS=1)"
    return f"{n} distinct moderators per payout, never the payee"


MEASURES: list[tuple[str, Measure]] = [
    ("Success rate, enhanced context on", success_rate_enhanced_on),
    ("Success rate, enhanced context off", success_rate_enhanced_off),
    ("Staked share of supply", staked_share_of_supply),
    ("Active players in teams", active_players_in_teams),
    ("Payout approvals", payout_approvals),
]


@dataclass(frozen=True)
class RoundStats:
    bounty: rounds.BountyRow | None
    pool: int
    attempts: int
    players: int
    refunded: int
    revenue: int
    success_rate_bps: int
    by_day: list[tuple[str, int, int]]  # day, attempts, fees
    pool_over_time: list[
        tuple[datetime, int]
    ]  # after each hour with a movement: the pool's balance
    measures: list[tuple[str, int | str | None]]


async def pool_over_time(conn: Conn, pool_account_id: int) -> list[tuple[datetime, int]]:
    """The prize pool's balance at the end of each hour in which it moved (seed, attempts, the end)."""
    rows = (
        await conn.execute(
            (
                "SELECT date_trunc('hour', t.created_at) AS at, SUM(e.amount) AS moved FROM entries e "
                "JOIN transfers t ON t.id = e.transfer_id WHERE e.account_id = :a GROUP BY 1 ORDER BY 1"
            ),
            {"a": pool_account_id},
        )
    ).all()
    total, series = 0, []
    for r in rows:
        total += int(r.moved)
        series.append((r.at, total))
    return series


async def round_stats(app: App, actor: Actor) -> RoundStats:
    """The current round's numbers for moderators (audited)."""
    require_moderator(app.settings, actor)
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        bounty = await rounds.current_bounty(conn)
        await audit(conn, mod, actor, "stats", f"round #{bounty.id}" if bounty else None, {})
        if bounty is None:
            return RoundStats(None, 0, 0, 0, 0, 0, 0, [], [], [])
        agg = (
            await conn.execute(
                (
                    "SELECT count(*) FILTER (WHERE status <> 'refunded') AS n, "
                    "count(DISTINCT player_id) FILTER (WHERE status <> 'refunded') AS players, "
                    "count(*) FILTER (WHERE status = 'refunded') AS refunded, "
                    "COALESCE(SUM(fee) FILTER (WHERE status <> 'refunded'), 0) AS fees, "
                    "count(*) FILTER (WHERE status = 'won') AS won FROM attempts WHERE bounty_id = :b"
                ),
                {"b": bounty.id},
            )
        ).one()
        by_day = [
            (str(r.day), r.n, int(r.fees))
            for r in (
                await conn.execute(
                    (
                        "SELECT date_trunc('day', created_at)::date AS day, count(*) AS n, SUM(fee) AS fees FROM attempts "
                        "WHERE bounty_id = :b AND status <> 'refunded' GROUP BY 1 ORDER BY 1"
                    ),
                    {"b": bounty.id},
                )
            ).all()
        ]
        pool_account = await app.accounts.get(conn, ledger.PRIZE_POOL, bounty.id)
        pool = await ledger.balance(conn, pool_account)
        series = await pool_over_time(conn, pool_account.id)
        measures = [(name, await measure(app, conn, bounty)) for name, measure in MEASURES]
    revenue = int(agg.fees) - split_payment(int(agg.fees)).prize
    rate = (agg.won * 10_000 // agg.n) if agg.n else 0
    return RoundStats(
        bounty, pool, agg.n, agg.players, agg.refunded, revenue, rate, by_day, series, measures
    )
