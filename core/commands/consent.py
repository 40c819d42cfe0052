"""Nothing runs that its owner did not ask for, knowing what it does (SPEC §10.3).

A command its owner types runs. A command reached any other way (a Telegram deep link
``t.me/<bot>?start=team_leave``, a link in someone's message, a button forwarded from someone else)
*opens*: a view runs, since it changes nothing, and so does a command that asks before it changes
anything anyway (``Command.confirms``); any other command that changes something answers with a
question saying what would happen, on buttons that answer only the person they were shown to and
expire. Confirming runs the command then, as typed, and only if the question would still read the
same: if the team, the pool or the wallet it named changed meanwhile, the person is asked again.

The question's token holds no state on the server: ``run:<command>.<expiry>.<owner>.<tag>`` (at most
59 bytes, within Telegram's callback data), the owner a short hash of the person it was shown to and
the tag a hash binding the person, the command, the expiry and the question's exact words.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.commands.base import DEFINED, Command, CommandContext, Confirm, Reply
from core.commands.running import prepare_command, run_command
from core.errors import ConfirmationExpired, NotPermitted

if TYPE_CHECKING:
    from core.actors import Actor

KIND = "run"
TTL = timedelta(minutes=10)
NOTHING_YET = "Nothing happens unless you confirm."


def _digest(*parts: str, size: int) -> str:
    raw = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return base64.urlsafe_b64encode(raw).decode()[:size]


def _owner(actor: Actor) -> str:
    return _digest("owner", actor.platform, actor.external_id, size=8)


def _tag(actor: Actor, kind: str, ref: str, expires: str, question: str) -> str:
    return _digest(kind, actor.platform, actor.external_id, ref, expires, question, size=16)


def question_token(actor: Actor, kind: str, ref: str, expires_at: datetime, question: str) -> str:
    """A confirmation token for a question shown to ``actor``: ``<kind>:<ref>.<expiry>.<owner>.<tag>``."""
    expires = format(int(expires_at.timestamp()), "x")
    return f"{kind}:{ref}.{expires}.{_owner(actor)}.{_tag(actor, kind, ref, expires, question)}"


@dataclass(frozen=True)
class Pressed:
    """A press on a question's button, from its owner, before it expired."""

    kind: str
    ref: str
    expires: str
    tag: str

    def still_reads(self, actor: Actor, question: str) -> bool:
        """Whether the question, asked now, reads exactly as the one that was answered."""
        return _tag(actor, self.kind, self.ref, self.expires, question) == self.tag


def pressed(app, actor: Actor, kind: str, token_ref: str, *, again: str) -> Pressed:
    """Check a press: the right shape, its owner, not expired (``again`` says how to ask anew)."""
    parts = token_ref.split(".")
    if len(parts) != 4 or not parts[0]:
        raise ConfirmationExpired("That button is no longer valid.")
    ref, expires, owner, tag = parts
    if owner != _owner(actor):
        raise NotPermitted("This button is not for you.")
    try:
        expires_at = datetime.fromtimestamp(int(expires, 16), UTC)
    except (ValueError, OverflowError):
        raise ConfirmationExpired("That button is no longer valid.") from None
    if expires_at <= app.clock():
        raise ConfirmationExpired(f"That question expired: {again}")
    return Pressed(kind, ref, expires, tag)


def command_ref(command: Command) -> str:
    """The command's name in a token: its words joined by ``_`` (``team_leave``)."""
    return "_".join(command.path)


async def preview(ctx: CommandContext, command: Command, args: dict[str, Any]) -> str:
    """What running ``command`` now would do, as the question says it."""
    if command.preview is not None:
        return await command.preview(ctx, args)
    return f"/{command.name}: {command.help}"


async def ask(app, actor: Actor, command: Command) -> Reply:
    """The question asked before ``command`` runs for ``actor``, who did not type it."""
    args = await prepare_command(app, actor, command, {})
    return await _question(app, actor, command, args)


async def _question(
    app, actor: Actor, command: Command, args: dict[str, Any], *, title: str | None = None
) -> Reply:
    question = await preview(CommandContext(app, actor), command, args)
    expires_at = app.clock() + TTL
    return Reply(
        title=title or f"/{command.name}: are you sure?",
        text=f"{question}\n{NOTHING_YET}",
        private=True,
        tone="danger" if command.changes == "money" else "warning",
        confirm=Confirm(
            token=question_token(actor, KIND, command_ref(command), expires_at, question),
            prompt=f"Run /{command.name}?",
            accept_label=f"Yes: /{command.name}",
            cancel_label="No",
            expires_at=expires_at,
        ),
    )


async def open_command(app, actor: Actor, command: Command) -> Reply:
    """``command`` reached without its owner typing it (a deep link): a view, or a command that asks
    anyway, runs; anything else answers with the question of what it would do."""
    if command.changes == "view" or command.confirms:
        return await run_command(app, actor, command, {})
    return await ask(app, actor, command)


def _find(ref: str) -> Command | None:
    return next((c for c in DEFINED.values() if command_ref(c) == ref), None)


async def _answer(app, actor: Actor, token_ref: str, accept: bool) -> Reply:
    """A press on the question's buttons: only its owner, before it expires; then the command runs
    if the question still reads the same, else the person is asked again."""
    command = _find(token_ref.partition(".")[0])
    if command is None:
        raise ConfirmationExpired("That button is no longer valid.")
    press = pressed(app, actor, KIND, token_ref, again=f"send /{command.name} again.")
    if not accept:
        return Reply(title="Nothing done", text=f"/{command.name} did not run.", private=True)
    args = await prepare_command(app, actor, command, {})
    question = await preview(CommandContext(app, actor), command, args)
    if not press.still_reads(actor, question):
        return await _question(
            app, actor, command, args, title="Things changed since you were asked"
        )
    return await run_command(app, actor, command, {})


CONFIRMATIONS = {KIND: _answer}
