"""Commands come from core's one table: every core command is reachable on Telegram, the menu is
built from it, arguments are checked with their usage shown, and moderators are decided by core."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest

from core.commands import COMMANDS, Arg, Command, Reply
from core.services import views
from tests.e2e.telegram.conftest import ALICE, ANNOUNCE_ID, BOB, GROUP_ID, MOD, actor
from tests.helpers import USDC, open_round


def sample(arg: Arg) -> str:
    """A valid typed value for an argument of any kind."""
    return {
        "text": "some words <here>",
        "word": "w1",
        "int": str(arg.min_value if arg.min_value is not None else 1),
        "amount": "1.5",
        "token_amount": "2",
        "player": "#1",
        "choice": arg.choices[0] if arg.choices else "x",
        "duration": "7d",
    }[arg.kind]


def typed(cmd: Command, raw: dict) -> str:
    """The arguments as a person types them: a text argument before the last in quotes."""
    words = []
    for i, arg in enumerate(cmd.args):
        value = raw[arg.name]
        words.append(f'"{value}"' if arg.kind == "text" and i < len(cmd.args) - 1 else value)
    return " ".join(words)


@pytest.fixture
def core_commands():
    """Core's command list, restored after the test (tests swap handlers or add commands)."""
    original = list(COMMANDS)
    yield COMMANDS
    COMMANDS[:] = original


async def test_every_core_command_is_reachable(start_bot, tg, core_commands):
    """Parity: each command of core.commands.COMMANDS (and each bare_name form) runs its own core
    handler with its arguments converted by core, from a Telegram message."""
    ran: list[tuple[str, dict]] = []
    for i, cmd in enumerate(COMMANDS):

        async def recorder(ctx, args, _name=cmd.name):
            ran.append((_name, args))
            return Reply(title=f"ran {_name}")

        COMMANDS[i] = dataclasses.replace(cmd, handler=recorder)
    tg.start_private(MOD)
    run = await start_bot(MODERATOR_TELEGRAM_USER_IDS=str(MOD["id"]))
    chat = tg.private_chat(MOD)
    for cmd in [c for c in COMMANDS if c.offered_on("telegram")]:
        forms = [" ".join(cmd.path)] + (
            [" ".join([*cmd.path, cmd.bare_name])] if cmd.bare_name else []
        )
        raw = {a.name: sample(a) for a in cmd.args}
        for form in forms:
            ran.clear()
            await run.say(MOD, chat, f"/{form} " + typed(cmd, raw))
            assert run.last(MOD["id"])["text"] == f"ran {cmd.name}", form
            assert ran == [(cmd.name, cmd.convert(raw))], form

    # The command menu lists every top-level name: /admin only in the moderator's private chat.
    top = list(dict.fromkeys(c.path[0] for c in COMMANDS))
    public = [c["command"] for c in tg.commands()]
    moderator = [c["command"] for c in tg.commands({"type": "chat", "chat_id": MOD["id"]})]
    assert moderator == top
    assert public == [w for w in top if not all(c.moderator for c in COMMANDS if c.path[0] == w)]
    assert "admin" not in public and "attempt" in public
    for entry in tg.commands():
        assert (
            re.fullmatch(r"[a-z0-9_]{1,32}", entry["command"])
            and 1 <= len(entry["description"]) <= 256
        )


async def test_menu_is_set_only_when_it_changed(start_bot, tg):
    tg.start_private(MOD)
    run = await start_bot()
    assert len(tg.calls_to("setMyCommands")) == 1
    await run.bot.sync_commands()  # same commands: Telegram already has them
    assert len(tg.calls_to("setMyCommands")) == 1


async def test_a_command_added_to_core_appears_on_telegram(start_bot, tg, caplog, core_commands):
    async def echo(ctx, args):
        """Say something back."""
        return Reply(title="Echo", text=args["what"])

    async def crash(ctx, args):
        raise RuntimeError("a bug, not the player's fault")

    COMMANDS.extend(
        [
            Command(("echo",), "Say something back.", echo, (Arg("what", "text", "what to say"),)),
            Command(("crash",), "Fail on purpose.", crash),
        ]
    )
    run = await start_bot()
    assert {"command": "echo", "description": "Say something back."} in tg.commands()
    chat = tg.private_chat(ALICE)
    await run.say(ALICE, chat, "/echo hello <world>")
    assert run.last(ALICE["id"])["text"] == "Echo\n\nhello <world>"
    with caplog.at_level(logging.ERROR, logger="bounty.bots"):
        await run.say(ALICE, chat, "/crash")
    answer = run.last(ALICE["id"])["text"]
    error_id = re.search(r"error id ([0-9a-f]{8})", answer).group(1)
    assert "Sorry, something went wrong" in answer and "a bug" not in answer
    assert any(error_id in r.getMessage() for r in caplog.records)


async def test_moderator_commands_are_decided_by_core(start_bot, tg):
    tg.group(ANNOUNCE_ID, "Announcements")
    run = await start_bot(
        MODERATOR_TELEGRAM_USER_IDS=f"{MOD['id']},999", TELEGRAM_ANNOUNCE_CHAT_ID=ANNOUNCE_ID
    )
    await open_round(run.app, name="Vault")
    alice_chat, mod_chat = tg.private_chat(ALICE), tg.private_chat(MOD)

    await run.say(ALICE, alice_chat, "/admin pause")
    assert "Only moderators can do that." in run.last(ALICE["id"])["text"]
    await run.say(ALICE, alice_chat, "/admin")
    assert "Only moderators can do that." in run.last(ALICE["id"])["text"]
    await run.say(ALICE, alice_chat, f"/admin grant telegram:{ALICE['id']} 1000 free money")
    assert "Only moderators" in run.last(ALICE["id"])["text"]
    assert (await views.balance(run.app, actor(ALICE)))[0] == 0

    await run.say(MOD, mod_chat, "/admin pause")
    assert "Round Vault paused" in run.last(MOD["id"])["text"]
    await tg.wait_sent(ANNOUNCE_ID, contains="Round Vault paused")
    await run.say(MOD, mod_chat, f"/admin grant telegram:{ALICE['id']} 5 welcome gift")
    assert "Granted" in run.last(MOD["id"])["text"]
    assert (await views.balance(run.app, actor(ALICE)))[0] == 5 * USDC
    await run.say(MOD, mod_chat, "/admin")
    listing = run.last(MOD["id"])["text"]
    assert "/admin grant <player> <amount> <reason>" in listing and "/admin pause" in listing


async def test_malformed_arguments_are_answered_with_the_usage(start_bot, tg):
    run = await start_bot()
    await open_round(run.app)
    chat = tg.private_chat(ALICE)

    async def answer(text: str) -> str:
        await run.say(ALICE, chat, text)
        return run.last(ALICE["id"])["text"]

    reply = await answer("/limits exclude abc")
    assert "days must be a whole number" in reply and "Usage: /limits exclude <days>" in reply
    reply = await answer("/limits exclude 0")
    assert "days must be at least 1" in reply
    reply = await answer("/attempt")
    assert "message is missing" in reply and "Usage: /attempt <message>" in reply
    assert "at most 6 decimals" in await answer("/limits daily 1.1234567")
    assert "must be positive" in await answer("/limits daily -5")
    assert "is not an amount" in await answer("/limits daily abc")
    assert "Too many arguments. Usage: /bounty" in await answer("/bounty extra words")
    assert "Unknown command /frobnicate. Send /help" in await answer("/frobnicate")
    assert "Billions Bounty commands" in await answer("/HELP")  # names are case-insensitive
    assert not tg.calls_to("editMessageText")  # nothing was quoted or paid


async def test_unknown_commands_in_a_group_are_left_to_other_bots(start_bot, tg):
    run = await start_bot()
    group = tg.group(GROUP_ID)
    update = await run.say(BOB, group, "/frobnicate now")
    assert await run.handled(update) == ["done"]
    assert not tg.messages_to(GROUP_ID)
    await run.say(BOB, group, "/frobnicate@BountyTestBot now")
    assert "Unknown command /frobnicate" in run.last(GROUP_ID)["text"]
