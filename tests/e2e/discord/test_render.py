"""The Discord form of replies and commands, without a bot: embeds within Discord's limits with
nothing lost, markdown escaped, button ids, and the command comparison that avoids needless syncs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bots.discord.commands import build_app_commands, same_commands, slash_commands
from bots.discord.render import custom_id, md, parse_custom_id, render, render_error
from core.commands import COMMANDS, Command, Confirm, Field, Reply
from tests.standins.discord_server import check_message


def payload(out) -> list[dict]:
    return [{"embeds": [m.embed.to_dict()]} for m in out.messages]


def test_a_long_text_is_split_over_messages_within_limits():
    words = [f"w{i}" for i in range(2_000)]
    reply = Reply(
        title="Long",
        text=" ".join(words[:1_000]) + "\n" + " ".join(words[1_000:]),
        fields=(Field("a", "1"), Field("b", "2")),
        footer="foot",
    )
    out = render(reply)
    assert 1 < len(out.messages) <= 3
    for body in payload(out):
        check_message(body)  # the stand-in's copy of Discord's rules
    shown = " ".join(m.embed.description or "" for m in out.messages).split()
    assert shown == words


def test_markdown_and_mentions_in_text_are_shown_as_typed():
    text = md("**bold** _it_ `code` @everyone <@&1> > quote")
    assert text.startswith(r"\*\*bold\*\* \_it\_ `code`")  # core's `name` marks stay code
    assert "@everyone" in text  # no ping: allowed_mentions is none everywhere


def test_errors_show_core_marks_as_code_and_the_usage():
    out = render_error("`amount` must be positive.", usage="/limits daily <amount>")
    assert out.private
    assert (
        out.messages[0].embed.description
        == "`amount` must be positive.\nUsage: `/limits daily <amount>`"
    )


def test_confirmation_buttons_round_trip_and_fit():
    token = "attempt:" + "0123456789abcdef" * 4
    assert parse_custom_id(custom_id(token, True)) == (token, True)
    assert parse_custom_id(custom_id(token, False)) == (token, False)
    assert parse_custom_id("cf:x:maybe") is None and parse_custom_id("other") is None
    with pytest.raises(ValueError):
        custom_id("t" * 100, True)
    confirm = Confirm(
        "attempt:1", "Pay?", "Pay 1.00 USDC", "Cancel", datetime(2030, 1, 1, tzinfo=UTC)
    )
    out = render(Reply(title="Confirm", text="It costs 1.00 USDC.", confirm=confirm))
    assert out.messages[-1].confirm is confirm
    assert f"<t:{int(confirm.expires_at.timestamp())}:R>" in out.messages[0].embed.description


def test_a_command_table_discord_cannot_express_is_refused_at_start():
    noop = COMMANDS[0].handler
    with pytest.raises(ValueError, match="bare_name"):
        slash_commands([Command(("team",), "x", noop), Command(("team", "join"), "y", noop)])
    with pytest.raises(ValueError, match="not a Discord command name"):
        slash_commands([Command(("Team",), "x", noop)])
    with pytest.raises(ValueError, match="3 deep"):
        slash_commands([Command(("a", "b", "c", "d"), "x", noop)])


def test_the_comparison_ignores_what_discord_adds_and_sees_real_changes():
    import discord
    from discord import app_commands

    async def handler(*_):
        return None

    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))
    for command in build_app_commands(COMMANDS, handler):
        tree.add_command(command)
    desired = [c.to_dict(tree) for c in tree.get_commands()]
    # What Discord returns: ids, versions, string permissions, localizations, defaults omitted.
    returned = []
    for i, cmd in enumerate(desired):
        out = {
            k: v
            for k, v in cmd.items()
            if k not in ("dm_permission", "contexts", "integration_types")
        }
        out.update(
            id=str(i),
            version="1",
            application_id="9",
            name_localizations=None,
            default_member_permissions=None
            if cmd["default_member_permissions"] is None
            else str(cmd["default_member_permissions"]),
        )
        returned.append(out)
    assert same_commands(desired, returned)
    changed = [dict(returned[0], description="something else"), *returned[1:]]
    assert not same_commands(desired, changed)
    assert not same_commands(desired, returned[1:])
