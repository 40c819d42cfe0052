"""Tests never reach the network beyond this machine (as python-telegram-bot's ``OfflineRequest``).

Every external URL the settings know is pointed at a closed port on 127.0.0.1 for this process and
every process a test starts (they inherit the environment), so a missing stand-in fails at once
instead of reaching out; and in this process a connection or name lookup to anything but loopback
or a local socket raises ``NetworkRefused``.
"""

from __future__ import annotations

import ipaddress
import os
import socket

# A port nothing listens on: connecting is refused at once.
NOWHERE = "http://127.0.0.1:9"

# Settings (and SDK environment variables) that name a server outside this machine by default.
# (DISCORD_GATEWAY_URL stays unset: the bot then asks the REST API, a stand-in, where the gateway is.)
EXTERNAL_URLS = {
    "SOLANA_RPC_URL": f"{NOWHERE}/solana",
    "ANTHROPIC_BASE_URL": f"{NOWHERE}/anthropic",
    "OPENAI_BASE_URL": f"{NOWHERE}/openai/v1",
    "DISCORD_API_BASE_URL": f"{NOWHERE}/discord/api/v10",
    "TELEGRAM_API_BASE_URL": f"{NOWHERE}/telegram/bot",
}


class NetworkRefused(OSError):
    """A test tried to reach a host that is not this machine."""


def _local(host: object) -> bool:
    if not isinstance(host, str):
        return True  # a file descriptor or an AF_UNIX path
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _checked(address: object) -> None:
    host = address[0] if isinstance(address, tuple) and address else address
    if not _local(host):
        raise NetworkRefused(f"tests may not connect to {host!r}: start a stand-in on 127.0.0.1")


def refuse_the_network() -> None:
    """Point external URLs at nothing and make non-loopback connections fail (idempotent)."""
    for name, url in EXTERNAL_URLS.items():
        os.environ.setdefault(name, url)
    if getattr(socket.socket.connect, "_offline", False):
        return
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _checked(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _checked(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _local(host if isinstance(host, str) else host.decode()):
            raise NetworkRefused(f"tests may not look up {host!r}: start a stand-in on 127.0.0.1")
        return real_getaddrinfo(host, *args, **kwargs)

    connect._offline = True  # type: ignore[attr-defined]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
