"""Core's command table on Discord: every command reachable at its slash path with typed options,
a command added to core shows up, commands synced only when they changed, moderator commands
refused to players and accepted from a moderator role, bad option values answered with what was wrong."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from core.commands import COMMANDS, Arg, Command, CommandContext, Reply
from core.services import views
from tests.e2e.discord.conftest import ALICE, BOB, GUILD_ID, MOD_ROLE_ID, MONA, OTHER_ROLE_ID, actor
from tests.helpers import USDC, fund, open_round
from tests.standins.discord_server import EPHEMERAL, INTEGER, STRING, message_text

SAMPLE = {
    "text": "some words here",
    "word": "one",
    "int": 7,
    "amount": "2.5",
    "token_amount": "3",
    "player": "#1",
    "duration": "7d",
}


def discord_path(cmd: Command, commands: list[Command]) -> tuple[str, ...]:
    """Where Discord puts a core command: its path, or path + bare_name when the path is a group."""
    is_group = any(
        len(o.path) > len(cmd.path) and o.path[: len(cmd.path)] == cmd.path for o in commands
    )
    return (*cmd.path, cmd.bare_name) if is_group else cmd.path


def recorded(calls: list[tuple[str, dict[str, Any]]], cmd: Command) -> Command:
    """The same command with a handler that records what core handed it."""

    async def handler(ctx: CommandContext, args: dict[str, Any]) -> Reply:
        calls.append((cmd.name, args))
        return Reply(title=f"ran /{cmd.name}", private=cmd.private)

    return replace(cmd, handler=handler)


def sample_args(cmd: Command) -> dict[str, Any]:
    return {a.name: (a.choices[0] if a.kind == "choice" else SAMPLE[a.kind]) for a in cmd.args}


async def test_every_core_command_is_reachable_on_discord(start_bot, dc):
    calls: list[tuple[str, dict[str, Any]]] = []
    extra = Command(
        ("raffle", "draw"),
        "A command that exists only in this test.",
        None,  # type: ignore[arg-type]
        (Arg("tickets", "int", "how many", min_value=1, max_value=9),),
    )
    commands = [recorded(calls, c) for c in [*COMMANDS, extra]]
    run = await start_bot(commands=commands)
    registered = dc.command_paths(GUILD_ID)
    expected = {discord_path(c, commands): c for c in commands if c.offered_on("discord")}
    assert set(registered) == set(expected)
    assert (
        ("bounty", "status") in registered
        and ("limits", "show") in registered
        and ("raffle", "draw") in registered
    )

    for path, cmd in expected.items():
        node = registered[path]
        assert 1 <= len(node["description"]) <= 100
        options = {o["name"]: o for o in node.get("options") or []}
        assert set(options) == {a.name for a in cmd.args}, path
        for arg in cmd.args:
            opt = options[arg.name]
            assert opt["type"] == (INTEGER if arg.kind == "int" else STRING), (path, arg.name)
            assert bool(opt.get("required")) == arg.required
            assert [c["value"] for c in opt.get("choices") or []] == list(arg.choices)
            if arg.max_length:
                assert opt["max_length"] == arg.max_length
            if arg.kind == "int" and arg.min_value is not None:
                assert opt["min_value"] == arg.min_value

        # Invoked on Discord (by a moderator), core's handler runs with the converted arguments.
        interaction = await run.slash(
            MONA, " ".join(path), roles=(MOD_ROLE_ID,), **sample_args(cmd)
        )
        answer = run.answer(interaction)
        assert answer["embeds"][0]["title"] == f"ran /{cmd.name}", message_text(answer)
        assert bool(answer["flags"] & EPHEMERAL) == cmd.private, path
        name, args = calls[-1]
        assert name == cmd.name
        for arg in cmd.args:
            expected_value = {
                "amount": 2_500_000,
                "token_amount": None,
                "duration": timedelta(days=7),
            }.get(arg.kind, sample_args(cmd)[arg.name])
            if expected_value is not None:
                assert args[arg.name] == expected_value, (path, arg.name)
    assert len(calls) == len(expected)


async def test_the_real_table_is_registered_with_moderator_permissions(start_bot, dc):
    await start_bot()
    registered = {c["name"]: c for c in dc.commands[GUILD_ID]}
    assert set(registered) == {c.path[0] for c in COMMANDS}
    assert (
        registered["admin"]["default_member_permissions"] == "32"
    )  # manage_guild: moderators see /admin
    assert all(
        c["default_member_permissions"] is None for name, c in registered.items() if name != "admin"
    )
    grant = dc.command_paths(GUILD_ID)[("admin", "grant")]
    assert [o["name"] for o in grant["options"]] == ["player", "amount", "reason"]


async def test_commands_are_synced_only_when_they_changed(start_bot, dc):
    first = await start_bot()
    assert first.bot.synced is True and dc.command_puts[GUILD_ID] == 1
    await first.bot.stop()

    again = await start_bot()  # the same table: compared with what Discord has, not sent again
    assert again.bot.synced is False and dc.command_puts[GUILD_ID] == 1
    await again.bot.stop()

    extra = Command(("ping",), "Answer pong.", None)  # type: ignore[arg-type]
    changed = await start_bot(commands=[*COMMANDS, extra])
    assert changed.bot.synced is True and dc.command_puts[GUILD_ID] == 2
    assert ("ping",) in dc.command_paths(GUILD_ID)


async def test_without_a_guild_commands_are_global_and_admin_is_guild_only(start_bot, dc):
    run = await start_bot(DISCORD_GUILD_ID=None)
    assert GUILD_ID not in dc.commands
    registered = {c["name"]: c for c in dc.commands[None]}
    assert registered["admin"]["contexts"] == [0]  # servers only: roles exist only there
    await fund(run.app, actor(ALICE), 3 * USDC)
    answer = run.answer(await run.slash(ALICE, "balance", dm=True))  # in a DM with the bot
    assert "3.00 USDC" in message_text(answer)


async def test_admin_is_refused_to_players_and_accepted_from_moderators(start_bot, dc):
    run = await start_bot()
    await fund(run.app, actor(BOB), 1 * USDC)
    refused = run.answer(
        await run.slash(
            ALICE,
            "admin grant",
            roles=(OTHER_ROLE_ID,),
            player=f"discord:{BOB['id']}",
            amount="5",
            reason="gift",
        )
    )
    assert refused["flags"] & EPHEMERAL
    assert "Only moderators can do that." in message_text(refused)
    assert (await views.balance(run.app, actor(BOB)))[0] == 1 * USDC

    granted = run.answer(
        await run.slash(
            MONA,
            "admin grant",
            roles=(OTHER_ROLE_ID, MOD_ROLE_ID),
            player=f"<@{BOB['id']}>",
            amount="5",
            reason="gift",
        )
    )
    assert granted["flags"] & EPHEMERAL
    assert "Granted" in message_text(granted) and "Their balance: 6.00 USDC" in message_text(
        granted
    )
    assert (await views.balance(run.app, actor(BOB)))[0] == 6 * USDC

    # /admin bounty new (group, subgroup, subcommand) opens a round.
    opened = run.answer(
        await run.slash(
            MONA,
            "admin bounty new",
            roles=(MOD_ROLE_ID,),
            name="Second",
            seed="100",
            prompt="Keep it.",
        )
    )
    assert "Round #1 Second is open" in message_text(opened)


async def test_bad_option_values_are_answered_with_what_was_wrong(start_bot, dc):
    run = await start_bot()
    await open_round(run.app)
    cases = {
        "-5": "Amount must be positive",
        "1.1234567": "at most 6 decimals",
        "abc": "'abc' is not an amount",
    }
    for value, why in cases.items():
        answer = run.answer(await run.slash(ALICE, "limits daily", amount=value))
        text = message_text(answer)
        assert answer["flags"] & EPHEMERAL
        assert "`amount`" in text and why in text, text
        assert "Usage: `/limits daily <amount>`" in text

    # Values Discord's own client would refuse still meet core's checks.
    days = message_text(run.answer(await run.slash(ALICE, "limits exclude", days=0)))
    assert "`days` must be at least 1" in days
    not_a_number = message_text(run.answer(await run.slash(ALICE, "limits exclude", days="abc")))
    assert "`days` must be a whole number, not 'abc'" in not_a_number
    word = message_text(run.answer(await run.slash(ALICE, "link", code="two words")))
    assert "`code` must be a single word" in word
    missing = message_text(run.answer(await run.slash(ALICE, "attempt")))
    assert "`message` is missing" in missing


async def test_autocomplete_offers_this_rounds_attempts_to_moderators_only(start_bot, dc):
    from core.services import attempts
    from tests.helpers import player

    run = await start_bot()
    await open_round(run.app)
    someone = player("someone")
    await fund(run.app, someone, 200 * USDC)
    for i in range(12):
        await attempts.confirm_attempt(
            run.app, someone, (await attempts.quote_attempt(run.app, someone, f"m{i}")).id
        )

    asked = await dc.autocomplete(MONA, "admin refund", "attempt", "1", roles=[MOD_ROLE_ID])
    await dc.wait_for(lambda c: c.path.endswith(f"/interactions/{asked.id}/{asked.token}/callback"))
    assert asked.ack_type == 8  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
    values = [c["value"] for c in asked.ack_data["choices"]]
    assert values == ["12", "11", "10", "1"]  # numbers starting with what was typed, newest first
    assert all(
        c["name"].startswith(f"#{c['value']} Player someone") for c in asked.ack_data["choices"]
    )

    refused = await dc.autocomplete(ALICE, "admin refund", "attempt", "")
    await dc.wait_for(
        lambda c: c.path.endswith(f"/interactions/{refused.id}/{refused.token}/callback")
    )
    assert refused.ack_data["choices"] == []
