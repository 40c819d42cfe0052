"""What happens to each interaction: the slash command or button press is acknowledged in time
(deferred at once when it may wait on the guardian), core runs it, the reply is delivered, and any
error goes through the one error policy (``bots.common.errors.answer_for``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Iterator
from dataclasses import replace
from typing import Any

import discord
from discord import app_commands

from bots.common.errors import answer_for
from bots.discord.buttons import confirm_view, pressed_view
from bots.discord.commands import raw_options
from bots.discord.late import LATE_ANSWER, LATE_TTL, late_payload
from bots.discord.render import NO_MENTIONS, Outgoing, OutMessage, render, render_error, render_note
from core.actors import Actor
from core.app import App
from core.commands import Command, Reply, run_command, run_confirmation
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.services import outbox

log = logging.getLogger("bounty.discord")

SEEN_INTERACTIONS = 10_000  # ids remembered to drop a redelivered interaction
ALREADY_ACKNOWLEDGED = 40060  # Discord: this interaction has its response already
# Failures after which the interaction cannot carry the answer any more, and it goes by message
# instead: Discord's 5xx and 429s that outlasted discord.py's retries, a vanished interaction,
# message or webhook (404), an expired interaction token (401).
KEPT_WHEN = frozenset({401, 404, 429})


class NotDelivered(Exception):
    """An answer the interaction could not carry: the messages not sent, and why."""

    def __init__(self, rest: list[OutMessage], private: bool, cause: discord.HTTPException) -> None:
        super().__init__(f"{len(rest)} messages not delivered: {cause}")
        self.rest = rest
        self.private = private
        self.cause = cause

    @property
    def worth_keeping(self) -> bool:
        return bool(self.rest) and (self.cause.status >= 500 or self.cause.status in KEPT_WHEN)


def actor_for(interaction: discord.Interaction) -> Actor:
    """The platform-neutral speaker: core never sees a discord.Member."""
    user = interaction.user
    roles = {str(r.id) for r in getattr(user, "roles", ())}
    # Role ids as Discord sent them, even for a guild not (yet) in the cache, where .roles is empty.
    roles |= {str(r) for r in getattr(user, "_roles", ())}
    return Actor(
        "discord",
        str(user.id),
        user.display_name,
        roles=frozenset(roles),
        chat_id=str(interaction.channel_id) if interaction.channel_id is not None else None,
        private_chat=interaction.guild_id is None,
        username=user.name,
    )


class HandledInteractions:
    """Counts interactions the bot has finished with (answered, refused or dropped as repeats), so
    tests and the benchmark can wait for one deterministically. Bounded: old ids are forgotten."""

    def __init__(self, size: int = SEEN_INTERACTIONS) -> None:
        self.size = size
        self.counts: OrderedDict[int, int] = OrderedDict()
        self._changed = asyncio.Event()

    def finished(self, interaction_id: int) -> None:
        self.counts[interaction_id] = self.counts.get(interaction_id, 0) + 1
        self.counts.move_to_end(interaction_id)
        if len(self.counts) > self.size:
            self.counts.popitem(last=False)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, interaction_id: int, count: int = 1) -> None:
        while self.counts.get(interaction_id, 0) < count:
            await self._changed.wait()


class Responder:
    """Answers one interaction, remembering how it was acknowledged: a first answer, a deferral
    (the "thinking" message that the first page then replaces), or a deferred update of the
    message a button sits on."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.deferred_ephemeral: bool | None = None  # set once deferred with a "thinking" message
        self.original_pending = False  # the deferred "thinking" message still waits for its content
        self._responded = False  # Discord took our response although discord.py saw it fail

    @property
    def acknowledged(self) -> bool:
        return self._responded or self.interaction.response.is_done()

    async def defer(self, *, ephemeral: bool) -> None:
        """Acknowledge now (Discord allows 3 s); a failure is logged, the work goes on."""
        if self.acknowledged:
            return
        try:
            await self.interaction.response.defer(ephemeral=ephemeral, thinking=True)
        except discord.HTTPException as exc:
            # A 5xx whose deferral Discord had made, retried by discord.py: "already acknowledged".
            if exc.code != ALREADY_ACKNOWLEDGED:
                log.warning("could not defer interaction %s: %s", self.interaction.id, exc)
                return
            self._responded = True
        except discord.InteractionResponded as exc:
            log.warning("could not defer interaction %s: %s", self.interaction.id, exc)
            return
        self.deferred_ephemeral = ephemeral
        self.original_pending = True

    async def defer_update(self) -> None:
        """For a button press: acknowledged, the message left as it is until we edit it."""
        if self.acknowledged:
            return
        try:
            await self.interaction.response.defer()
        except (discord.HTTPException, discord.InteractionResponded) as exc:
            log.warning("could not acknowledge press %s: %s", self.interaction.id, exc)

    @staticmethod
    def _kwargs(message: OutMessage, *, edit: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
        if message.embed is not None:
            kwargs["embed"] = message.embed
        elif edit:
            kwargs["embed"] = None
        if message.content is not None or edit:
            kwargs["content"] = message.content
        files = message.discord_files()
        if files:
            kwargs["attachments" if edit else "files"] = files
        if message.confirm is not None:
            kwargs["view"] = confirm_view(message.confirm)
        elif edit:
            kwargs["view"] = None
        return kwargs

    async def send(self, out: Outgoing) -> None:
        """Deliver every message of ``out``: as the answer, in place of the "thinking" message, then
        as follow-ups. A private answer to a public deferral replaces it by an ephemeral message.
        What Discord refused, after discord.py's own retries, is raised as ``NotDelivered``."""
        messages = list(out.messages)
        interaction = self.interaction
        ephemeral = out.private
        try:
            if not self.acknowledged:
                try:
                    await interaction.response.send_message(
                        ephemeral=ephemeral, **self._kwargs(messages[0])
                    )
                except discord.HTTPException as exc:
                    # Retried after a 5xx, the response had been made: the first page is shown.
                    if exc.code != ALREADY_ACKNOWLEDGED:
                        raise
                    log.info("interaction %s: our answer had arrived already", interaction.id)
                self._responded = True
                messages.pop(0)
            elif self.original_pending:
                if self.deferred_ephemeral or not ephemeral:
                    ephemeral = bool(self.deferred_ephemeral)
                    await interaction.edit_original_response(**self._kwargs(messages[0], edit=True))
                    messages.pop(0)
                else:  # the public "thinking…" must not show a private answer
                    with contextlib.suppress(discord.HTTPException):
                        await interaction.delete_original_response()
                self.original_pending = False
        except discord.HTTPException as exc:
            raise NotDelivered(messages, out.private, exc) from exc
        await self.follow_up(messages, ephemeral=ephemeral, private=out.private)

    async def follow_up(
        self, messages: list[OutMessage], *, ephemeral: bool, private: bool
    ) -> None:
        """Send ``messages`` as follow-ups, in order; what Discord refused is raised as
        ``NotDelivered`` (the messages not sent)."""
        rest = list(messages)
        try:
            while rest:
                await self.interaction.followup.send(
                    ephemeral=ephemeral, wait=True, **self._kwargs(rest[0])
                )
                rest.pop(0)
        except discord.HTTPException as exc:
            raise NotDelivered(rest, private, exc) from exc

    async def replace_original(self, out: Outgoing, *, view: discord.ui.View | None) -> None:
        """Edit the message a button sits on into ``out`` (its first page); the rest follows."""
        first = out.messages[0]
        kwargs = self._kwargs(first, edit=True)
        if first.confirm is None:
            kwargs["view"] = view
        await self.interaction.edit_original_response(**kwargs)
        await self.follow_up(list(out.messages[1:]), ephemeral=True, private=True)


class BountyHandlers:
    """The game's side of every interaction. One instance per bot."""

    defer_after = 2.0  # a command not marked slow that is still running then is deferred anyway

    def __init__(self, app: App) -> None:
        self.app = app
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self.handled = HandledInteractions()

    # --- bookkeeping --------------------------------------------------------------------------

    def first_delivery(self, interaction: discord.Interaction) -> bool:
        """False for an interaction id seen before (a redelivered gateway event): it is dropped."""
        if interaction.id in self._seen:
            log.info("interaction %s delivered again; ignored", interaction.id)
            self.handled.finished(interaction.id)
            return False
        self._seen[interaction.id] = None
        if len(self._seen) > SEEN_INTERACTIONS:
            self._seen.popitem(last=False)
        return True

    @contextlib.contextmanager
    def in_flight(self, interaction: discord.Interaction) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._in_flight.discard(task)
            self.handled.finished(interaction.id)

    async def wait_idle(self, timeout: float) -> None:
        """Let interactions in progress finish (a paid attempt waits on the guardian)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while pending := {
            t for t in self._in_flight if not t.done() and t is not asyncio.current_task()
        }:
            left = deadline - loop.time()
            if left <= 0:
                log.warning("%d interactions still running at shutdown", len(pending))
                return
            log.info("waiting for %d interactions in progress", len(pending))
            await asyncio.wait(pending, timeout=left)

    # --- slash commands -----------------------------------------------------------------------

    async def on_command(
        self, interaction: discord.Interaction, command: Command, raw: dict[str, Any]
    ) -> None:
        with self.in_flight(interaction):
            responder = Responder(interaction)
            where = f"discord /{command.name}"
            try:
                actor = actor_for(interaction)
                reply = await self._acknowledged_in_time(
                    responder,
                    run_command(self.app, actor, command, raw),
                    slow=command.slow,
                    ephemeral=command.private,
                )
            except Exception as exc:
                await self.answer_error(responder, exc, where, usage=command.usage)
                return
            out = render(reply, file_name="-".join(command.path) + ".txt")
            out.private = out.private or command.private
            await self._deliver(responder, out, where)

    async def _acknowledged_in_time(
        self, responder: Responder, work: Awaitable[Reply], *, slow: bool, ephemeral: bool
    ) -> Reply:
        if slow:
            await responder.defer(ephemeral=ephemeral)
            return await work
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=self.defer_after)
        if not done:
            await responder.defer(ephemeral=ephemeral)
        return await task

    async def _deliver(self, responder: Responder, out: Outgoing, where: str) -> None:
        try:
            await responder.send(out)
        except NotDelivered as failed:
            # 429s and 5xx were retried by discord.py already; what is left goes by message.
            log.warning(
                "%s: Discord refused the answer to interaction %s: %s",
                where,
                responder.interaction.id,
                failed.cause,
            )
            await self.keep(responder.interaction, failed)

    async def keep(self, interaction: discord.Interaction, failed: NotDelivered) -> None:
        """An answer the interaction could not carry is kept in the outbox and sent as a message
        (a direct message if it was private, else in its channel) by whichever Discord process
        claims it: never dropped. A refusal of the answer itself (a 400) is only logged."""
        if not failed.worth_keeping:
            return
        private = failed.private or interaction.guild_id is None
        payload = late_payload(
            failed.rest,
            user_id=interaction.user.id,
            channel_id=None if private else interaction.channel_id,
        )
        async with self.app.uow() as uow:
            await outbox.put(uow.conn, LATE_ANSWER, "discord", payload, ttl=LATE_TTL)

    # --- confirmation buttons -----------------------------------------------------------------

    async def on_confirmation(
        self, interaction: discord.Interaction, token: str, accept: bool
    ) -> None:
        with self.in_flight(interaction):
            responder = Responder(interaction)
            await responder.defer_update()
            pressed = (interaction.data or {}).get("custom_id", "")
            message = interaction.message
            work = asyncio.ensure_future(
                run_confirmation(self.app, actor_for(interaction), token, accept, staged=True)
            )
            try:
                # Nothing edits the message until this press is known to own it (it paid, or was
                # refused): a repeated press must not draw "thinking" over an answer.
                reply = await work
            except Exception as exc:
                # Refused (not the owner, expired, already answered): only the presser is told.
                await self.answer_error(responder, exc, "discord button")
                return
            if reply.keep_message:  # a repeated or late press: the presser alone
                await self._follow_up(responder, render(replace(reply, private=True)))
                return
            disabled = pressed_view(message, pressed)
            if reply.follow is not None:
                await self._interim(responder, message, reply, disabled)
                try:
                    reply = await reply.follow()
                except Exception as exc:
                    await self._replace(
                        responder,
                        render_error(answer_for(exc, where="discord button").message),
                        None,
                    )
                    return
            await self._show(responder, message, reply, disabled)

    async def _interim(
        self,
        responder: Responder,
        message: discord.Message | None,
        reply: Reply,
        disabled: discord.ui.View | None,
    ) -> None:
        """What happens meanwhile ("thinking"), drawn on the message if Discord lets us; never sent
        as a message of its own, since the outcome follows whatever this does."""
        if reply.private and message is not None and not message.flags.ephemeral:
            return
        try:
            await responder.replace_original(render(reply), view=disabled)
        except (discord.HTTPException, NotDelivered) as exc:
            log.info("could not show the interim state of %s: %s", responder.interaction.id, exc)

    async def _show(
        self,
        responder: Responder,
        message: discord.Message | None,
        reply: Reply,
        disabled: discord.ui.View | None,
    ) -> None:
        out = render(reply)
        if reply.private and message is not None and not message.flags.ephemeral:
            # A private answer pressed on a public message: the message only says where it went.
            if reply.follow is None:
                await self._replace(responder, render_note("Answered privately."), disabled)
                await self._follow_up(responder, out)
            return
        await self._replace(responder, out, disabled)

    async def _replace(
        self, responder: Responder, out: Outgoing, disabled: discord.ui.View | None
    ) -> None:
        try:
            await responder.replace_original(out, view=disabled)
        except NotDelivered as failed:
            log.warning(
                "could not follow up on interaction %s (%s)", responder.interaction.id, failed.cause
            )
            await self.keep(responder.interaction, failed)
        except discord.HTTPException as exc:
            log.warning(
                "could not edit the confirmation of interaction %s (%s); following up instead",
                responder.interaction.id,
                exc,
            )
            await self._follow_up(responder, out)

    async def _follow_up(self, responder: Responder, out: Outgoing) -> None:
        try:
            await responder.follow_up(list(out.messages), ephemeral=True, private=True)
        except NotDelivered as failed:
            log.warning(
                "Discord refused the follow-up of interaction %s: %s",
                responder.interaction.id,
                failed.cause,
            )
            await self.keep(responder.interaction, failed)

    # --- errors -------------------------------------------------------------------------------

    async def answer_error(
        self, responder: Responder, exc: BaseException, where: str, *, usage: str | None = None
    ) -> None:
        """The one error answer: core's message (or an apology with an error id), ephemeral."""
        if isinstance(exc, discord.HTTPException):
            log.warning(
                "%s: Discord refused a call for interaction %s: %s",
                where,
                responder.interaction.id,
                exc,
            )
            return
        answer = answer_for(exc, where=where)
        out = render_error(
            answer.message, usage=usage if isinstance(exc, InvalidArgument) else None
        )
        if responder.acknowledged and not responder.original_pending:
            await self._follow_up(responder, out)
            return
        await self._deliver(responder, out, where)

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """discord.py's tree errors (before our callback ran): told in core's words."""
        command = interaction.command
        core_command = (
            command.extras.get("core") if isinstance(command, app_commands.Command) else None
        )
        if core_command is not None and isinstance(
            error, (app_commands.CommandSignatureMismatch, app_commands.TransformerError)
        ):
            # Options discord.py could not match or convert (Discord's client checks them, a stale
            # or hand-made payload may not): core checks the raw values and says what was wrong.
            await self.on_command(interaction, core_command, raw_options(interaction.data))  # type: ignore[arg-type]
            return
        where = (
            f"discord /{command.qualified_name}" if command is not None else "discord interaction"
        )
        exc: BaseException = error
        if isinstance(error, app_commands.CommandInvokeError):
            exc = error.original
        elif isinstance(error, app_commands.TransformerError):
            exc = InvalidArgument(f"`{error.value!r}` is not a valid value here.")
        elif isinstance(
            error, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)
        ):
            exc = NotFound(
                "That command changed; Discord is updating its list. Try again in a minute."
            )
        elif isinstance(error, app_commands.CheckFailure):
            exc = NotPermitted("You cannot use that here.")
        with self.in_flight(interaction):
            await self.answer_error(Responder(interaction), exc, where)
