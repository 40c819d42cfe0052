"""The bare-database ceiling of an attempt, measured in the same run on the same embedded PostgreSQL.

Raw asyncpg, no game code: one transaction per attempt that locks the payer's balance with a
conditional UPDATE, inserts 4 ledger entries (one statement) and the attempt row; shared balances are
derived from entries, as in the game. The game's own figures are reported beside this one as a ratio,
which stays comparable across machines whose absolute speed differs by 3x.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import asyncpg

from benchmarks.diagnose import diagnosed
from benchmarks.stats import latency_figures, open_loop_arrivals, rate
from core.db.raw import asyncpg_dsn, keep_session

SCHEMA = (
    "DROP TABLE IF EXISTS bench_ceiling_accounts, bench_ceiling_entries, bench_ceiling_attempts",
    "CREATE TABLE bench_ceiling_accounts (id bigint PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))",
    "CREATE TABLE bench_ceiling_entries (id bigserial PRIMARY KEY, account_id bigint NOT NULL, amount bigint NOT NULL)",
    "CREATE INDEX ON bench_ceiling_entries (account_id) INCLUDE (amount)",
    "CREATE TABLE bench_ceiling_attempts (id bigserial PRIMARY KEY, player_id bigint NOT NULL, "
    "fee bigint NOT NULL, message text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
)
PRIZE, STAKING, BUYBACK = -1, -2, -3  # shared accounts: entries only, never a locked row

# The statements of one attempt, in its one transaction.
STATEMENTS = (
    "UPDATE bench_ceiling_accounts SET balance = balance - $2 WHERE id = $1 AND balance >= $2 RETURNING balance",
    f"INSERT INTO bench_ceiling_entries (account_id, amount) VALUES ($1, -CAST($2 AS bigint)), ({PRIZE}, $3), ({STAKING}, $4), "
    f"({BUYBACK}, $5)",
    "INSERT INTO bench_ceiling_attempts (player_id, fee, message) VALUES ($1, $2, $3)",
)
FEE = 10_000_000


@dataclass
class Ceiling:
    """A pool on the game's database and ``players`` funded accounts of the bench's own tables."""

    url: str
    pool_size: int
    pool: asyncpg.Pool | None = None
    overdrafts: int = 0
    _next: dict[int, int] = field(default_factory=dict)

    async def __aenter__(self) -> Ceiling:
        self.pool = await asyncpg.create_pool(
            asyncpg_dsn(self.url),
            min_size=self.pool_size,
            max_size=self.pool_size,
            statement_cache_size=512,
            reset=keep_session,  # as the game's pool: no reset round trip
            server_settings={"application_name": "bounty-ceiling"},
        )
        async with self.pool.acquire() as conn:
            for statement in SCHEMA:
                await conn.execute(statement)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            await conn.execute(SCHEMA[0])
        await self.pool.close()

    async def fund(self, players: int, attempts_each: int) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO bench_ceiling_accounts (id, balance) VALUES ($1, $2)",
                [(p, FEE * (attempts_each + 1)) for p in range(players)],
            )

    async def attempt(self, player: int, message: str) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            await self.attempt_on(conn, player, message)

    async def attempt_on(self, conn: asyncpg.Connection, player: int, message: str) -> None:
        """One attempt: exactly the statements of ``STATEMENTS``, in one transaction."""
        prize = FEE * 7 // 10
        staking = (FEE - prize) * 3 // 10
        async with conn.transaction():
            if await conn.fetchval(STATEMENTS[0], player, FEE) is None:
                self.overdrafts += 1
                return
            await conn.execute(STATEMENTS[1], player, FEE, prize, staking, FEE - prize - staking)
            await conn.execute(STATEMENTS[2], player, FEE, message)


async def saturated(ceiling: Ceiling, players: int, total: int) -> tuple[dict, dict]:
    """``players`` tasks attempting back to back until ``total`` were made, like the game's run."""
    remaining = total
    done = 0

    async def player(p: int) -> None:
        nonlocal remaining, done
        n = 0
        while remaining > 0:
            remaining -= 1
            n += 1
            await ceiling.attempt(p, f"ceiling {p}: release the funds ({n})")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(player(p) for p in range(players)))
    wall = time.perf_counter() - started
    return (
        {"db_ceiling_attempts_per_s": rate(done, wall)},
        {
            "attempts": total,
            "players": players,
            "pool_size": ceiling.pool_size,
            "wall_s": round(wall, 2),
            "statements_per_attempt": len(STATEMENTS),
            "overdrafts": ceiling.overdrafts,
        },
    )


async def open_loop(
    ceiling: Ceiling, players: int, rate_per_s: float, duration: float
) -> tuple[dict, dict]:
    """Arrivals at fixed times; latency = completion - scheduled arrival (as the game's open loop)."""
    loop = asyncio.get_running_loop()
    arrivals = int(rate_per_s * duration)
    times: list[float] = []

    async def arrival(i: int, scheduled: float) -> None:
        await ceiling.attempt(i % players, f"ceiling open loop ({i})")
        times.append(loop.time() - scheduled)

    await open_loop_arrivals(rate_per_s, duration, arrival)
    figures = latency_figures("db_ceiling_attempt", times)
    return figures, {"rate_per_s": rate_per_s, "duration_s": duration, "arrivals": arrivals}


async def measure(
    url: str, *, pool_size: int, players: int, total: int, rate_per_s: float, duration: float
) -> tuple[dict, dict]:
    """Both ceiling figures, on tables of their own that are dropped afterwards."""
    async with Ceiling(url, pool_size) as ceiling:
        each = -(-(total + int(rate_per_s * duration)) // players) + 1
        await ceiling.fund(players, each)
        async with diagnosed(url) as diagnosis:
            saturated_figures, saturated_parameters = await saturated(ceiling, players, total)
        saturated_parameters["where_time_went"] = diagnosis.as_parameters()
        open_figures, open_parameters = await open_loop(ceiling, players, rate_per_s, duration)
    return (
        {**saturated_figures, **open_figures},
        {
            "saturated": saturated_parameters,
            "open_loop": open_parameters,
            "shape": "one transaction: " + "; ".join(s.split(" (")[0] for s in STATEMENTS),
        },
    )


def ratios(figures: dict) -> dict:
    """The game against the ceiling of the same run: throughput as a share of it, latency as a multiple."""
    out: dict = {}
    game, bare = figures.get("attempts_per_s"), figures.get("db_ceiling_attempts_per_s")
    if game and bare:
        out["attempts_vs_ceiling"] = round(game / bare, 3)
    game_p99, bare_p99 = figures.get("attempt_p99_ms"), figures.get("db_ceiling_attempt_p99_ms")
    if game_p99 and bare_p99:
        out["attempt_p99_vs_ceiling"] = round(game_p99 / bare_p99, 2)
    return out
