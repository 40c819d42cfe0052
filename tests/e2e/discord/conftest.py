"""Discord end-to-end set-up: the Discord stand-in (REST and gateway) on 127.0.0.1 and the real
discord.py client started in the test's event loop, stopped (and checked for leaks) after each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bots.discord import BountyDiscordBot
from core.actors import Actor
from core.app import App
from tests.standins.discord_server import DiscordStandin, Interaction
from tests.standins.local import no_leaks

TOKEN = "test-token"
GUILD_ID = 1_310_000_000_000_000_001
GENERAL_ID = 1_310_000_000_000_000_011
ANNOUNCE_ID = 1_310_000_000_000_000_012
MOD_ROLE_ID = 1_310_000_000_000_000_021
OTHER_ROLE_ID = 1_310_000_000_000_000_022

ALICE = DiscordStandin.user(1_320_000_000_000_000_001, "alice", global_name="Alice")
BOB = DiscordStandin.user(1_320_000_000_000_000_002, "bob", global_name="Bob")
MONA = DiscordStandin.user(1_320_000_000_000_000_003, "mona", global_name="Mona")  # a moderator


def actor(user: dict[str, Any]) -> Actor:
    """The core's view of a Discord user (what the adapter builds; roles do not matter to balances)."""
    return Actor("discord", user["id"], user["global_name"] or user["username"])


@dataclass
class Running:
    app: App
    bot: BountyDiscordBot
    dc: DiscordStandin

    async def handled(self, interaction: Interaction, count: int = 1) -> Interaction:
        """Wait until the bot has finished with ``interaction`` (``count`` deliveries of it)."""
        await asyncio.wait_for(self.bot.handlers.handled.wait(interaction.id, count), 30)
        return interaction

    async def slash(
        self, user: dict[str, Any], name: str, /, *, roles: tuple[int, ...] = (), **options: Any
    ) -> Interaction:
        return await self.handled(await self.dc.slash(user, name, roles=roles, **options))

    async def click(self, user: dict[str, Any], custom_id: str, **kw: Any) -> Interaction:
        return await self.handled(await self.dc.click(user, custom_id, **kw))

    def answer(self, interaction: Interaction) -> dict[str, Any]:
        """The (last) message answering ``interaction``."""
        answers = self.dc.answers(interaction)
        assert answers, f"the bot did not answer interaction {interaction.id}"
        return answers[-1]


@pytest.fixture
async def dc() -> AsyncIterator[DiscordStandin]:
    standin = DiscordStandin(token=TOKEN)
    async with no_leaks(lambda: standin.port):
        await standin.start()
        standin.add_guild(GUILD_ID)
        standin.add_role(GUILD_ID, MOD_ROLE_ID, "Moderators")
        standin.add_role(GUILD_ID, OTHER_ROLE_ID, "Players")
        standin.add_channel(GUILD_ID, GENERAL_ID, "general")
        standin.add_channel(GUILD_ID, ANNOUNCE_ID, "announcements")
        try:
            yield standin
        finally:
            await standin.close()


@pytest.fixture
async def start_bot(dc: DiscordStandin, app_factory) -> AsyncIterator[Any]:
    """``await start_bot(**settings)`` -> Running; the bot is stopped after the test."""
    started: list[tuple[App, BountyDiscordBot]] = []

    async def start(*, guardian=None, commands=None, **settings: Any) -> Running:
        settings.setdefault("DISCORD_BOT_TOKEN", TOKEN)
        settings.setdefault("DISCORD_API_BASE_URL", dc.api_url)
        settings.setdefault("DISCORD_GUILD_ID", GUILD_ID)
        settings.setdefault("MODERATOR_DISCORD_ROLE_IDS", str(MOD_ROLE_ID))
        app = await app_factory(guardian=guardian, **settings)
        bot = BountyDiscordBot(app, commands=commands, client_options={"guild_ready_timeout": 0.05})
        started.append((app, bot))
        await bot.start()
        return Running(app, bot, dc)

    try:
        yield start
    finally:
        for app, bot in reversed(started):
            await bot.stop()
            await app.aclose()
