"""The team chat bridge, both stand-ins against one bot process (the Discord and the Telegram bot on
one App, as ``bounty run`` starts them): a team formed across the two platforms, funded, a team
attempt, a win split among the members; then chat relayed both ways with author and platform, once,
never back, pinging nobody; an edit and a reply that follow across a restart; a platform down delays
a relay and loses nothing. The test prints the transcript of the recorded calls (``pytest -s``)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from bots.discord import BountyDiscordBot
from bots.telegram import TelegramBot
from core.actors import Actor
from core.app import App
from core.services import teams
from tests.e2e.team_helpers import settled
from tests.helpers import PASSPHRASE, USDC, fund, open_round
from tests.standins.discord_server import DiscordStandin, call_payload, message_text
from tests.standins.local import no_leaks
from tests.standins.telegram_server import TelegramStandin

DC_TOKEN, TG_TOKEN = "test-token", "123:test"
GUILD_ID = 1_310_000_000_000_000_001
GENERAL_ID = 1_310_000_000_000_000_011
MOD_ROLE_ID = 1_310_000_000_000_000_021
GROUP_ID = -100_200_300

ALICE_DC = DiscordStandin.user(1_320_000_000_000_000_001, "alice", global_name="Alice")
BOB_TG = TelegramStandin.user(1002, "Bob", username="bob")


@pytest.fixture
async def dc() -> AsyncIterator[DiscordStandin]:
    standin = DiscordStandin(token=DC_TOKEN)
    async with no_leaks(lambda: standin.port):
        await standin.start()
        standin.dispatch_messages = True
        standin.add_guild(GUILD_ID)
        standin.add_role(GUILD_ID, MOD_ROLE_ID, "Moderators")
        standin.add_channel(GUILD_ID, GENERAL_ID, "general")
        standin.add_user(ALICE_DC)
        try:
            yield standin
        finally:
            await standin.close()


@dataclass
class Bots:
    app: App
    discord: BountyDiscordBot
    telegram: TelegramBot


@pytest.fixture
async def start_bots(dc, tg, app_factory):
    running: list[Bots] = []

    async def start(*, reset: bool = True, discord: bool = True) -> Bots:
        app = await app_factory(
            reset=reset,
            DISCORD_BOT_TOKEN=DC_TOKEN,
            DISCORD_API_BASE_URL=dc.api_url,
            DISCORD_GUILD_ID=GUILD_ID,
            MODERATOR_DISCORD_ROLE_IDS=str(MOD_ROLE_ID),
            TELEGRAM_BOT_TOKEN=TG_TOKEN,
            TELEGRAM_API_BASE_URL=f"{tg.url}/bot",
        )
        bots = Bots(
            app,
            BountyDiscordBot(app, client_options={"guild_ready_timeout": 0.05}),
            TelegramBot(app, poll_timeout=5),
        )
        running.append(bots)
        if discord:
            await bots.discord.start()
        await bots.telegram.start()
        return bots

    try:
        yield start
    finally:
        for bots in reversed(running):
            await bots.telegram.stop()
            await bots.discord.stop()
            await bots.app.aclose()


NOTES: list[tuple[float, str]] = []  # what the people in the test did, for the transcript


def note(line: str) -> None:
    NOTES.append((time.perf_counter(), line))


async def slash(bots: Bots, dc: DiscordStandin, user, name: str, **options) -> list[str]:
    note(f"Discord  Alice types /{name} " + " ".join(str(v) for v in options.values()))
    interaction = await dc.slash(user, name, **options)
    await bots.discord.handlers.handled.wait(interaction.id)
    return [message_text(m) for m in dc.answers(interaction)]


async def say(bots: Bots, tg: TelegramStandin, user, chat, text_: str) -> dict[str, Any]:
    note(
        f"Telegram Bob writes in {'the team group' if chat['id'] == GROUP_ID else 'his private chat'}: {text_!r}"
    )
    update = tg.push_command(user, chat, text_)
    await bots.telegram.tracker.wait(update["update_id"])
    return update


def overwrites_text(overwrites: list[dict]) -> str:
    who = {
        str(GUILD_ID): "@everyone",
        str(DiscordStandin.BOT_ID): "bot",
        str(MOD_ROLE_ID): "moderators",
        ALICE_DC["id"]: "Alice",
    }
    return ", ".join(
        f"{who.get(o['id'], o['id'])} allow={o['allow']} deny={o['deny']}" for o in overwrites
    )


def transcript(dc: DiscordStandin, tg: TelegramStandin) -> list[str]:
    """What happened, from both stand-ins' recorded calls, in order."""
    events: list[tuple[float, str]] = list(NOTES)
    for i in dc.interactions.values():
        if i.type == 3:
            events.append(
                (
                    i.dispatched_at,
                    f"Discord  Alice presses {i.payload['data']['custom_id'].split(':')[1]} button",
                )
            )
        first = next(
            (
                c
                for c in dc.calls
                if i.token in c.path
                and c.method in ("POST", "PATCH")
                and message_text(call_payload(c))
            ),
            None,
        )
        if first is not None:
            flag = (
                " (only Alice sees it)"
                if (dc.answers(i) or [{"flags": 0}])[0]["flags"] & 64
                else ""
            )
            events.append(
                (first.at, f"Discord  bot answers{flag}: {message_text(call_payload(first))!r}")
            )
    for c in dc.calls:
        body = c.body if isinstance(c.body, dict) else {}
        if (
            c.method == "POST"
            and c.path.startswith("/webhooks/")
            and not c.path.startswith(f"/webhooks/{dc.APP_ID}")
        ):
            events.append(
                (
                    c.at,
                    f"Discord  webhook as {body.get('username')!r} in the team channel: "
                    f"{body.get('content')!r}  allowed_mentions={json.dumps(body.get('allowed_mentions'))}",
                )
            )
        elif (
            c.method == "PATCH"
            and c.path.startswith("/webhooks/")
            and "/messages/" in c.path
            and not c.path.startswith(f"/webhooks/{dc.APP_ID}")
        ):
            events.append((c.at, f"Discord  webhook message edited: {body.get('content')!r}"))
        elif c.method == "POST" and c.path == f"/guilds/{GUILD_ID}/channels":
            events.append(
                (
                    c.at,
                    f"Discord  bot creates {'category' if body.get('type') == 4 else 'channel'} "
                    f"{body.get('name')!r}: {overwrites_text(body.get('permission_overwrites') or [])}",
                )
            )
        elif (
            c.method == "PATCH"
            and c.path.startswith("/channels/")
            and "permission_overwrites" in body
        ):
            events.append(
                (
                    c.at,
                    "Discord  bot sets the team channel's overwrites: "
                    f"{overwrites_text(body['permission_overwrites'])}",
                )
            )
        elif (
            c.method == "POST"
            and c.path.startswith("/channels/")
            and c.path.endswith("/messages")
            and c.ok
        ):
            channel = dc.channels.get(int(c.path.split("/")[2]), {})
            where = "a DM" if channel.get("type") == 1 else c.path
            events.append((c.at, f"Discord  bot posts in {where}: {message_text(c.response)!r}"))
    for c in tg.calls:
        if not c.ok:
            continue
        if c.method in ("sendMessage", "editMessageText"):
            target = {GROUP_ID: "the team group", BOB_TG["id"]: "Bob's private chat"}.get(
                c.params.get("chat_id"), str(c.params.get("chat_id"))
            )
            verb = "sends" if c.method == "sendMessage" else "edits its message"
            reply = c.params.get("reply_parameters")
            extra = f" (reply to message {reply['message_id']})" if isinstance(reply, dict) else ""
            events.append((c.at, f"Telegram bot {verb} in {target}{extra}: {c.result['text']!r}"))
        elif c.method in (
            "createChatInviteLink",
            "getChatMember",
            "banChatMember",
            "unbanChatMember",
            "answerCallbackQuery",
        ):
            args = {
                k: v for k, v in c.params.items() if k in ("chat_id", "user_id", "member_limit")
            }
            events.append((c.at, f"Telegram bot calls {c.method} {args}"))
    return [line for _, line in sorted(events, key=lambda e: e[0])]


async def test_a_team_across_discord_and_telegram_funds_wins_splits_and_chats(
    start_bots, dc, tg, capsys
):
    NOTES.clear()
    bots = await start_bots()
    alice, bob = (
        Actor("discord", ALICE_DC["id"], "Alice"),
        Actor("telegram", str(BOB_TG["id"]), "Bob"),
    )
    await open_round(bots.app, seed=100 * USDC)
    await fund(bots.app, alice, 50 * USDC)
    await fund(bots.app, bob, 50 * USDC)
    tg.start_private(BOB_TG)
    bob_dm = tg.private_chat(BOB_TG)

    # formed across the platforms: Bob creates it on Telegram, Alice joins on Discord
    await say(bots, tg, BOB_TG, bob_dm, "/team create Vault Busters")
    code = (await teams.info(bots.app, bob)).team.invite_code
    assert "You joined Vault Busters" in "\n".join(
        await slash(bots, dc, ALICE_DC, "team join", code=code)
    )
    group = tg.group(GROUP_ID, "Vault Busters HQ")
    tg.add_member(group, BOB_TG, "creator")
    tg.make_bot_admin(group)
    await say(bots, tg, BOB_TG, group, "/team link")
    await settled(bots.app, "discord", "telegram")
    team = (await teams.info(bots.app, bob)).team
    channel_id = int((await teams.chat_state(bots.app, team.id, "discord")).chat.chat_id)
    assert ALICE_DC["id"] in {o["id"] for o in dc.channels[channel_id]["permission_overwrites"]}

    # funded from both sides, a team attempt from each: a rejection, then the passphrase wins
    await slash(bots, dc, ALICE_DC, "team fund", amount="30")
    await say(bots, tg, BOB_TG, bob_dm, "/team fund 10")
    await slash(bots, dc, ALICE_DC, "team attempt", message="open up, for the team")
    ask = dc.answers(dc.interactions[max(dc.interactions)])[-1]
    press = await dc.click(ALICE_DC, dc.buttons(ask)[0]["custom_id"])
    await bots.discord.handlers.handled.wait(press.id)
    assert "The guardian refuses" in message_text(dc.answers(press)[-1])
    await say(bots, tg, BOB_TG, bob_dm, f"/team attempt the team says {PASSPHRASE}")
    confirm = tg.messages_to(BOB_TG["id"])[-1]
    note("Telegram Bob presses the Pay button")
    pressed = tg.press(BOB_TG, confirm, TelegramStandin.buttons(confirm)[0][1])
    await bots.telegram.tracker.wait(pressed["update_id"])
    await settled(bots.app, "discord", "telegram")
    # the split: proportional to 30 and 10 of the prize (seed 100 + 70 % of the fees 10 and 10.078)
    prize = 100 * USDC + 7 * USDC + 7_054_600
    alice_share, bob_share = prize * 3 // 4, prize - prize * 3 // 4
    from core.services import views

    assert (await views.balance(bots.app, alice))[0] == 20 * USDC + alice_share
    assert (await views.balance(bots.app, bob))[0] == 40 * USDC + bob_share
    assert any(
        "your share is 85.54095 USDC" in message_text(m) for m in dc.dms_to(int(ALICE_DC["id"]))
    )
    assert any("your share is 28.51365 USDC" in m["text"] for m in tg.messages_to(BOB_TG["id"]))

    # chat: Telegram -> Discord through the webhook carrying the author and platform, pinging nobody
    note(
        "Telegram Bob writes in the team group: 'psst @alice @everyone, the code is behind the painting'"
    )
    hello = tg.push_message(
        BOB_TG, group, text="psst @alice @everyone, the code is behind the painting"
    )
    await bots.telegram.tracker.wait(hello["update_id"])
    relayed = await dc.wait_message(channel_id, contains="behind the painting")
    assert relayed["author"]["username"] == "Bob (Telegram)" and relayed["webhook_id"]
    assert relayed["allowed_mentions"] == {"parse": []} and not relayed["mention_everyone"]
    # Discord -> Telegram, with author and platform, the @ defused
    mark = tg.mark()
    note("Discord  Alice writes in the team channel: 'great, @bob, I will look'")
    mine = await dc.post(ALICE_DC, channel_id, "great, @bob, I will look")
    sent = await tg.wait_sent(GROUP_ID, after=mark, contains="I will look")
    assert sent["text"] == "Alice (Discord)\ngreat, @\u2060bob, I will look"
    assert "<b>Alice</b> <i>(Discord)</i>" in sent["html"]
    await settled(bots.app, "discord", "telegram")

    # never twice, never back: the relay's own MESSAGE_CREATE and a redelivered update change nothing
    note(
        "Telegram the same update is delivered again; the webhook relay's own MESSAGE_CREATE came back too"
    )
    tg.replay(hello)
    await bots.telegram.tracker.wait(hello["update_id"], count=2)
    await settled(bots.app, "discord", "telegram")
    executes = [
        c
        for c in dc.calls_to("POST", r"^/webhooks/\d+/[^/]+$")
        if not c.path.startswith(f"/webhooks/{dc.APP_ID}")
    ]
    group_sends = [
        c
        for c in tg.calls_to("sendMessage")
        if c.params.get("chat_id") == GROUP_ID and "(Discord)" in c.params["text"]
    ]
    assert len(executes) == 1 and len(group_sends) == 1
    async with bots.app.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT platform, author_name, body FROM team_messages ORDER BY id")
            )
        ).all()
    assert [(r.platform, r.author_name) for r in stored] == [
        ("telegram", "Bob"),
        ("discord", "Alice"),
    ]

    # a restart: new processes, the same database; the Discord bot comes back later than Telegram
    await bots.telegram.stop()
    await bots.discord.stop()
    note("-- both bots stop; a new process starts the Telegram bot only (Discord is down) --")
    bots = await start_bots(reset=False, discord=False)
    note("Telegram Bob edits his message: 'psst, the code is behind the BIG painting'")
    edited = tg.push_edit(hello["message"], "psst, the code is behind the BIG painting")
    await bots.telegram.tracker.wait(edited["update_id"])
    note("Telegram Bob replies to Alice's relayed message: 'and bring a torch'")
    reply = tg.push_message(
        BOB_TG,
        group,
        text="and bring a torch",
        reply_to_message=next(m for m in tg.messages_to(GROUP_ID) if "I will look" in m["text"]),
    )
    await bots.telegram.tracker.wait(reply["update_id"])
    await settled(bots.app, "telegram")
    async with bots.app.engine.connect() as conn:
        waiting = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM outbox WHERE channel = 'discord' AND topic = 'relay' AND done_at IS NULL"
                )
            )
        ).scalar_one()
    assert waiting == 2  # Discord is down: the edit and the reply wait for it, nothing is lost
    note("-- the Discord bot starts again --")
    await bots.discord.start()
    await settled(bots.app, "discord")
    assert (
        "behind the BIG painting" in dc.messages[int(relayed["id"])]["content"]
    )  # the same message, edited
    answer = await dc.wait_message(channel_id, contains="bring a torch")
    assert (
        answer["author"]["username"] == "Bob (Telegram)"
        and "> ↪ **Alice**: great, @bob" in answer["content"]
    )
    # a reply on Discord to Bob's relayed message answers his original on Telegram
    mark = tg.mark()
    note("Discord  Alice replies to Bob's relayed message: 'on my way'")
    await dc.post(ALICE_DC, channel_id, "on my way", reply_to=relayed["id"])
    back = await tg.wait_for(
        lambda c: c.method == "sendMessage" and "on my way" in c.params.get("text", ""), after=mark
    )
    assert back.params["reply_parameters"]["message_id"] == hello["message"]["message_id"]
    # and Alice's edit follows to Telegram
    note("Discord  Alice edits her message: 'great, I will look right now'")
    await dc.edit_post(mine["id"], "great, I will look right now")
    edit = await tg.wait_for(
        lambda c: c.method == "editMessageText" and "right now" in c.params.get("text", "")
    )
    assert edit.ok
    await settled(bots.app, "discord", "telegram")

    with capsys.disabled():
        print("\n--- transcript: a team across Discord and Telegram ---")
        for line in transcript(dc, tg):
            print(line[:300])
