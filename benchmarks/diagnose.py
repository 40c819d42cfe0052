"""Where the time of a bench part goes: the bench process's CPU, the database server's CPU, and what
the server's backends were waiting on (sampled from pg_stat_activity), so a figure comes with a reason
(Python-bound, database-bound, waiting on a lock, or idle waiting for the client)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psutil

from core.db.raw import asyncpg_dsn


def _server_processes(pid: int | None) -> list[psutil.Process]:
    if not pid:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


@dataclass
class Diagnosis:
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    samples: int = 0
    waits: Counter[str] = field(default_factory=Counter)

    def as_parameters(self) -> dict[str, Any]:
        """Cores used by each side, and the share of sampled backends in each state / wait event."""
        wall = self.wall_s or 1e-9
        states = {k: round(v / max(1, self.samples), 2) for k, v in self.waits.most_common(8)}
        return {
            "client_cores": round(self.client_cpu_s / wall, 2),
            "server_cores": round(self.server_cpu_s / wall, 2),
            "backends_by_state": states,
            "samples": self.samples,
        }


@asynccontextmanager
async def diagnosed(url: str, *, interval: float = 0.05) -> AsyncIterator[Diagnosis]:
    """Measure around a block: ``async with diagnosed(url) as d: ...``; ``d`` is filled on exit."""
    d = Diagnosis()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    server_pid = (
        await conn.fetchval("SELECT pid FROM pg_stat_activity WHERE backend_type = 'postmaster'")
        or None
    )
    if server_pid is None:  # the postmaster is not listed; find it as the parent of our backend
        try:
            server_pid = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()")).ppid()
        except psutil.Error:
            server_pid = None
    servers = _server_processes(server_pid)
    me = psutil.Process()
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT state, wait_event_type, wait_event, count(*) AS n FROM pg_stat_activity "
                "WHERE application_name LIKE 'bounty%' AND pid <> pg_backend_pid() GROUP BY 1, 2, 3"
            )
            for r in rows:
                what = r["state"] or "?"
                if r["wait_event_type"]:
                    what += f": {r['wait_event_type']}/{r['wait_event']}"
                d.waits[what] += r["n"]
            d.samples += 1
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass

    client_before, server_before, started = me.cpu_times(), _cpu(servers), time.perf_counter()
    sampler = asyncio.create_task(sample())
    try:
        yield d
    finally:
        stop.set()
        await sampler
        client_after = me.cpu_times()
        d.wall_s = time.perf_counter() - started
        d.client_cpu_s = (client_after.user + client_after.system) - (
            client_before.user + client_before.system
        )
        d.server_cpu_s = _cpu(_server_processes(server_pid)) - server_before
        await conn.close()
