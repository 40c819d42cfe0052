"""The PTB callbacks: commands, deep links, confirmation buttons, and the one error handler."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from telegram import (
    Bot,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bots.common.errors import answer_for
from bots.telegram.limits import transient
from bots.telegram.render import (
    Outgoing,
    alert_text,
    esc,
    parse_callback,
    render,
    render_error,
    render_plain,
)
from bots.telegram.routing import CommandLine, DeepLinks, Routed, route, split_command
from bots.telegram.targets import reply_target, with_mentions
from core.actors import Actor
from core.app import App
from core.commands import (
    Attachment,
    Command,
    Reply,
    commands_for,
    parse_text_args,
    run_command,
    run_confirmation,
    waiting_note,
)
from core.commands.consent import open_command
from core.errors import InvalidArgument, SecretInPublic
from core.services import outbox
from core.services.players import is_moderator

log = logging.getLogger("bounty.telegram")

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
WELCOME = (
    "Convince the guardian to release the prize pool. Each attempt costs a fee that you confirm "
    "first.\nStart with /bounty to see the round, then /attempt <your message>. /help lists every command."
)


def actor_for(user: User, chat: Chat | None) -> Actor:
    """The platform-neutral speaker: core never sees a telegram.User."""
    private = chat is None or chat.type == ChatType.PRIVATE
    return Actor(
        "telegram",
        str(user.id),
        user.full_name or user.username or str(user.id),
        chat_id=str(chat.id) if chat is not None else None,
        private_chat=private,
        username=user.username,
        shown_to_others=not private,  # a group sees the whole command line
    )


@dataclass(frozen=True)
class Where:
    """Where a request came from: the chat, who asked, and the message to answer."""

    bot: Bot
    chat: Chat
    user: User
    message_id: int | None


LATE_ANSWER = "answer"  # outbox topic: an answer sent later (BountyHandlers.keep)
LATE_TTL = timedelta(days=1)
LATE_MAX_PAUSE = 300  # seconds between tries of a kept answer, at most


def late_payload(chat_id: int, out: Outgoing, tries: int) -> dict:
    """An answer as an outbox row's JSON: its pages, keyboard and files."""
    return {
        "chat_id": chat_id,
        "tries": tries,
        "pages": list(out.pages),
        "keyboard": out.keyboard.to_dict() if out.keyboard is not None else None,
        "document": [out.document[0], base64.b64encode(out.document[1]).decode()]
        if out.document is not None
        else None,
        "attachments": [
            [a.name, base64.b64encode(a.data).decode(), a.image] for a in out.attachments
        ],
    }


def late_answer(payload: dict, bot: Bot) -> Outgoing:
    """The Outgoing a ``late_payload`` holds."""
    document = payload.get("document")
    return Outgoing(
        tuple(payload["pages"]),
        InlineKeyboardMarkup.de_json(payload["keyboard"], bot) if payload.get("keyboard") else None,
        (document[0], base64.b64decode(document[1])) if document else None,
        tuple(
            Attachment(name, base64.b64decode(data), image)
            for name, data, image in payload.get("attachments") or ()
        ),
    )


class Unsent(Exception):
    """A send that still failed after the retries (``limits``): what is left of it, to send later."""

    def __init__(self, chat_id: int, rest: Outgoing, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__} sending to {chat_id}")
        self.chat_id = chat_id
        self.rest = rest
        self.cause = cause


async def send(
    bot: Bot, chat_id: int, out: Outgoing, *, reply_to: int | None = None
) -> list[Message]:
    """Send every page (the keyboard under the last), then the file if there is one. A transient
    failure that outlasts the retries raises ``Unsent`` with the part not sent yet."""
    sent: list[Message] = []
    pages, document, attachments = list(out.pages), out.document, list(out.attachments)
    try:
        while pages:
            last = len(pages) == 1
            kwargs = {
                "text": pages[0],
                "parse_mode": ParseMode.HTML,
                "link_preview_options": NO_PREVIEW,
                "reply_markup": out.keyboard if last else None,
                "reply_parameters": ReplyParameters(reply_to, allow_sending_without_reply=True)
                if reply_to is not None and not sent
                else None,
            }
            try:
                sent.append(await bot.send_message(chat_id, **kwargs))
            except ChatMigrated as moved:  # the group became a supergroup: it has a new id
                chat_id = moved.new_chat_id
                sent.append(await bot.send_message(chat_id, **kwargs))
            pages.pop(0)
        if document is not None:
            name, data = document
            sent.append(await bot.send_document(chat_id, document=data, filename=name))
            document = None
        while attachments:
            attachment = attachments[0]
            if attachment.image:
                sent.append(
                    await bot.send_photo(chat_id, photo=attachment.data, filename=attachment.name)
                )
            else:
                sent.append(
                    await bot.send_document(
                        chat_id, document=attachment.data, filename=attachment.name
                    )
                )
            attachments.pop(0)
    except TelegramError as exc:
        if not transient(exc):
            raise
        rest = Outgoing(tuple(pages), out.keyboard if pages else None, document, tuple(attachments))
        raise Unsent(chat_id, rest, exc) from exc
    return sent


class BountyHandlers:
    """Each update: find the core command, run it, answer in the right chat."""

    confirm_grace = 0.5  # a press waits this long for core before answering the callback query
    typing_every = 4.5  # Telegram shows "typing" for 5 s per chat action
    slow_typing_after = 1.0  # slow commands show "typing" once they take this long

    def __init__(self, app: App, deep_links: DeepLinks | None = None) -> None:
        self.app = app
        self.deep_links = deep_links or DeepLinks()

    def install(self, application: Application) -> None:
        message = filters.UpdateType.MESSAGE
        application.add_handler(MessageHandler(message & filters.COMMAND, self.on_command))
        application.add_handler(
            MessageHandler(
                message & filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND,
                self.on_plain_text,
            )
        )
        application.add_handler(CallbackQueryHandler(self.on_button))
        # Anything else (edits, stickers, photos, member changes...) matches no handler: ignored.
        application.add_error_handler(self.on_error)

    # --- commands ---------------------------------------------------------------------------

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user, chat = update.message, update.effective_user, update.effective_chat
        if message is None or user is None or chat is None or user.is_bot or not message.text:
            return
        line = split_command(with_mentions(message))
        if line is None:
            return
        if line.addressee and line.addressee.lower() != (context.bot.username or "").lower():
            return  # /attempt@OtherBot: for another bot in this group
        where = Where(context.bot, chat, user, message.message_id)
        actor = actor_for(user, chat)
        if line.name == "start":
            await self._start(where, actor, line.rest.strip())
            return
        routed = route(commands_for("telegram"), line.name, line.rest)
        if routed.command is None:
            await self._not_a_command(where, actor, line, routed)
            return
        await self._run(
            where,
            actor,
            routed.command,
            reply_target(routed.command, routed.args_text, message, context.bot.id),
        )

    async def _run(
        self, where: Where, actor: Actor, command: Command, args_text: str, *, typed: bool = True
    ) -> None:
        """Run a command: as typed, or opened (a deep link: core asks before anything changes)."""
        try:
            args = parse_text_args(command, args_text)
            async with self._typing(
                where.bot, where.chat.id, delay=self.slow_typing_after, enabled=command.slow
            ):
                if typed:
                    reply = await run_command(self.app, actor, command, args)
                else:
                    reply = await open_command(self.app, actor, command)
        except SecretInPublic as exc:  # the secret is in the group already: take it down if we may
            await self.deliver(where, await self._take_down(where, exc), private=False)
            return
        except Exception as exc:  # the adapter's one error policy
            out = self._error(exc, f"telegram /{command.name}", usage=command.usage)
            await self.deliver(where, out, private=command.private)
            return
        out = render(reply, file_name="-".join(command.path) + ".txt")
        await self.deliver(
            where,
            out,
            private=reply.private or command.private,
            # Opened again from the private chat it only shows (a view) or asks first (anything else).
            payload=DeepLinks.payload_for(command),
            acted=typed and command.changes != "view" and reply.confirm is None,
        )

    async def _take_down(self, where: Where, exc: SecretInPublic) -> Outgoing:
        """The refusal of a secret typed in a group, after deleting the message that carries it."""
        message = exc.message
        if where.message_id is not None:
            try:
                await where.bot.delete_message(where.chat.id, where.message_id)
                message += " I deleted your message here."
            except TelegramError as err:
                log.info("could not delete a secret in chat %s: %s", where.chat.id, err)
                message += " I could not delete your message here: delete it yourself, now."
        return render_error(message)

    async def _not_a_command(
        self, where: Where, actor: Actor, line: CommandLine, routed: Routed
    ) -> None:
        if routed.group:  # "/admin" alone, or "/admin frobnicate"
            if all(c.moderator for c in routed.group) and not is_moderator(
                self.app.settings, actor
            ):
                out = render_error("Only moderators can do that.")
            else:
                out = render(
                    Reply(
                        title=f"/{line.name} needs one of these:",
                        lines=tuple(c.usage for c in routed.group),
                        tone="warning",
                    )
                )
        elif where.chat.type == ChatType.PRIVATE or line.addressee:
            out = render_error(f"Unknown command /{line.name}. Send /help to see the commands.")
        else:
            return  # a bare unknown command in a group may belong to another bot
        await self.deliver(where, out, private=False)

    async def _start(self, where: Where, actor: Actor, payload: str) -> None:
        """/start, and deep links t.me/<bot>?start=<payload>."""
        if not payload:
            await self.deliver(
                where,
                render(Reply(title="Welcome to Billions Bounty", text=WELCOME)),
                private=False,
            )
            return
        link = self.deep_links.route(commands_for("telegram"), payload)
        if link.error is not None:
            await self.deliver(where, render_error(link.error), private=False)
            return
        if link.command is not None:
            await self._run(where, actor, link.command, "", typed=False)
            return
        assert link.handler is not None
        try:
            reply = await link.handler(self.app, actor, link.argument)
        except Exception as exc:
            await self.deliver(where, self._error(exc, "telegram deep link"), private=True)
            return
        await self.deliver(where, render(reply), private=reply.private)

    async def on_plain_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A private message that is not a command: point to the commands."""
        if update.message is None or update.effective_user is None or update.effective_user.is_bot:
            return
        out = render_plain(
            "Commands start with a slash: /attempt <your message> talks to the guardian, "
            "/bounty shows the round, /help lists everything."
        )
        await send(context.bot, update.message.chat.id, out)

    # --- where replies go ---------------------------------------------------------------------

    async def deliver(
        self,
        where: Where,
        out: Outgoing,
        *,
        private: bool,
        payload: str | None = None,
        acted: bool = False,
    ) -> None:
        """Answer in the chat asked in, or for a private reply asked in a group, in the user's private
        chat (if the bot may not write there yet, say so in the group without the private content;
        ``acted``: the command changed something, so it is not to be sent again)."""
        if not private or where.chat.type == ChatType.PRIVATE:
            await send(where.bot, where.chat.id, out, reply_to=where.message_id)
            return
        try:
            await send(where.bot, where.user.id, out)
        except (Forbidden, BadRequest) as exc:
            if isinstance(exc, BadRequest) and "chat not found" not in exc.message.lower():
                raise
            log.info("cannot write to user %s privately: %s", where.user.id, exc.message)
            await send(
                where.bot,
                where.chat.id,
                self._start_private_first(where, None if acted else payload, acted=acted),
                reply_to=where.message_id,
            )
            return
        await send(
            where.bot,
            where.chat.id,
            render_plain("I answered you in our private chat."),
            reply_to=where.message_id,
        )

    def _start_private_first(
        self, where: Where, payload: str | None, *, acted: bool = False
    ) -> Outgoing:
        username = where.bot.username or ""
        link = f"https://t.me/{username}" + (f"?start={payload}" if payload else "")
        text = (
            f"{esc(where.user.first_name)}, I can only answer that in a private chat, and you have not "
            "started one with me yet. Open it, press <b>Start</b>, then send the command again."
        )
        if acted:
            text = (
                f"{esc(where.user.first_name)}, it is done, but I can only tell you more in a private "
                "chat, and you have not started one with me yet. Open it and press <b>Start</b>: "
                "/history, /balance and /team info show where things stand."
            )
        elif payload:
            text = (
                f"{esc(where.user.first_name)}, I can only answer that in a private chat, and you have not "
                "started one with me yet. Open it and press <b>Start</b>: I will answer there."
            )
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Open a private chat", url=link)]])
        return Outgoing((text,), keyboard)

    # --- confirmation buttons -----------------------------------------------------------------

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        parsed = parse_callback(query.data)
        if parsed is None:
            await self._answer(query, "That button is no longer valid.", alert=True)
            return
        token, accept = parsed
        message = query.message
        chat = message.chat if message is not None else None
        actor = actor_for(query.from_user, chat)
        work = asyncio.ensure_future(run_confirmation(self.app, actor, token, accept, staged=True))
        done, _ = await asyncio.wait({work}, timeout=self.confirm_grace)
        if done and work.exception() is not None:
            # Refused at once (not the owner, expired, already used): only the presser sees why.
            await self._answer(
                query, self._error_message(work.exception(), "telegram button"), alert=True
            )
            return
        target = chat.id if chat is not None else query.from_user.id
        if done and work.result().keep_message:  # a repeated or late press: the presser alone
            await self._answer(query, work.result().as_text(), alert=True)
            return
        # Nothing edits the message until this press is known to own it (it paid, or was refused).
        await self._answer(query, None if done else waiting_note(token, accept))
        try:
            if not done:
                async with self._typing(context.bot, chat.id if chat else None, delay=0.0):
                    await work
            reply = work.result()
            if reply.keep_message:
                await send(context.bot, query.from_user.id, render(reply))
                return
            if reply.follow is not None:
                try:  # what happens meanwhile; the answer below must come whatever this does
                    await self._show_outcome(context.bot, query, reply)
                except TelegramError as exc:
                    log.info("could not show the interim state of %s: %s", query.id, exc)
                async with self._typing(context.bot, chat.id if chat else None, delay=0.0):
                    reply = await reply.follow()
        except Exception as exc:
            await send(context.bot, target, self._error(exc, "telegram button"))
            return
        await self._show_outcome(context.bot, query, reply)

    async def _show_outcome(self, bot: Bot, query, reply: Reply) -> None:
        message = query.message
        out = render(reply)
        if message is None:
            await send(bot, query.from_user.id, out)
            return
        if reply.private and message.chat.type != ChatType.PRIVATE:
            await self._replace(
                bot,
                message.chat.id,
                message.message_id,
                render_plain("Answered in a private chat."),
            )
            await self.deliver(Where(bot, message.chat, query.from_user, None), out, private=True)
            return
        await self._replace(bot, message.chat.id, message.message_id, out)

    async def _replace(self, bot: Bot, chat_id: int, message_id: int, out: Outgoing) -> None:
        """Edit the confirmation message into the outcome (its keyboard goes); overflow follows."""
        first, rest = out.pages[0], out.pages[1:]
        keyboard = out.keyboard if not rest else None
        try:
            await bot.edit_message_text(
                first,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard,
                link_preview_options=NO_PREVIEW,
            )
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.info(
                    "could not edit message %s in %s (%s); sending it anew",
                    message_id,
                    chat_id,
                    exc.message,
                )
                await send(bot, chat_id, Outgoing((first,), keyboard))
        except TelegramError as exc:
            if not transient(exc):
                raise
            # Telegram still failing after the retries: the whole outcome goes out anew, later.
            raise Unsent(chat_id, out, exc) from exc
        if rest or out.document is not None or out.attachments:
            await send(bot, chat_id, Outgoing(rest, out.keyboard, out.document, out.attachments))

    async def _answer(self, query, text: str | None, *, alert: bool = False) -> None:
        try:
            await query.answer(alert_text(text) if text else None, show_alert=alert)
        except TelegramError as exc:  # too old, or answered already: the outcome still follows
            log.info("callback query %s not answered: %s", query.id, exc)

    # --- errors -------------------------------------------------------------------------------

    def _error_message(self, exc: BaseException, where: str) -> str:
        return answer_for(exc, where=where).message

    def _error(self, exc: BaseException, where: str, *, usage: str | None = None) -> Outgoing:
        message = self._error_message(exc, where)
        return render_error(message, usage=usage if isinstance(exc, InvalidArgument) else None)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """PTB's error handler: whatever escaped a callback. A Bot API refusal (blocked, chat gone,
        retries exhausted) is logged; the game state is already in core (/history shows it)."""
        exc = context.error
        update_id = getattr(update, "update_id", None)
        if isinstance(exc, Unsent):
            await self.keep(exc)
            return
        if isinstance(exc, TelegramError):
            log.warning(
                "Bot API refused a call for update %s: %s: %s", update_id, type(exc).__name__, exc
            )
            return
        if exc is None:
            return
        answer = answer_for(exc, where=f"telegram update {update_id}")
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is not None:
            with contextlib.suppress(TelegramError):
                await context.bot.send_message(
                    chat.id, esc(answer.message), parse_mode=ParseMode.HTML
                )

    # --- answers sent later -------------------------------------------------------------------

    async def keep(self, unsent: Unsent, tries: int = 0) -> None:
        """An answer Telegram would not take even after the retries: kept in the outbox and sent
        later by whichever Telegram process claims it (``TelegramBot.send_kept``), never dropped."""
        log.warning(
            "Telegram did not take an answer for %s (%s); it is kept and sent later",
            unsent.chat_id,
            type(unsent.cause).__name__,
        )
        delay = timedelta(seconds=min(2**tries, LATE_MAX_PAUSE))
        async with self.app.uow() as uow:
            await outbox.put(
                uow.conn,
                LATE_ANSWER,
                "telegram",
                late_payload(unsent.chat_id, unsent.rest, tries + 1),
                delay=delay,
                ttl=LATE_TTL,
            )

    # --- typing -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _typing(
        self, bot: Bot, chat_id: int | None, *, delay: float, enabled: bool = True
    ) -> AsyncIterator[None]:
        """Show "typing…" in the chat while a slow call runs (after ``delay`` seconds)."""
        if not enabled or chat_id is None:
            yield
            return

        async def keep_typing() -> None:
            await asyncio.sleep(delay)
            while True:
                try:
                    await bot.send_chat_action(chat_id, ChatAction.TYPING)
                except TelegramError as exc:
                    log.debug("typing indicator failed in %s: %s", chat_id, exc)
                    return
                await asyncio.sleep(self.typing_every)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
