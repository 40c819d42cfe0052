"""Whether this process is ready: the database, Redis, and each platform connection it holds.

Adapters register a probe for their connection while it runs (``platform_probe``); /readyz
(core.infra.ops_http) asks every probe and checks the database and Redis itself."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_probes: dict[str, Callable[[], bool]] = {}
_lock = threading.Lock()


@contextmanager
def platform_probe(name: str, connected: Callable[[], bool]) -> Iterator[None]:
    """While inside: /readyz also needs ``connected()`` (cheap, callable from another thread)."""
    with _lock:
        _probes[name] = connected
    try:
        yield
    finally:
        with _lock:
            if _probes.get(name) is connected:
                del _probes[name]


def platform_states() -> dict[str, bool]:
    with _lock:
        probes = dict(_probes)
    states = {}
    for name, connected in probes.items():
        try:
            states[name] = bool(connected())
        except Exception:
            states[name] = False
    return states


async def database_up(url: str, timeout: float = 3.0) -> None:
    """Raise unless a fresh connection to the database answers ``SELECT 1``."""
    import asyncpg

    from core.db.raw import asyncpg_dsn

    conn = await asyncio.wait_for(asyncpg.connect(asyncpg_dsn(url), timeout=timeout), timeout)
    try:
        await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout)
    finally:
        await conn.close(timeout=timeout)


def redis_client(url: str, timeout: float = 3.0):
    """An asyncio Redis client for the game's Redis URL (the embedded one is ``redis+socket://``)."""
    import redis.asyncio as aredis

    if url.startswith("redis+socket://"):
        return aredis.Redis(
            unix_socket_path=url.removeprefix("redis+socket://"),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
    return aredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


async def redis_up(url: str, timeout: float = 3.0) -> None:
    """Raise unless Redis answers PING."""
    client = redis_client(url, timeout)
    try:
        await asyncio.wait_for(client.ping(), timeout)
    finally:
        await client.aclose()
