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

_active: list[tuple[str, yarl.URL]] = []  # what the running bots set, innermost last


@contextlib.contextmanager
def discord_endpoints(api_base_url: str | None, gateway_url: str | None) -> Iterator[None]:
    saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    base = api_base_url.rstrip("/") if api_base_url else saved[0]
    gateway = yarl.URL(gateway_url) if gateway_url else saved[1]
    if _active and _active[-1] != (base, gateway):
        raise RuntimeError("another Discord bot in this process uses other API or gateway URLs")
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway
    _active.append((base, gateway))
    try:
        yield
    finally:
        _active.pop()
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved
