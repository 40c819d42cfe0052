"""Where the CPU of a bench run went (Linux ``/proc``): the bench process's main thread (the event
loop: the game's Python), its other threads (the local embedding model runs in one), and the
database server (the postmaster, every backend alive, and what exited backends used). Throughput
on a small machine is set by the sum: an attempt that costs twice the CPU runs at half the rate
once the cores are busy, so the split says what a figure like ``attempts_enhanced_ratio`` is made of."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Sample:
    main_s: float  # the bench's main thread (the event loop)
    threads_s: float  # the bench's other threads
    database_s: float  # the PostgreSQL server, children included


def _times(stat: str) -> tuple[float, float, float, float]:
    """utime, stime, cutime, cstime (seconds) from a /proc stat line."""
    fields = stat.rsplit(")", 1)[1].split()
    return tuple(int(x) / _TICK for x in fields[11:15])  # type: ignore[return-value]


def _ppid(stat: str) -> int:
    return int(stat.rsplit(")", 1)[1].split()[1])


class CpuMeter:
    """Samples the CPU used so far by this process's threads and by the server whose backend has
    ``backend_pid`` (the server must run on this machine, as the bench's embedded one does)."""

    def __init__(self, backend_pid: int) -> None:
        self.postmaster = _ppid(Path(f"/proc/{backend_pid}/stat").read_text())
        self.main_tid = threading.main_thread().native_id

    def sample(self) -> Sample:
        main = threads = 0.0
        for task in Path("/proc/self/task").iterdir():
            try:
                user, system, _, _ = _times((task / "stat").read_text())
            except OSError:
                continue  # a thread that just ended
            if int(task.name) == self.main_tid:
                main += user + system
            else:
                threads += user + system
        database = 0.0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            pid = int(proc.name)
            if pid == self.postmaster:
                user, system, child_user, child_system = _times(stat)
                database += user + system + child_user + child_system  # + exited backends
            elif _ppid(stat) == self.postmaster:
                user, system, _, _ = _times(stat)
                database += user + system
        return Sample(main, threads, database)


def per_attempt_ms(before: Sample, after: Sample, attempts: int) -> dict[str, float]:
    """The CPU an attempt cost, by where it ran (ms)."""
    if attempts <= 0:
        return {}
    parts = {
        "bench_main_thread": after.main_s - before.main_s,
        "bench_other_threads": after.threads_s - before.threads_s,
        "database": after.database_s - before.database_s,
    }
    out = {k: round(max(v, 0.0) * 1000 / attempts, 2) for k, v in parts.items()}
    out["total"] = round(sum(out.values()), 2)
    return out


async def meter(app) -> CpuMeter | None:
    """A meter for ``app``'s database, or None where /proc is not there to read."""
    try:
        async with app.db.autocommit() as conn:
            pid = (await conn.execute("SELECT pg_backend_pid() AS pid")).scalar_one()
        return CpuMeter(int(pid))
    except (OSError, ValueError, IndexError):
        return None
