"""The suite itself refuses the network: a missing stand-in fails instead of reaching out."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import make_settings
from tests.offline import NetworkRefused, _local


def test_a_connection_to_the_internet_is_refused():
    with pytest.raises(NetworkRefused), socket.create_connection(("93.184.216.34", 443), timeout=1):
        pass
    with pytest.raises(NetworkRefused):
        socket.getaddrinfo("api.mainnet-beta.solana.com", 443)


async def test_an_async_client_cannot_reach_out_either():
    with pytest.raises((NetworkRefused, httpx.ConnectError)):
        async with httpx.AsyncClient() as client:
            await client.get("https://api.anthropic.com/v1/messages")
    with pytest.raises(NetworkRefused):
        await asyncio.open_connection("1.1.1.1", 53)


def test_loopback_still_works():
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname(), timeout=1):
        pass


def test_every_url_the_test_settings_hold_is_on_this_machine():
    settings = make_settings()
    urls = {
        name: value
        for name, value in settings.model_dump().items()
        if isinstance(value, str) and "://" in value
    }
    assert "SOLANA_RPC_URL" in urls  # the one that defaults to mainnet
    for name, url in urls.items():
        assert _local(urlsplit(url).hostname), (name, url)
