"""The bot's life: ``run_discord`` (what ``bounty run`` calls) runs until told to stop and restores
discord.py's endpoints; a dropped gateway connection is resumed and play goes on; a wrong token
fails the start with discord.py's error, leaving nothing running; a refused privileged intent leaves
the bot running without it, saying why."""

from __future__ import annotations

import asyncio

import discord
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bots.discord import BountyDiscordBot, run_discord
from tests.e2e.discord.conftest import ALICE, GUILD_ID, TOKEN, actor
from tests.helpers import USDC, fund
from tests.standins.discord_server import message_text


async def test_run_discord_serves_until_stopped_and_restores_endpoints(dc, app_factory):
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    app = await app_factory(
        DISCORD_BOT_TOKEN=TOKEN,
        DISCORD_API_BASE_URL=dc.api_url,
        DISCORD_GATEWAY_URL=dc.gateway_url,
        DISCORD_GUILD_ID=GUILD_ID,
    )
    try:
        await fund(app, actor(ALICE), 2 * USDC)
        stop = asyncio.Event()
        task = asyncio.create_task(run_discord(app, stop))
        await dc.wait_connected()
        assert Route.BASE == dc.api_url
        interaction = await dc.slash(ALICE, "balance")
        await dc.wait_for(lambda c: c.method == "POST" and c.path.endswith("/callback"))
        assert "2.00 USDC" in message_text(dc.answers(interaction)[0])
        stop.set()
        await asyncio.wait_for(task, 30)
    finally:
        await app.aclose()
    assert (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY) == (base, gateway)


async def test_a_dropped_gateway_connection_is_resumed(start_bot, dc):
    run = await start_bot()
    await fund(run.app, actor(ALICE), 1 * USDC)
    await dc.drop_connections()
    await dc.wait_connected()
    assert dc.resumes == 1 and dc.identifies == 1
    assert "1.00 USDC" in message_text(run.answer(await run.slash(ALICE, "balance")))


async def test_a_wrong_token_fails_the_start_cleanly(dc, app_factory):
    app = await app_factory(
        DISCORD_BOT_TOKEN="not-the-token",
        DISCORD_API_BASE_URL=dc.api_url,
        DISCORD_GUILD_ID=GUILD_ID,
    )
    base = Route.BASE
    try:
        with pytest.raises(discord.LoginFailure):
            await BountyDiscordBot(app).start()
    finally:
        await app.aclose()
    assert Route.BASE == base


async def test_an_invalidated_session_identifies_again_at_the_same_server(start_bot, dc):
    run = await start_bot()  # no DISCORD_GATEWAY_URL: the gateway is the one GET /gateway/bot named
    dc.forget_sessions()
    await dc.drop_connections()
    await dc.wait_connected()
    assert dc.identifies == 2 and dc.resumes == 0
    assert "No round yet" in message_text(run.answer(await run.slash(ALICE, "bounty status")))


async def test_a_refused_message_content_intent_runs_the_bot_without_it_and_says_why(
    start_bot, dc, caplog
):
    dc.privileged_intents = False  # the Developer Portal switch is off
    run = await start_bot(TEAM_DISCORD_BRIDGE=True)
    assert not run.bot.reads_team_chat
    assert not run.bot.client.intents.message_content
    assert any(
        "Privileged Gateway Intents" in r.getMessage()
        for r in caplog.records
        if r.levelname == "ERROR"
    )
    await fund(run.app, actor(ALICE), 1 * USDC)
    assert "1.00 USDC" in message_text(
        run.answer(await run.slash(ALICE, "balance"))
    )  # the game goes on
