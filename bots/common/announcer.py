"""The announcement outbox delivered by an adapter as one background task it starts and stops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from core.app import App
from core.services.announcements import AnnouncementRow, run_announcer


class AnnouncerTask:
    def __init__(self, app: App, platform: str, send: Callable[[AnnouncementRow], Awaitable[None]]) -> None:
        self._app, self._platform, self._send = app, platform, send
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            run_announcer(self._app, self._platform, self._send, self._stop), name=f"{self._platform}-announcer"
        )

    async def stop(self) -> None:
        """Finish the delivery under way, then stop; safe to call when never started."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
