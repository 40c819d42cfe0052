"""docs/commands.md is generated from the command table and must be current: a command added by any
area lands there by running `python -m core.commands.docs > docs/commands.md`."""

from pathlib import Path

from core.commands import COMMANDS, Arg, Command, Reply
from core.commands.docs import render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def test_the_committed_command_reference_is_up_to_date():
    assert DOCS.read_text(encoding="utf-8") == render(COMMANDS), (
        "docs/commands.md is out of date: run `python -m core.commands.docs > docs/commands.md`"
    )


def test_a_new_command_shows_in_the_reference_with_its_arguments():
    async def handler(ctx, args):
        return Reply()

    extra = Command(
        ("team", "invite"),
        "Invite a player to your team.",
        handler,
        (Arg("player", "player", "who to invite"),),
        refuses_banned=True,
        private=True,
    )
    text = render([*COMMANDS, extra])
    assert "### `/team invite <player>`\n\nInvite a player to your team." in text
    assert "- Discord: `/team invite`; answer: private; refused to banned players" in text
    assert "  - `player` (a player; at most 100 characters): who to invite" in text
    assert text != DOCS.read_text(encoding="utf-8")
