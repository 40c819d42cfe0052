"""Broadcast pacing: about one message per second per chat, as Telegram asks of bots.

Interactive replies are not paced (PTB's AIORateLimiter keeps the global and per-group limits);
broadcasts such as announcements to many chats wait their turn here: queued, never dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class ChatPacer:
    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._next: dict[int | str, float] = {}

    def reserve(self, chat_id: int | str) -> float:
        """Book the next free slot for ``chat_id``; how long the caller must wait for it."""
        now = self._clock()
        if len(self._next) > 10_000:
            self._next = {k: v for k, v in self._next.items() if v > now}
        slot = max(now, self._next.get(chat_id, now))
        self._next[chat_id] = slot + self.interval
        return slot - now

    async def wait(self, chat_id: int | str) -> None:
        delay = self.reserve(chat_id)
        if delay > 0:
            await asyncio.sleep(delay)
