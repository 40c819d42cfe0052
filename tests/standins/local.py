"""What every stand-in server and its tests share: serving on 127.0.0.1, and checking that a test
left no task or socket behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psutil
from aiohttp import web


async def serve_local(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1 at an ephemeral port; returns the runner (to clean up) and the port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def connections_to(port: int) -> list[Any]:
    return [
        c
        for c in psutil.Process().net_connections("tcp")
        if c.status == psutil.CONN_ESTABLISHED
        and port in (c.laddr.port, getattr(c.raddr, "port", None))
    ]


@asynccontextmanager
async def no_leaks(port_of: Any) -> AsyncIterator[None]:
    """Around a stand-in's life: afterwards no new task may still run and no socket to it stay open.
    ``port_of()`` gives the stand-in's port (known once it started)."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    leaked: list[asyncio.Task[Any]] = []
    for _ in range(50):  # client libraries' own tasks finish right after close; give them a moment
        leaked = [
            t for t in asyncio.all_tasks() if t not in before and t is not current and not t.done()
        ]
        if not leaked:
            break
        await asyncio.sleep(0.02)
    assert not leaked, f"tasks left running: {leaked}"
    assert not connections_to(port_of()), "sockets to the stand-in left open"


@asynccontextmanager
async def running(standin: Any, stop: str = "close") -> AsyncIterator[Any]:
    """A stand-in started for a test and stopped after it (its ``stop`` method), checked for leaks."""
    async with no_leaks(lambda: standin.port):
        await standin.start()
        try:
            yield standin
        finally:
            await getattr(standin, stop)()
