"""Webhook mode: a small aiohttp server receiving Telegram's POSTs (PTB's own webhook server needs
tornado, which this project does not install). Updates go into the Application's queue, exactly
as polled ones do."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from telegram import Update
from telegram.ext import Application

log = logging.getLogger("bounty.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::]:8443`` for IPv6) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"TELEGRAM_WEBHOOK_LISTEN must be host:port, not {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class WebhookReceiver:
    def __init__(
        self, application: Application, *, path: str, secret: str, host: str, port: int
    ) -> None:
        self.application = application
        self.path = path or "/"
        self._secret = secret
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        web_app = web.Application(client_max_size=1 << 20)
        web_app.router.add_post(self.path, self._receive)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the real one when 0 was asked
        log.info("Telegram webhook listening on %s:%s%s", self.host, self.port, self.path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("webhook call without the right secret token from %s", request.remote)
            return web.Response(status=403)
        try:
            data = await request.json()
            update = Update.de_json(data, self.application.bot)
        except Exception:
            return web.Response(status=400)
        if update is None:
            return web.Response(status=400)
        await self.application.update_queue.put(update)
        return web.Response(status=200)
