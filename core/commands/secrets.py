"""Commands that carry a secret (the guardian's prompt, a link code) run only where nobody else sees
what was typed (SPEC §10.6): typed in a group chat, the secret is already out, so the command is
refused before anything reads it, and the person is told to start again privately with a new one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from core.commands.base import Command, CommandContext
from core.errors import InvalidArgument, SecretInPublic

if TYPE_CHECKING:
    from core.actors import Actor


async def secret_exposed(app, actor: Actor, command: Command, raw_args: dict[str, Any]) -> NoReturn:
    """Refuse ``command``: its secret arguments were typed where others see them."""
    names = " and ".join(f"`{n}`" for n in command.secret_args if raw_args.get(n))
    note = ""
    if command.on_exposed is not None:
        try:
            args = command.convert(raw_args, app.settings)
        except InvalidArgument:
            args = None  # not a valid secret: nothing to put out of use
        if args is not None:
            note = " " + await command.on_exposed(CommandContext(app, actor), args)
    raise SecretInPublic(
        f"/{command.name} carries a secret ({names}) and everyone in this chat can read what you "
        f"typed, so I did not run it. Send it to me in our private chat instead.{note}"
    )
