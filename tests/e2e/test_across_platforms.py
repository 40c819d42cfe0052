"""One player on Discord and Telegram, through both real client libraries and both stand-ins, each
bot in its own App (its own process's caches): /link both ways, expired and reused codes, the same
balance on both, a ban set on Telegram stopping the linked player on Discord; and announcements from
two bot processes per platform reaching each channel exactly once."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from bots.discord import BountyDiscordBot
from bots.telegram import TelegramBot
from tests.e2e.discord import conftest as d
from tests.e2e.telegram import conftest as t
from tests.helpers import open_round
from tests.standins.discord_server import DiscordStandin, message_text
from tests.standins.local import no_leaks
from tests.standins.telegram_server import TelegramStandin

MOD_SETTINGS = {
    "MODERATOR_TELEGRAM_USER_IDS": str(t.MOD["id"]),
    "MODERATOR_DISCORD_ROLE_IDS": str(d.MOD_ROLE_ID),
}


@dataclass
class World:
    tg: TelegramStandin
    dc: DiscordStandin
    app_factory: Any
    telegram: t.Running | None = None
    discord: d.Running | None = None
    bots: list = None  # type: ignore[assignment]

    async def telegram_bot(self, **settings: Any) -> t.Running:
        settings = {
            "TELEGRAM_BOT_TOKEN": t.TOKEN,
            "TELEGRAM_API_BASE_URL": f"{self.tg.url}/bot",
            **MOD_SETTINGS,
            **settings,
        }
        app = await self.app_factory(reset=not self.bots, **settings)
        bot = TelegramBot(app, poll_timeout=5)
        self.bots.append(bot)
        await bot.start()
        return t.Running(app, bot, self.tg)

    async def discord_bot(
        self, client_options: dict[str, Any] | None = None, **settings: Any
    ) -> d.Running:
        settings = {
            "DISCORD_BOT_TOKEN": d.TOKEN,
            "DISCORD_API_BASE_URL": self.dc.api_url,
            "DISCORD_GUILD_ID": d.GUILD_ID,
            **MOD_SETTINGS,
            **settings,
        }
        app = await self.app_factory(reset=not self.bots, **settings)
        bot = BountyDiscordBot(
            app, client_options={"guild_ready_timeout": 0.05, **(client_options or {})}
        )
        self.bots.append(bot)
        await bot.start()
        return d.Running(app, bot, self.dc)


@pytest.fixture
async def world(app_factory) -> AsyncIterator[World]:
    tg, dc = TelegramStandin(), DiscordStandin(token=d.TOKEN)
    async with no_leaks(lambda: tg.port), no_leaks(lambda: dc.port):
        await tg.start()
        await dc.start()
        dc.add_guild(d.GUILD_ID)
        dc.add_role(d.GUILD_ID, d.MOD_ROLE_ID, "Moderators")
        dc.add_channel(d.GUILD_ID, d.GENERAL_ID, "general")
        dc.add_channel(d.GUILD_ID, d.ANNOUNCE_ID, "announcements")
        w = World(tg, dc, app_factory, bots=[])
        try:
            yield w
        finally:
            for bot in reversed(w.bots):
                await bot.stop()
            await dc.close()
            await tg.close()


class Transcript:
    """What each person typed and what the bot answered them, from the stand-ins' recorded messages."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def said(self, who: str, platform: str, typed: str) -> None:
        self.lines.append(f"{who} [{platform}]: {typed}")

    def answered(self, platform: str, text_: str) -> None:
        self.lines.append(f"  bot [{platform}]: " + text_.strip().replace("\n", "\n      "))

    def keep(self, name: str) -> None:
        folder = os.environ.get("BOUNTY_TRANSCRIPTS")
        if folder:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                f.write("\n".join(self.lines) + "\n")


async def tg_say(run: t.Running, log: Transcript, user, typed: str) -> list[str]:
    """A Telegram private message; every answer the bot sent back to that chat."""
    mark = run.tg.mark()
    await run.say(user, run.tg.private_chat(user), typed)
    log.said(user["first_name"], "telegram", typed)
    answers = [
        c.result["text"]
        for c in run.tg.calls_to("sendMessage", after=mark)
        if c.ok and c.params["chat_id"] == user["id"]
    ]
    for answer in answers:
        log.answered("telegram", answer)
    return answers


async def dc_slash(
    run: d.Running, log: Transcript, user, name: str, typed: str, **options: Any
) -> list[str]:
    interaction = await run.slash(user, name, **options)
    log.said(user["global_name"], "discord", typed)
    answers = [message_text(m) for m in run.dc.answers(interaction)]
    for answer in answers:
        log.answered("discord", answer)
    return answers


async def dc_link(run: d.Running, log: Transcript, user, code: str) -> list[str]:
    """/link <code> on Discord, then "Join them" on the question it answers with (if it asks)."""
    asked = await run.slash(user, "link", code=code)
    log.said(user["global_name"], "discord", f"/link code:{code}")
    answers = [message_text(m) for m in run.dc.answers(asked)]
    for answer in answers:
        log.answered("discord", answer)
    buttons = run.dc.buttons(run.answer(asked))
    if not buttons:
        return answers  # refused at once
    assert "Join these two accounts into one player?" in answers[-1]
    press = await run.click(user, buttons[0]["custom_id"])
    log.said(user["global_name"], "discord", f"(presses {buttons[0]['label']})")
    outcome = [message_text(m) for m in run.dc.answers(press)]
    for answer in outcome:
        log.answered("discord", answer)
    return answers + outcome


async def tg_link(run: t.Running, log: Transcript, user, code: str) -> list[str]:
    """/link <code> on Telegram, then "Join them" on the question it answers with (if it asks)."""
    answers = await tg_say(run, log, user, f"/link {code}")
    asked = run.last(user["id"])
    buttons = run.tg.buttons(asked)
    if not buttons:
        return answers
    await run.press(user, asked, buttons[0][1])
    log.said(user["first_name"], "telegram", f"(presses {buttons[0][0]})")
    outcome = run.last(user["id"])["text"]
    log.answered("telegram", outcome)
    return [*answers, outcome]


def code_in(answers: list[str]) -> str:
    return next(m for a in answers if (m := re.search(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b", a)))[1]


async def balance_on_both(
    telegram: t.Running, discord: d.Running, log: Transcript
) -> tuple[str, str]:
    on_tg = " ".join(await tg_say(telegram, log, t.ALICE, "/balance"))
    on_dc = " ".join(await dc_slash(discord, log, d.ALICE, "balance", "/balance"))
    return re.search(r"Balance: ([\d.,]+ USDC)", on_tg)[1], re.search(
        r"Balance: ([\d.,]+ USDC)", on_dc
    )[1]


async def test_link_from_telegram_to_discord_and_back(world):
    telegram = await world.telegram_bot()
    discord = await world.discord_bot()
    log = Transcript()
    for user in (t.ALICE, t.BOB, t.MOD):
        world.tg.start_private(user)
    await open_round(telegram.app, name="Vault")
    await tg_say(
        telegram, log, t.MOD, "/admin grant @alice 40 welcome"
    )  # unknown yet: not a player
    await tg_say(telegram, log, t.ALICE, "/balance")
    await tg_say(telegram, log, t.MOD, "/admin grant @alice 40 welcome")

    # Telegram -> Discord: Alice asks for a code on Telegram and enters it on Discord.
    code = code_in(await tg_say(telegram, log, t.ALICE, "/link"))
    linked = await dc_link(discord, log, d.ALICE, code)
    assert "Accounts linked" in linked[-1] and "Telegram @alice, Discord @alice" in linked[-1]
    assert await balance_on_both(telegram, discord, log) == ("40.00 USDC", "40.00 USDC")
    # Paid on Discord, seen on Telegram: one balance, one history.
    quote = discord.answer(await discord.slash(d.ALICE, "attempt", message="hello from discord"))
    await discord.click(d.ALICE, discord.dc.buttons(quote)[0]["custom_id"])
    assert await balance_on_both(telegram, discord, log) == ("30.00 USDC", "30.00 USDC")
    history = " ".join(await tg_say(telegram, log, t.ALICE, "/history"))
    assert "hello from discord" in history

    # The code works once; codes from the same platform are refused.
    reused = await dc_slash(discord, log, d.BOB, "link", f"/link code:{code}", code=code)
    assert "That code was already used" in reused[0]
    same = code_in(await tg_say(telegram, log, t.BOB, "/link"))
    assert (
        "Enter the code on your other platform: it was made on Telegram"
        in (await tg_say(telegram, log, t.BOB, f"/link {same}"))[0]
    )
    assert (
        "No such link code"
        in (await dc_slash(discord, log, d.BOB, "link", "/link code:ABCD-EFGH", code="ABCD-EFGH"))[
            0
        ]
    )

    # Discord -> Telegram (back): Bob asks on Discord, enters it on Telegram.
    code = code_in(await dc_slash(discord, log, d.BOB, "link", "/link"))
    assert "Accounts linked" in (await tg_link(telegram, log, t.BOB, code))[-1]

    # An expired code: made on Telegram, entered on Discord eleven minutes later.
    carol_dc = DiscordStandin.user(1_320_000_000_000_000_009, "carol", global_name="Carol")
    world.tg.start_private(t.CAROL)
    code = code_in(await tg_say(telegram, log, t.CAROL, "/link"))
    later = discord.app.clock() + timedelta(minutes=11)
    discord.app.clock = lambda: later
    assert (
        "That code expired (codes last 10 minutes)"
        in (await dc_slash(discord, log, carol_dc, "link", f"/link code:{code}", code=code))[0]
    )
    log.keep("link-both-ways.txt")


async def test_a_ban_set_on_telegram_stops_the_linked_player_on_discord(world):
    telegram = await world.telegram_bot()
    discord = await world.discord_bot()
    log = Transcript()
    for user in (t.ALICE, t.MOD):
        world.tg.start_private(user)
    await open_round(telegram.app, name="Vault")
    await dc_slash(discord, log, d.ALICE, "balance", "/balance")
    await dc_slash(
        discord,
        log,
        d.MONA,
        "admin grant",
        f"/admin grant player:<@{d.ALICE['id']}> amount:50 reason:welcome",
        player=f"<@{d.ALICE['id']}>",
        amount="50",
        reason="welcome",
        roles=(d.MOD_ROLE_ID,),
    )
    # Discord caches Alice's player in its process before the link (as a real Discord bot would).
    await dc_slash(
        discord, log, d.ALICE, "attempt", "/attempt message:warming up", message="warming up"
    )

    code = code_in(await dc_slash(discord, log, d.ALICE, "link", "/link"))
    assert "Accounts linked" in (await tg_link(telegram, log, t.ALICE, code))[-1]
    banned = (await tg_say(telegram, log, t.MOD, "/admin ban @alice 1d caught cheating"))[0]
    until = re.search(r"banned until (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", banned)[1]

    refused = (
        await dc_slash(
            discord, log, d.ALICE, "attempt", "/attempt message:let me in", message="let me in"
        )
    )[0]
    assert refused == f"You are banned until {until} UTC: caught cheating."
    assert (
        "50.00 USDC" in (await dc_slash(discord, log, d.ALICE, "balance", "/balance"))[0]
    )  # read-only answers
    await tg_say(telegram, log, t.MOD, "/admin unban @alice")
    again = await dc_slash(
        discord, log, d.ALICE, "attempt", "/attempt message:let me in", message="let me in"
    )
    assert "Confirm your attempt" in again[0]
    log.keep("ban-across-link.txt")


async def test_a_banned_account_cannot_escape_by_linking(world):
    telegram = await world.telegram_bot()
    discord = await world.discord_bot()
    log = Transcript()
    for user in (t.ALICE, t.MOD):
        world.tg.start_private(user)
    await open_round(telegram.app)
    await tg_say(telegram, log, t.ALICE, "/balance")
    await tg_say(telegram, log, t.MOD, "/admin ban @alice spamming")  # no duration: until unbanned
    await dc_slash(discord, log, d.ALICE, "balance", "/balance")
    await dc_slash(
        discord,
        log,
        d.MONA,
        "admin grant",
        f"/admin grant player:{d.ALICE['id']} amount:20 reason:clean account",
        player=d.ALICE["id"],
        amount="20",
        reason="clean account",
        roles=(d.MOD_ROLE_ID,),
    )
    code = code_in(await tg_say(telegram, log, t.ALICE, "/link"))  # the banned, empty side
    assert "Accounts linked" in (await dc_link(discord, log, d.ALICE, code))[-1]
    refused = (
        await dc_slash(
            discord, log, d.ALICE, "attempt", "/attempt message:fresh start", message="fresh start"
        )
    )[0]
    assert refused == "You are banned until a moderator lifts the ban: spamming."
    log.keep("ban-escape-refused.txt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_two_bot_processes_per_platform_deliver_each_announcement_once(world):
    """Two Discord shards and two Telegram webhook replicas, each with its own App: `/admin announce`
    on Telegram reaches the Discord channel once and the Telegram chat once."""
    world.dc.shard_count = 2
    world.tg.group(t.ANNOUNCE_ID, "Announcements")
    world.tg.start_private(t.MOD)
    announce = {
        "DISCORD_ANNOUNCE_CHANNEL_ID": d.ANNOUNCE_ID,
        "TELEGRAM_ANNOUNCE_CHAT_ID": t.ANNOUNCE_ID,
    }
    # With the shards named, discord.py connects to its configured gateway (not the one REST names).
    shards = [
        await world.discord_bot(
            {"shard_count": 2, "shard_ids": [i]},
            DISCORD_GATEWAY_URL=world.dc.gateway_url,
            **announce,
        )
        for i in (0, 1)
    ]
    replicas = []
    for _ in range(2):
        port = free_port()
        replicas.append(
            await world.telegram_bot(
                TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
                TELEGRAM_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                TELEGRAM_WEBHOOK_SECRET="replica-secret",
                **announce,
            )
        )
    assert [s.bot.client.shard_ids for s in shards] == [[0], [1]]
    assert all({"announcement", "notice"} <= set(r.bot.delivery.topics) for r in replicas)
    assert all({"announcement", "notice"} <= set(s.bot.delivery.topics) for s in shards)

    texts = [f"Maintenance window number {i} at 03:00 UTC." for i in range(5)]
    for body in texts:
        update = world.tg.push_command(
            t.MOD, world.tg.private_chat(t.MOD), f"/admin announce {body}"
        )
        await _handled_by_one(replicas, update)
    assert "Announced" in world.tg.messages_to(t.MOD["id"])[-1]["text"]

    async with shards[0].app.engine.connect() as conn:
        for _ in range(500):
            rows = (
                await conn.execute(
                    text(
                        "SELECT channel, done_at, claimed_by FROM outbox WHERE topic = 'announcement' AND channel <> 'console'"
                    )
                )
            ).all()
            if len(rows) == 10 and all(r.done_at for r in rows):
                break
            await asyncio.sleep(0.02)
    assert len(rows) == 10 and all(r.done_at for r in rows)
    for body in texts:
        in_discord = [m for m in world.dc.messages_in(d.ANNOUNCE_ID) if body in message_text(m)]
        in_telegram = [m for m in world.tg.messages_to(t.ANNOUNCE_ID) if body in m["text"]]
        assert len(in_discord) == 1 and len(in_telegram) == 1, body
    await asyncio.sleep(0.3)  # nothing arrives late from the other processes either
    assert (
        len(world.dc.messages_in(d.ANNOUNCE_ID)) == 5
        and len(world.tg.messages_to(t.ANNOUNCE_ID)) == 5
    )


async def _handled_by_one(replicas: list[t.Running], update: dict[str, Any]) -> None:
    """A webhook update reaches whichever replica Telegram's webhook points at; wait for it there."""
    for _ in range(1_000):
        for replica in replicas:
            if replica.bot.tracker.outcomes(update["update_id"]):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("no replica handled the update")
