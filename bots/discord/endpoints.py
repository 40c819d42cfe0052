"""Pointing discord.py at another API server (a proxy or the test stand-in).

discord.py keeps the REST base (``discord.http.Route.BASE``) and the fallback gateway URL
(``DiscordWebSocket.DEFAULT_GATEWAY``) as class attributes, so they are process-wide: a bot sets
them while it runs and restores them when it stops. Two bots in one process must agree on them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

_active: list[tuple[str, yarl.URL]] = []  # one entry per running bot
_saved: list[tuple[str, yarl.URL]] = []  # discord.py's own values, while any bot runs


@contextlib.contextmanager
def discord_endpoints(api_base_url: str | None, gateway_url: str | None) -> Iterator[None]:
    if not _active:
        _saved[:] = [(Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)]
    default_base, default_gateway = _saved[0]
    base = api_base_url.rstrip("/") if api_base_url else default_base
    gateway = yarl.URL(gateway_url) if gateway_url else default_gateway
    if _active and _active[0][0] != base:
        raise RuntimeError("another Discord bot in this process uses another API base URL")
    entry = (base, gateway)
    _active.append(entry)
    Route.BASE = base
    if gateway_url or not api_base_url:
        DiscordWebSocket.DEFAULT_GATEWAY = gateway
    try:
        yield
    finally:
        _active.remove(entry)
        if not _active:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = _saved.pop()
