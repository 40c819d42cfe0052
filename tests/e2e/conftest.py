"""Fixtures every end-to-end test shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.standins.local import running
from tests.standins.telegram_server import TelegramStandin


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandin]:
    """The Telegram Bot API stand-in on 127.0.0.1, closed (and checked for leaked sockets) after the test."""
    async with running(TelegramStandin()) as standin:
        yield standin
