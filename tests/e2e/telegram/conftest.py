"""Telegram end-to-end set-up: the Bot API stand-in on 127.0.0.1 and the real python-telegram-bot
Application started in the test's event loop, stopped (and checked for leaks) after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bots.telegram import TelegramBot
from core.actors import Actor
from core.app import App
from tests.standins.telegram_server import TelegramStandin

TOKEN = "123:test"

ALICE = TelegramStandin.user(1001, "Alice", username="alice")
BOB = TelegramStandin.user(1002, "Bob", username="bob")
CAROL = TelegramStandin.user(1003, "Carol")  # never opens a private chat with the bot
MOD = TelegramStandin.user(4242, "Mona", username="mona_mod")
GROUP_ID = -100_200_300
ANNOUNCE_ID = -100_999


def actor(user: dict[str, Any]) -> Actor:
    """The core's view of a Telegram user (what the adapter builds)."""
    return Actor("telegram", str(user["id"]), user["first_name"])


@dataclass
class Running:
    app: App
    bot: TelegramBot
    tg: TelegramStandin

    async def handled(self, update: dict[str, Any], count: int = 1) -> list[str]:
        """Wait until the bot has fully handled ``update`` (``count`` deliveries of it)."""
        return await self.bot.tracker.wait(update["update_id"], count=count)

    async def say(
        self, user: dict[str, Any], chat: dict[str, Any], text: str, **options: Any
    ) -> dict[str, Any]:
        """Push a message and wait until the bot has dealt with it (answers included); ``options``
        go to ``push_command`` (``reply_to``, ``mention``)."""
        update = self.tg.push_command(user, chat, text, **options)
        await self.handled(update)
        return update

    async def press(
        self, user: dict[str, Any], message: dict[str, Any], data: str
    ) -> dict[str, Any]:
        update = self.tg.press(user, message, data)
        await self.handled(update)
        return update

    def last(self, chat_id: int) -> dict[str, Any]:
        messages = self.tg.messages_to(chat_id)
        assert messages, f"the bot sent nothing to {chat_id}"
        return messages[-1]


@pytest.fixture
async def start_bot(tg: TelegramStandin, app_factory) -> AsyncIterator[Any]:
    """``await start_bot(**settings)`` -> Running; the bot is stopped after the test."""
    started: list[tuple[App, TelegramBot]] = []

    async def start(
        *, guardian=None, bot_options: dict[str, Any] | None = None, **settings: Any
    ) -> Running:
        settings.setdefault("TELEGRAM_BOT_TOKEN", TOKEN)
        settings.setdefault("TELEGRAM_API_BASE_URL", f"{tg.url}/bot")
        app = await app_factory(guardian=guardian, **settings)
        bot = TelegramBot(app, poll_timeout=5, **(bot_options or {}))
        started.append((app, bot))
        await bot.start()
        return Running(app, bot, tg)

    try:
        yield start
    finally:
        for app, bot in reversed(started):
            await bot.stop()
            await app.aclose()
