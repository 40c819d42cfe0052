"""What a bot sends because the game says so (announcements, relayed team chat, notices to a player):
one outbox consumer per bot process, started and stopped with the bot.

Handlers are registered per topic; only topics with a handler are claimed, so a bot that cannot
deliver something (no announcement channel configured) leaves it to the processes that can."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from core.app import App
from core.commands import Reply
from core.services import announcements, outbox

Handler = Callable[[outbox.OutboxItem], Awaitable[None]]


def announcement_handler(send: announcements.Send) -> Handler:
    async def handle(item: outbox.OutboxItem) -> None:
        await send(announcements.row_of(item))

    return handle


def notice_reply(item: outbox.OutboxItem) -> Reply:
    """A notice (``notices.notify``) as the private reply each platform renders its own way."""
    p = item.payload
    return Reply(title=p["title"], text=p["body"], tone=p.get("tone", "info"), private=True)


class DeliveryTask:
    def __init__(self, app: App, platform: str) -> None:
        self._app, self._platform = app, platform
        self._handlers: dict[str, Handler] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def handle(self, topic: str, handler: Handler) -> None:
        """Deliver ``topic`` with ``handler`` (before ``start``)."""
        self._handlers[topic] = handler

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    async def _dispatch(self, item: outbox.OutboxItem) -> None:
        await self._handlers[item.topic](item)

    def start(self) -> None:
        """Start consuming, if there is anything to deliver."""
        if not self._handlers:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            outbox.run_consumer(
                self._app, self._platform, self._dispatch, self._stop, topics=self.topics
            ),
            name=f"{self._platform}-delivery",
        )

    async def stop(self) -> None:
        """Finish the delivery under way, then stop; safe to call when never started."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
