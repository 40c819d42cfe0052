"""Fixtures every end-to-end test shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.standins.local import no_leaks
from tests.standins.telegram_server import TelegramStandin


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandin]:
    """The Telegram Bot API stand-in on 127.0.0.1, closed (and checked for leaked sockets) after the test."""
    standin = TelegramStandin()
    async with no_leaks(lambda: standin.port):
        await standin.start()
        try:
            yield standin
        finally:
            await standin.close()
