"""The one command table, assembled from each area's module. Each entry: name, typed arguments with
limits, help, who may run it, and the core call. Discord, Telegram and the console build their
commands from this list; ``/help`` lists it in this order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.actors import Actor
from core.commands import admin, consent, identity, play, teams, token
from core.commands.base import Command, CommandContext, Reply, unstorable
from core.commands.secrets import secret_exposed
from core.errors import ConfirmationExpired, NotPermitted
from core.services.players import is_moderator, note_identity, require_not_banned

COMMANDS: list[Command] = [
    *play.COMMANDS,
    *teams.COMMANDS,
    *token.COMMANDS,
    *identity.COMMANDS,
    *admin.COMMANDS,
]

# A confirmation token is "<kind>:<ref>"; each kind is answered by its area's handler.
CONFIRMATIONS = {
    **play.CONFIRMATIONS,
    **teams.CONFIRMATIONS,
    **token.CONFIRMATIONS,
    **identity.CONFIRMATIONS,
    **consent.CONFIRMATIONS,
}


def commands_for(platform: str, commands: Sequence[Command] | None = None) -> list[Command]:
    """The commands ``platform`` offers, in table order (read at call time: tests extend the table)."""
    return [c for c in (COMMANDS if commands is None else commands) if c.offered_on(platform)]


def find(name: str) -> Command:
    for cmd in COMMANDS:
        if cmd.name == name:
            return cmd
    raise KeyError(name)


async def prepare_command(
    app, actor: Actor, command: Command, raw_args: dict[str, Any]
) -> dict[str, Any]:
    """Everything checked before a command runs (platform, moderator right, a secret typed where
    others see it, the arguments, a ban); the converted arguments."""
    if not command.offered_on(actor.platform):
        raise NotPermitted(f"/{command.name} works only on {', '.join(command.platforms or ())}.")
    if command.moderator and not is_moderator(app.settings, actor):
        raise NotPermitted("Only moderators can do that.")
    if actor.shown_to_others and any(raw_args.get(name) for name in command.secret_args):
        await secret_exposed(app, actor, command, raw_args)
    args = command.convert(raw_args, app.settings)
    await note_identity(
        app, actor
    )  # usernames as the platform shows them now (no statement if unchanged)
    if command.refuses_banned:
        await require_not_banned(app, actor)
    return args


async def run_command(app, actor: Actor, command: Command, raw_args: dict[str, Any]) -> Reply:
    """Check the arguments and the moderator right, then run the command's core call."""
    args = await prepare_command(app, actor, command, raw_args)
    return await command.handler(CommandContext(app, actor), args)


ASKS_THE_GUARDIAN = ("attempt", "teamattempt")  # confirmations that pay an attempt


def waiting_note(token: str, accept: bool) -> str:
    """What a player sees while a slow confirmation runs."""
    if accept and token.partition(":")[0] in ASKS_THE_GUARDIAN:
        return "Sent. The guardian is thinking…"
    return "Working on it…"


async def run_confirmation(app, actor: Actor, token: str, accept: bool) -> Reply:
    """A confirmation answered (button, inline keyboard, y/n). Only its owner may answer it."""
    kind, _, ref = token.partition(":")
    handler = CONFIRMATIONS.get(kind)
    if handler is None or not ref or len(ref) > 64 or unstorable(ref):
        raise ConfirmationExpired("That button is no longer valid.")
    return await handler(app, actor, ref, accept)
