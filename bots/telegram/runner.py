"""Building, starting and stopping the Telegram bot: long polling by default, a webhook when
TELEGRAM_WEBHOOK_URL is set, the command menu, and what the game asks it to send."""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import urlsplit

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, ApplicationBuilder

from bots.common.delivery import DeliveryTask, announcement_handler, notice_reply
from bots.common.observability import PlatformLink
from bots.telegram.handlers import LATE_ANSWER, BountyHandlers, Unsent, late_answer, send
from bots.telegram.limits import PatientRateLimiter
from bots.telegram.pacing import ChatPacer
from bots.telegram.render import Outgoing, render
from bots.telegram.request import AiohttpRequest
from bots.telegram.routing import DeepLinks, menu
from bots.telegram.teams import TelegramTeams
from bots.telegram.updates import UpdateTracker
from bots.telegram.webhook import WebhookReceiver, parse_listen
from core.app import App
from core.commands import Reply, commands_for
from core.health import platform_probe
from core.logs import redact_value
from core.services import outbox, replicas
from core.services.announcements import AnnouncementRow

log = logging.getLogger("bounty.telegram")

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_BASE_FILE_URL = "https://api.telegram.org/file/bot"
RATE_LIMIT_RETRIES = 3  # a 429 waits retry_after and tries again, this many times


def _file_url(base_url: str) -> str:
    """``http://host/bot`` -> ``http://host/file/bot`` (the Bot API's file-download prefix)."""
    head, sep, tail = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}" if sep else DEFAULT_BASE_FILE_URL


def build_application(
    app: App,
    *,
    tracker: UpdateTracker | None = None,
    handlers: BountyHandlers | None = None,
    rate_limit: bool = True,
    link: PlatformLink | None = None,
    timeout: float | None = None,
) -> Application:
    """A python-telegram-bot Application wired to the game (not started); ``link`` counts its API
    calls and knows whether the last one got an answer."""
    settings = app.settings
    if settings.TELEGRAM_BOT_TOKEN is None or not settings.TELEGRAM_BOT_TOKEN.get_secret_value():
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    token = settings.TELEGRAM_BOT_TOKEN.get_secret_value()
    base_url = settings.TELEGRAM_API_BASE_URL or DEFAULT_BASE_URL
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(
            _file_url(base_url) if settings.TELEGRAM_API_BASE_URL else DEFAULT_BASE_FILE_URL
        )
        .concurrent_updates(tracker or UpdateTracker())
        .request(
            AiohttpRequest(trace=link.trace if link else None)
            if timeout is None
            else AiohttpRequest(
                read_timeout=timeout,
                write_timeout=0,
                connect_timeout=timeout,
                trace=link.trace if link else None,
            )
        )
        # getUpdates long-polls on its own connection, so a slow poll never blocks a reply
        .get_updates_request(
            AiohttpRequest(connection_pool_size=1, trace=link.trace if link else None)
        )
    )
    if rate_limit:
        builder = builder.rate_limiter(PatientRateLimiter(max_retries=RATE_LIMIT_RETRIES))
    application = builder.build()
    (handlers or BountyHandlers(app)).install(application)
    redact_value(token, "TELEGRAM_BOT_TOKEN")  # the Bot API's URLs carry it: never in a log line
    return application


class TelegramBot:
    """The running bot. ``start()``/``stop()`` for tests and the benchmark; ``run_telegram`` for the CLI.

    ``rate_limit=False`` leaves out PTB's AIORateLimiter (a benchmark measuring the bot, not
    Telegram's flood limits and the retries of failed calls, ``bots.telegram.limits``);
    ``poll_timeout`` is the long-poll timeout in seconds; ``timeout`` how long a Bot API call may
    take (default 5 s to connect, 10 s to answer).
    """

    def __init__(
        self,
        app: App,
        *,
        rate_limit: bool = True,
        poll_timeout: int = 10,
        deep_links: DeepLinks | None = None,
        timeout: float | None = None,
    ) -> None:
        self.app = app
        self.settings = app.settings
        self.tracker = UpdateTracker()
        self.pacer = ChatPacer()
        self.handlers = BountyHandlers(app, deep_links)
        self.link = PlatformLink("telegram")
        self.application = build_application(
            app,
            tracker=self.tracker,
            handlers=self.handlers,
            rate_limit=rate_limit,
            link=self.link,
            timeout=timeout,
        )
        self.poll_timeout = poll_timeout
        self.webhook: WebhookReceiver | None = None
        self.delivery = DeliveryTask(app, "telegram")
        if self.settings.TELEGRAM_ANNOUNCE_CHAT_ID is not None:
            self.delivery.handle("announcement", announcement_handler(self.announce))
        self.delivery.handle("notice", self.send_notice)
        self.delivery.handle(LATE_ANSWER, self.send_kept)
        self.teams = TelegramTeams(self)
        self.teams.install(self.application, self.delivery)

    def connected(self) -> bool:
        """Taking updates (polling or the webhook), and the Bot API answered the last call."""
        updater = self.application.updater
        taking = self.webhook is not None or (updater is not None and updater.running)
        return self.application.running and taking and self.link.answering

    @property
    def username(self) -> str:
        return self.application.bot.username

    async def start(self) -> None:
        try:
            await self.application.initialize()  # getMe
            await self.sync_commands()
            if self.settings.TELEGRAM_WEBHOOK_URL:
                await self._start_webhook(self.settings.TELEGRAM_WEBHOOK_URL)
            else:
                await self.application.updater.start_polling(
                    poll_interval=0.0, timeout=self.poll_timeout, drop_pending_updates=False
                )
            await self.application.start()
            self.delivery.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop taking updates, let those in progress finish, close every connection."""
        await self.delivery.stop()
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def _start_webhook(self, url: str) -> None:
        host, port = parse_listen(self.settings.TELEGRAM_WEBHOOK_LISTEN)
        secret_setting = self.settings.TELEGRAM_WEBHOOK_SECRET
        # Without a configured secret, a random one per process still proves calls come from Telegram.
        secret = secret_setting.get_secret_value() if secret_setting else secrets.token_urlsafe(32)
        self.webhook = WebhookReceiver(
            self.application, path=urlsplit(url).path, secret=secret, host=host, port=port
        )
        # Several replicas may serve the webhook's URL: each update is handled by the first to take it.
        replica = outbox.consumer_name("telegram-webhook")
        bot_id = self.application.bot.id

        async def claim(update_id: int) -> bool:
            return await replicas.take_update(self.app, bot_id, update_id, replica)

        self.tracker.claim = claim
        await self.webhook.start()
        await self.application.bot.set_webhook(url, secret_token=secret)

    async def sync_commands(self) -> None:
        """The command menu from core's commands: everyone's, and with /admin for each moderator's
        private chat (BotCommandScopeChat). Set only when it differs from what Telegram has."""
        await self._set_commands(
            menu(commands_for("telegram"), moderator=False), BotCommandScopeDefault()
        )
        moderator_menu = menu(commands_for("telegram"), moderator=True)
        for user_id in self.settings.MODERATOR_TELEGRAM_USER_IDS:
            await self._set_commands(moderator_menu, BotCommandScopeChat(int(user_id)))

    async def _set_commands(self, entries: list[tuple[str, str]], scope) -> None:
        bot = self.application.bot
        wanted = [BotCommand(name, description) for name, description in entries]
        try:
            have = await bot.get_my_commands(scope=scope)
            if [(c.command, c.description) for c in have] != entries:
                await bot.set_my_commands(wanted, scope=scope)
        except TelegramError as exc:  # e.g. a moderator who never opened a chat with the bot
            log.warning("could not set the command menu for %s: %s", scope.type, exc)

    async def announce(self, row: AnnouncementRow) -> None:
        """Post an announcement to TELEGRAM_ANNOUNCE_CHAT_ID (paced; a failure is retried through the outbox)."""
        out = render(Reply(title=row.title, text=row.body))
        await self.broadcast([self.settings.TELEGRAM_ANNOUNCE_CHAT_ID], out, raise_errors=True)

    async def send_notice(self, item: outbox.OutboxItem) -> None:
        """A notice to a player in their private chat; one who never started it (or blocked the bot)
        cannot be written to, and is told nothing."""
        chat_id = int(item.payload["external_id"])
        try:
            await self.pacer.wait(chat_id)
            await send(self.application.bot, chat_id, render(notice_reply(item)))
        except Forbidden as exc:
            raise outbox.Undeliverable(f"Telegram user {chat_id}: {exc.message}") from None
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise outbox.Undeliverable(f"Telegram user {chat_id}: {exc.message}") from None
            raise

    async def send_kept(self, item: outbox.OutboxItem) -> None:
        """An answer Telegram would not take when it was given (``BountyHandlers.keep``). If part of
        it fails again, what is left is kept anew (what was sent is never sent again)."""
        chat_id = int(item.payload["chat_id"])
        try:
            await send(
                self.application.bot, chat_id, late_answer(item.payload, self.application.bot)
            )
        except Unsent as unsent:
            await self.handlers.keep(unsent, int(item.payload.get("tries", 1)))
        except (Forbidden, BadRequest) as exc:
            raise outbox.Undeliverable(f"Telegram chat {chat_id}: {exc.message}") from None

    async def broadcast(
        self, chat_ids: list[int], out: Outgoing, *, raise_errors: bool = False
    ) -> list[int]:
        """Send to many chats, each paced to about one message a second; the chats that failed."""

        async def one(chat_id: int) -> None:
            for page in out.pages:
                await self.pacer.wait(chat_id)
                await send(self.application.bot, chat_id, Outgoing((page,)))

        results = await asyncio.gather(*(one(c) for c in chat_ids), return_exceptions=True)
        failed = []
        for chat_id, result in zip(chat_ids, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("broadcast to %s failed: %s", chat_id, result)
                if raise_errors:
                    raise result
                failed.append(chat_id)
        return failed


async def run_telegram(app: App, stop: asyncio.Event) -> None:
    """Run the Telegram bot until ``stop`` is set, then shut it down cleanly."""
    bot = TelegramBot(app)
    await bot.start()
    try:
        with platform_probe("telegram", bot.connected):  # /readyz: the Bot API answers
            await stop.wait()
    finally:
        try:
            await bot.stop()
        except Exception:
            log.exception("the Telegram bot did not stop cleanly")
