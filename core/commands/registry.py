"""The one command table, assembled from each area's module. Each entry: name, typed arguments with
limits, help, who may run it, and the core call. Discord, Telegram and the console build their
commands from this list; ``/help`` lists it in this order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from core.actors import Actor
from core.commands import admin, consent, identity, play, privacy, teams, token
from core.commands.base import Command, CommandContext, Reply, command, unstorable
from core.commands.running import log_ids, prepare_command, run_command  # noqa: F401
from core.errors import ConfirmationExpired
from core.services.players import is_moderator


async def help_(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """List the commands you can use."""
    mod = is_moderator(ctx.app.settings, ctx.actor)
    lines = [
        f"{c.usage} — {c.help}" for c in commands_for(ctx.actor.platform) if mod or not c.moderator
    ]
    return Reply(
        title="Billions Bounty commands",
        text="Convince the guardian to release the prize pool.",
        lines=tuple(lines),
        private=True,
    )


COMMANDS: list[Command] = [
    *play.COMMANDS,
    command("help", help_, private=True),
    *teams.COMMANDS,
    *token.COMMANDS,
    *identity.COMMANDS,
    *privacy.COMMANDS,
    *admin.COMMANDS,
]

# A confirmation token is "<kind>:<ref>"; each kind is answered by its area's handler.
CONFIRMATIONS = {
    **play.CONFIRMATIONS,
    **teams.CONFIRMATIONS,
    **token.CONFIRMATIONS,
    **identity.CONFIRMATIONS,
    **privacy.CONFIRMATIONS,
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


ASKS_THE_GUARDIAN = ("attempt", "teamattempt")  # confirmations that pay an attempt


def waiting_note(token: str, accept: bool) -> str:
    """What a player sees while a slow confirmation runs."""
    if accept and token.partition(":")[0] in ASKS_THE_GUARDIAN:
        return "Sent. The guardian is thinking…"
    return "Working on it…"


async def run_confirmation(
    app, actor: Actor, token: str, accept: bool, *, staged: bool = False
) -> Reply:
    """A confirmation answered (button, inline keyboard, y/n). Only its owner may answer it.
    ``staged``: return the first answer, whose ``follow`` gives the final one (adapters show the
    stages); otherwise the final answer."""
    kind, _, ref = token.partition(":")
    handler = CONFIRMATIONS.get(kind)
    if handler is None or not ref or len(ref) > 64 or unstorable(ref):
        raise ConfirmationExpired("That button is no longer valid.")
    with log_ids(app, actor):
        reply = await handler(app, actor, ref, accept)
    if reply.follow is not None:  # the final answer comes later: with the same ids in its log lines
        follow = reply.follow

        async def logged() -> Reply:
            with log_ids(app, actor):
                return await follow()

        reply = replace(reply, follow=logged)
    while not staged and reply.follow is not None:
        reply = await reply.follow()
    return reply
