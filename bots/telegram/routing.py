"""From a Telegram message to a core command: command names, the command menu, deep links.

Everything here is derived from ``core.commands.COMMANDS`` when it is called, so a command added to
core is reachable (and listed) on Telegram without touching this adapter.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.commands import Command, Reply, resolve

if TYPE_CHECKING:
    from core.actors import Actor
    from core.app import App

MAX_DESCRIPTION = 256
_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9_]")
_COMMAND_LINE = re.compile(r"^/(?P<name>[^\s@]+)(?:@(?P<bot>\S*))?(?:\s+(?P<rest>.*))?$", re.S)


def telegram_name(word: str) -> str:
    """A core path word as a Telegram command name: 1-32 characters of [a-z0-9_]."""
    return _INVALID_NAME_CHARS.sub("_", word.lower())[:32]


def top_level(commands: Sequence[Command]) -> dict[str, list[Command]]:
    """Telegram command name -> the core commands under it, in registry order."""
    groups: dict[str, list[Command]] = {}
    for cmd in commands:
        groups.setdefault(telegram_name(cmd.path[0]), []).append(cmd)
    return groups


@dataclass(frozen=True)
class CommandLine:
    name: str  # lower-case, without the slash
    addressee: str | None  # the bot named after @, if any
    rest: str  # the rest of the line, verbatim


def split_command(text: str) -> CommandLine | None:
    match = _COMMAND_LINE.match(text.strip())
    if match is None:
        return None
    return CommandLine(match["name"].lower(), match["bot"] or None, match["rest"] or "")


@dataclass(frozen=True)
class Routed:
    command: Command | None  # None: ``name`` is a group that needs a subcommand, or unknown
    args_text: str = ""
    group: tuple[Command, ...] = ()  # the commands under an incomplete group name


def route(commands: Sequence[Command], name: str, rest: str) -> Routed:
    """Resolve ``/name rest`` to the longest matching core command and the text of its arguments."""
    group = top_level(commands).get(name, [])
    if not group:
        return Routed(None)
    word = group[0].path[0]
    command, used = resolve(list(commands), [word, *rest.split()])
    if command is None:
        return Routed(None, group=tuple(group))
    remainder = rest
    for _ in range(used - 1):  # drop the subcommand words, keep the arguments verbatim
        parts = remainder.lstrip().split(None, 1)
        remainder = parts[1] if len(parts) > 1 else ""
    return Routed(command, remainder)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def menu(commands: Sequence[Command], *, moderator: bool) -> list[tuple[str, str]]:
    """The command menu (setMyCommands): one entry per top-level name the caller may use."""
    entries: list[tuple[str, str]] = []
    for name, group in top_level(commands).items():
        visible = [c for c in group if moderator or not c.moderator]
        if not visible:
            continue
        bare = next((c for c in visible if len(c.path) == 1), None)
        subs = [" ".join(c.path[1:]) for c in visible if len(c.path) > 1]
        if bare is not None:
            description = bare.help or f"/{name}"
            if subs:
                description += " Also: " + ", ".join(f"/{name} {s}" for s in subs)
        else:
            who = "Moderator commands" if all(c.moderator for c in visible) else "Commands"
            description = f"{who}: " + ", ".join(subs)
        entries.append((name, _clip(description, MAX_DESCRIPTION)))
    return entries


# --- deep links: t.me/<bot>?start=<payload> ---------------------------------------------------

PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

DeepLinkHandler = Callable[["App", "Actor", str], Awaitable[Reply]]


@dataclass(frozen=True)
class DeepLink:
    command: Command | None = None  # run this command without arguments
    handler: DeepLinkHandler | None = None  # or this handler with ``argument``
    argument: str = ""
    error: str | None = None


class DeepLinks:
    """Routes ``/start <payload>``: a command's name (``bounty``, ``bounty_log``, ``balance``) runs
    that command; ``<kind>-<rest>`` goes to a handler registered for ``kind`` (team invitations and
    account links plug in here)."""

    def __init__(self) -> None:
        self._handlers: dict[str, DeepLinkHandler] = {}

    def register(self, kind: str, handler: DeepLinkHandler) -> None:
        if not re.fullmatch(r"[a-z0-9]{1,16}", kind):
            raise ValueError(f"deep-link kind must be 1-16 of [a-z0-9], not {kind!r}")
        self._handlers[kind] = handler

    @staticmethod
    def payload_for(command: Command) -> str | None:
        """The start payload that opens ``command``, when it can run without arguments."""
        if command.moderator or any(a.required for a in command.args):
            return None
        return "_".join(telegram_name(w) for w in command.path)

    def route(self, commands: Sequence[Command], payload: str) -> DeepLink:
        if not PAYLOAD.match(payload):
            return DeepLink(
                error="That link is malformed: a start code is 1-64 letters, digits, _ or -."
            )
        kind, sep, rest = payload.partition("-")
        if sep and kind.lower() in self._handlers:
            return DeepLink(handler=self._handlers[kind.lower()], argument=rest)
        wanted = payload.lower()
        for cmd in commands:
            name = self.payload_for(cmd)
            if name is None:
                continue
            names = {name} | ({f"{name}_{cmd.bare_name}"} if cmd.bare_name else set())
            if wanted in names:
                return DeepLink(command=cmd)
        return DeepLink(
            error="That link does not open anything I know. Send /help to see the commands."
        )
