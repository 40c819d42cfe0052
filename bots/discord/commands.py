"""Core's commands as Discord slash commands: grouped by path (``/admin bounty new`` is group,
subgroup, subcommand), typed options with Discord's limits, help text as descriptions, and the
payload comparison that keeps a bot start from re-syncing unchanged commands."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from core.commands import Arg, Command
from core.commands.base import MAX_PLAYER_REF, MAX_TEXT

MAX_DESCRIPTION = 100  # Discord: command, group and option descriptions
MAX_CHOICES = 25
MAX_OPTIONS = 25  # per command, and subcommands per group
MAX_TOP_LEVEL = 100  # chat-input commands per scope
MAX_DEPTH = 3  # command, group, subcommand
DISCORD_INT = 2**53 - 1  # integer options live within ±2^53
AMOUNT_MAX_LENGTH = (
    40  # a USDC decimal string is parsed (exactly) in core; this only bounds its size
)
NAME = re.compile(r"^[-_\w]{1,32}$")
# Moderators see /admin in Discord's menu; Discord hides it from others (core checks again anyway).
MODERATOR_PERMISSIONS = discord.Permissions(manage_guild=True)
SERVERS_ONLY = app_commands.AppCommandContext(guild=True)  # moderator roles exist only in servers

Handler = Callable[[discord.Interaction, Command, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class SlashCommand:
    """Where a core command lives on Discord: ``("bounty", "status")`` for core's ``/bounty``."""

    path: tuple[str, ...]
    command: Command

    @property
    def name(self) -> str:
        return " ".join(self.path)


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slash_commands(commands: Sequence[Command]) -> list[SlashCommand]:
    """Every core command with its Discord path; a group invoked bare becomes its ``bare_name``.

    Raises ValueError for a command table Discord cannot express (so a bad core change fails at
    start, and in the parity test, not when a player types the command).
    """
    prefixes = {c.path[:i] for c in commands for i in range(1, len(c.path))}
    out: list[SlashCommand] = []
    for cmd in commands:
        path = cmd.path
        if path in prefixes:
            if not cmd.bare_name:
                raise ValueError(f"/{cmd.name} is also a group on Discord: it needs a bare_name")
            path = (*path, cmd.bare_name)
        if len(path) > MAX_DEPTH:
            raise ValueError(f"/{' '.join(path)}: Discord nests commands at most {MAX_DEPTH} deep")
        for part in path:
            if not NAME.match(part) or part != part.lower():
                raise ValueError(f"/{' '.join(path)}: {part!r} is not a Discord command name")
        if len(cmd.args) > MAX_OPTIONS:
            raise ValueError(f"/{cmd.name}: more than {MAX_OPTIONS} options")
        out.append(SlashCommand(path, cmd))
    seen: dict[tuple[str, ...], SlashCommand] = {}
    for sc in out:
        if sc.path in seen:
            raise ValueError(f"/{sc.name} is defined twice")
        seen[sc.path] = sc
    for prefix in {sc.path[:i] for sc in out for i in range(0, len(sc.path))}:
        children = {sc.path[len(prefix)] for sc in out if sc.path[: len(prefix)] == prefix}
        limit = MAX_TOP_LEVEL if not prefix else MAX_OPTIONS
        if len(children) > limit:
            raise ValueError(f"/{' '.join(prefix)}: more than {limit} commands in one group")
    return out


def _annotation(arg: Arg, settings: Any = None) -> Any:
    if arg.kind in ("text", "word", "player", "duration"):
        # A player is typed (a mention, an id, @username, #12): a user option could not take telegram:<id>.
        return Range[str, None, min(arg.limit(settings), MAX_TEXT)]
    if arg.kind == "int":
        low = max(arg.min_value, -DISCORD_INT) if arg.min_value is not None else None
        high = min(arg.max_value, DISCORD_INT) if arg.max_value is not None else None
        return int if low is None and high is None else Range[int, low, high]
    if arg.kind == "player":  # kept as typed (a mention, @name, #id); core resolves it
        return Range[str, None, arg.max_length or MAX_PLAYER_REF]
    if arg.kind in ("amount", "token_amount"):
        return Range[str, None, AMOUNT_MAX_LENGTH]
    if arg.kind == "choice":
        if len(arg.choices) > MAX_CHOICES:
            raise ValueError(f"`{arg.name}`: more than {MAX_CHOICES} choices")
        return str
    raise ValueError(f"`{arg.name}`: no Discord option type for {arg.kind!r}")


def _callback(
    slash: SlashCommand, handler: Handler, settings: Any = None
) -> Callable[..., Awaitable[None]]:
    """A callback whose signature discord.py reads as the command's options.

    Python parameters are ``arg0``, ``arg1``…, renamed to core's argument names, so any core name
    that is a valid Discord option name works even if it is not a Python identifier.
    """
    cmd = slash.command

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        raw = {arg.name: values.get(f"arg{i}") for i, arg in enumerate(cmd.args)}
        await handler(interaction, cmd, {k: v for k, v in raw.items() if v is not None})

    params = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    for i, arg in enumerate(cmd.args):
        if not NAME.match(arg.name) or arg.name != arg.name.lower():
            raise ValueError(f"/{cmd.name}: {arg.name!r} is not a Discord option name")
        default = inspect.Parameter.empty if arg.required else None
        params.append(
            inspect.Parameter(
                f"arg{i}",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_annotation(arg, settings),
                default=default,
            )
        )
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__name__ = callback.__qualname__ = "_".join(slash.path)
    callback.__doc__ = None  # descriptions come from core, not from this docstring
    callback.__discord_app_commands_param_rename__ = {
        f"arg{i}": a.name for i, a in enumerate(cmd.args)
    }  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_description__ = {  # type: ignore[attr-defined]
        f"arg{i}": clip(a.help or a.name, MAX_DESCRIPTION) for i, a in enumerate(cmd.args)
    }
    choices = {
        f"arg{i}": [Choice(name=c, value=c) for c in a.choices]
        for i, a in enumerate(cmd.args)
        if a.kind == "choice"
    }
    if choices:
        callback.__discord_app_commands_param_choices__ = choices  # type: ignore[attr-defined]
    return callback


def _group_description(prefix: tuple[str, ...], members: list[SlashCommand]) -> str:
    children: list[str] = []
    for sc in members:
        child = sc.path[len(prefix)]
        if child not in children:
            children.append(child)
    return clip(f"/{' '.join(prefix)} " + " | ".join(children), MAX_DESCRIPTION)


Completer = Callable[[discord.Interaction, str, str], Awaitable[list[tuple[str, str]]]]


def _autocomplete(completer: Completer, source: str):
    async def autocomplete(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return [
            Choice(name=label, value=value)
            for label, value in await completer(interaction, source, current)
        ]

    return autocomplete


def build_app_commands(
    commands: Sequence[Command],
    handler: Handler,
    *,
    guild_only: bool = False,
    completer: Completer | None = None,
    settings: Any = None,
) -> list[app_commands.Command | app_commands.Group]:
    """discord.py command objects for the whole table; ``handler(interaction, command, raw_args)``
    runs each; ``completer(interaction, source, typed)`` answers autocomplete for arguments that name
    a source. A top-level group or command only moderators may use gets default permissions. Limits
    that come from a setting (``Arg.max_length_setting``) are read from ``settings``."""
    slashes = slash_commands(commands)
    groups: dict[tuple[str, ...], app_commands.Group] = {}
    top: list[app_commands.Command | app_commands.Group] = []
    for sc in slashes:
        for depth in range(1, len(sc.path)):
            prefix = sc.path[:depth]
            if prefix in groups:
                continue
            members = [s for s in slashes if s.path[:depth] == prefix]
            moderators_only = depth == 1 and all(s.command.moderator for s in members)
            group = app_commands.Group(
                name=prefix[-1],
                description=_group_description(prefix, members),
                parent=groups.get(prefix[:-1]),
                guild_only=guild_only and moderators_only,
                allowed_contexts=SERVERS_ONLY if guild_only and moderators_only else None,
                default_permissions=MODERATOR_PERMISSIONS if moderators_only else None,
            )
            groups[prefix] = group
            if depth == 1:
                top.append(group)
        command = app_commands.Command(
            name=sc.path[-1],
            description=clip(sc.command.help or sc.name, MAX_DESCRIPTION),
            callback=_callback(sc, handler, settings),
            parent=groups.get(sc.path[:-1]),
            extras={"core": sc.command},
        )
        for i, arg in enumerate(sc.command.args):
            if arg.autocomplete and completer is not None and arg.kind != "choice":
                command.autocomplete(f"arg{i}")(_autocomplete(completer, arg.autocomplete))
        if len(sc.path) == 1:
            if sc.command.moderator:
                command.default_permissions = MODERATOR_PERMISSIONS
                command.guild_only = guild_only
                command.allowed_contexts = SERVERS_ONLY if guild_only else None
            top.append(command)
        else:
            groups[sc.path[:-1]].add_command(command)
    return top


def raw_options(data: dict[str, Any] | None) -> dict[str, Any]:
    """The leaf option values of an application-command interaction, by name, as Discord sent them."""
    options = (data or {}).get("options") or []
    while options and options[0].get("type") in (
        1,
        2,
    ):  # down through subcommand groups and subcommands
        options = options[0].get("options") or []
    return {o["name"]: o.get("value") for o in options if "name" in o}


# --- comparing with what Discord has ----------------------------------------------------------

_OPTION_DEFAULTS: dict[str, Any] = {
    "required": False,
    "autocomplete": False,
    "min_value": None,
    "max_value": None,
    "min_length": None,
    "max_length": None,
    "channel_types": None,
}


def _canonical_option(opt: dict[str, Any]) -> dict[str, Any]:
    out = {
        "type": opt.get("type"),
        "name": opt.get("name"),
        "description": opt.get("description", ""),
    }
    for key, default in _OPTION_DEFAULTS.items():
        value = opt.get(key, default)
        out[key] = default if value is None else value
    if opt.get("type") in (1, 2):  # subcommands and groups: "required" means nothing
        out["required"] = False
    out["choices"] = [(c.get("name"), c.get("value")) for c in opt.get("choices") or []]
    out["channel_types"] = sorted(out["channel_types"] or [])
    out["options"] = [_canonical_option(o) for o in opt.get("options") or []]
    return out


def canonical_commands(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A command list reduced to what we set, with Discord's defaults filled in: equal for what we
    would PUT and what GET returns when nothing changed (ids, versions, localizations ignored)."""
    out = []
    for cmd in payload:
        permissions = cmd.get("default_member_permissions")
        contexts = cmd.get("contexts")
        out.append(
            {
                "type": cmd.get("type", 1),
                "name": cmd.get("name"),
                "description": cmd.get("description", ""),
                "default_member_permissions": None if permissions is None else str(permissions),
                "nsfw": bool(cmd.get("nsfw", False)),
                "contexts": sorted(contexts) if contexts else None,
                "options": [_canonical_option(o) for o in cmd.get("options") or []],
            }
        )
    return sorted(out, key=lambda c: (c["type"], c["name"]))


def same_commands(desired: list[dict[str, Any]], have: list[dict[str, Any]]) -> bool:
    """Whether Discord already has ``desired``. Contexts we leave unset are Discord's to fill in."""
    want, got = canonical_commands(desired), canonical_commands(have)
    if len(want) != len(got):
        return False
    for w, g in zip(want, got, strict=True):
        if w["contexts"] is None:
            g = {**g, "contexts": None}
        if w != g:
            return False
    return True
