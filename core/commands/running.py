"""Running one command: everything checked before it runs, with the ids its log lines carry."""

from __future__ import annotations

from typing import Any

from core.actors import Actor
from core.commands.base import Command, CommandContext, Reply
from core.commands.secrets import secret_exposed
from core.errors import NotPermitted
from core.logs import fresh
from core.services.players import is_moderator, note_identity, require_not_banned


def log_ids(app, actor: Actor):
    """The ids every log line of this command carries; services add what they learn (the player,
    the round, the attempt), and the next command starts afresh."""
    known = app.player_cache.get((actor.platform, actor.external_id))
    return fresh(platform=actor.platform, player_id=known.id if known is not None else None)


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
    with log_ids(app, actor):
        args = await prepare_command(app, actor, command, raw_args)
        return await command.handler(CommandContext(app, actor), args)
