"""Processing updates concurrently, dropping a replayed update id, and telling waiters (tests, the
benchmark) when an update has been fully handled."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from telegram.ext import BaseUpdateProcessor

log = logging.getLogger("bounty.telegram")

DONE = "done"
DUPLICATE = "duplicate"


class UpdateTracker(BaseUpdateProcessor):
    """PTB's update processor with a memory of recent update ids.

    Telegram may deliver an update twice (a webhook retried, polling restarted before the offset was
    confirmed). The second copy is dropped before any handler sees it; core's confirmations are
    idempotent too, so a copy that slips past this memory (after a restart) still charges once.

    Webhook replicas behind one URL each see only some copies, so ``claim`` (set in webhook mode)
    asks the database whether this replica is the first to take the update id; if the database
    cannot say, the update is handled (answered twice at worst, charged once).
    """

    def __init__(
        self,
        max_concurrent_updates: int = 256,
        remember: int = 50_000,
        claim: Callable[[int], Awaitable[bool]] | None = None,
    ) -> None:
        super().__init__(max_concurrent_updates)
        self.claim = claim
        self._remember = remember
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._finished: OrderedDict[int, list[str]] = OrderedDict()
        self._pulse = asyncio.Event()

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Nothing to free."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        update_id = getattr(update, "update_id", None)
        if isinstance(update_id, int):
            if update_id in self._seen:
                close = getattr(coroutine, "close", None)
                if close is not None:
                    close()  # never started: nothing ran
                log.info("dropped a replayed update %s", update_id)
                self._record(update_id, DUPLICATE)
                return
            self._seen[update_id] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            if self.claim is not None and not await self._claimed(update_id):
                close = getattr(coroutine, "close", None)
                if close is not None:
                    close()
                log.info("update %s was taken by another replica; dropped", update_id)
                self._record(update_id, DUPLICATE)
                return
        try:
            await coroutine
        finally:
            if isinstance(update_id, int):
                self._record(update_id, DONE)

    async def _claimed(self, update_id: int) -> bool:
        assert self.claim is not None
        try:
            return await self.claim(update_id)
        except Exception as exc:
            log.warning("could not record update %s as taken (%s); handling it", update_id, exc)
            return True

    def _record(self, update_id: int, status: str) -> None:
        self._finished.setdefault(update_id, []).append(status)
        if len(self._finished) > self._remember:
            self._finished.popitem(last=False)
        pulse, self._pulse = self._pulse, asyncio.Event()
        pulse.set()

    def outcomes(self, update_id: int) -> list[str]:
        """How each delivery of this update ended so far: ``done`` or ``duplicate``."""
        return list(self._finished.get(update_id, ()))

    async def wait(self, update_id: int, *, count: int = 1, timeout: float = 15.0) -> list[str]:
        """Wait until ``count`` deliveries of ``update_id`` have ended; their outcomes."""
        async with asyncio.timeout(timeout):
            while len(self._finished.get(update_id, ())) < count:
                await self._pulse.wait()
        return self.outcomes(update_id)
