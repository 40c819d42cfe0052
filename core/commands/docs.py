"""The command reference, generated from the one command table:
``python -m core.commands.docs > docs/commands.md`` (a test checks the committed file is current).

Every command appears with how it is typed on Telegram and the console, where it sits on Discord,
its arguments with their limits (those that come from a setting show the setting and its default),
who may use it, and where the answer goes."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from core.commands.base import Arg, Command
from core.commands.registry import COMMANDS
from core.settings import Settings

KIND = {
    "text": "text",
    "word": "one word",
    "int": "whole number",
    "amount": "USDC amount (up to 6 decimals)",
    "token_amount": "$100Bs amount (up to 8 decimals)",
    "choice": "one of",
    "player": "a player",
    "duration": "duration (30m, 12h, 7d, 2w)",
}

HEADER = """# Commands

Generated from the command table (`core/commands/`) by `python -m core.commands.docs > docs/commands.md`;
do not edit by hand. Every command exists on Discord, Telegram and the console, except where a line
says otherwise.

- **Telegram and the console**: type the command and its arguments separated by spaces; the last
  text argument takes the rest of the line. Put an argument with spaces in quotes
  (`/admin bounty new "Demo round" 1000 ...`). An optional duration or number before the last argument
  is recognised by its first character: a word starting with a digit or a sign is that argument and
  must be valid (`/admin ban @bob 7d spam` bans for a week, `/admin ban @bob spam` until unbanned).
- **Discord**: slash commands with one option per argument; Discord lists required options first.
  A group that also runs on its own (`/bounty`) is `/bounty status` there.
- **Naming a player** (grant, ban, unban, note, audit, unlink): on Telegram `@username`, the numeric
  user id, a mention of someone without a username, or send the command as a reply to their message
  (then type only the other arguments); on Discord a mention, the user id or `@username`; everywhere
  `#<player id>` and `telegram:<id>` / `discord:<id>`. On the console a bare number is any platform's id.
- **Private** answers go to the person only: ephemeral on Discord, the private chat on Telegram.
- **Moderator** commands are checked in the game itself, whatever a platform shows: Discord roles in
  `MODERATOR_DISCORD_ROLE_IDS`, Telegram users in `MODERATOR_TELEGRAM_USER_IDS`, and the console's user.
- **Links and buttons**: a Telegram link `t.me/<bot>?start=<command>` (the command's words joined by
  `_`, like `team_leave`) opens a command that needs no argument. One that changes something (marked
  *asks first when opened by a link*) answers with a question saying exactly what would happen; it
  runs only when the person it was shown to confirms, within 10 minutes. Buttons answer only that
  person. Commands marked *asks before it acts* always ask.
- **Secrets**: a command carrying one (marked *refused in a group*) is refused when typed where others
  can read it, such as a Telegram group; send it in the private chat.
"""


def discord_path(command: Command, commands: Sequence[Command]) -> tuple[str, ...]:
    """Where Discord puts a command: its path, or path + bare_name when the path is also a group."""
    is_group = any(
        len(o.path) > len(command.path) and o.path[: len(command.path)] == command.path
        for o in commands
    )
    return (*command.path, command.bare_name) if is_group and command.bare_name else command.path


def _limit(arg: Arg) -> str:
    parts = []
    if arg.kind == "choice":
        parts.append(", ".join(f"`{c}`" for c in arg.choices))
    if arg.min_value is not None or arg.max_value is not None:
        low = f"{arg.min_value:,}" if arg.min_value is not None else "…"
        high = f"{arg.max_value:,}" if arg.max_value is not None else "…"
        parts.append(f"{low} to {high}")
    if arg.kind in ("text", "word", "player"):
        if arg.max_length_setting:
            default = Settings.model_fields[arg.max_length_setting].default
            parts.append(f"at most `{arg.max_length_setting}` characters (default {default:,})")
        else:
            parts.append(f"at most {arg.limit():,} characters")
    return "; ".join(parts)


def _argument(arg: Arg) -> str:
    kind = KIND.get(arg.kind, arg.kind)
    limit = _limit(arg)
    need = "" if arg.required else ", optional"
    return f"  - `{arg.name}` ({kind}{need}{'; ' + limit if limit else ''}): {arg.help}"


def _effect(command: Command) -> list[str]:
    if command.changes == "view" or command.moderator:
        return []  # a moderator's commands all act on the game, each in the audit log
    what = "moves money" if command.changes == "money" else "changes your standing"
    if command.confirms:
        return [f"{what}, asks before it acts"]
    if any(a.required for a in command.args):
        return [what]  # no link opens it: it runs only as typed
    return [f"{what}, asks first when opened by a link"]


def render(commands: Sequence[Command]) -> str:
    lines = [HEADER]
    sections: dict[str, list[Command]] = {}
    for command in commands:
        sections.setdefault("Moderators" if command.moderator else "Everyone", []).append(command)
    for title in ("Everyone", "Moderators"):
        lines.append(f"## {title}\n")
        for command in sections.get(title, []):
            usage = command.usage + (
                f" (also /{command.name} {command.bare_name})" if command.bare_name else ""
            )
            lines.append(f"### `{usage}`\n")
            lines.append(command.help + "\n")
            where = ["Discord: `/" + " ".join(discord_path(command, commands)) + "`"]
            if command.platforms is not None:
                where = [f"only on: {', '.join(command.platforms)}"] + (
                    where if "discord" in command.platforms else []
                )
            facts = (
                where
                + (["answer: private"] if command.private else [])
                + (["refused to banned players"] if command.refuses_banned else [])
                + _effect(command)
                + (["refused in a group (carries a secret)"] if command.secret_args else [])
            )
            lines.append("- " + "; ".join(facts))
            if command.args:
                lines.append("- arguments:")
                lines.extend(_argument(a) for a in command.args)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:

    sys.stdout.write(render(COMMANDS))


if __name__ == "__main__":
    main()
