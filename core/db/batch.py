"""One statement for many concurrent callers (group execution).

Under load, many attempts write the same kind of row at the same moment: a quote, a rejection. Each
costs a round trip, a statement's execution start and a commit, on both sides of the socket. A
``Batch`` runs the first caller's item at once; callers that arrive while it runs queue up and go
together in the next statement, and so on until the queue is empty. A quiet game therefore waits for
nothing (a batch of one, as before), and a busy one pays one statement for many rows.

Only statements that bind nothing beyond their own rows go through a batch (each caller still waits
for its own row to be written). If a batch's statement fails, its items are retried one by one, so one
bad item fails alone; a caller that gives up (cancelled) leaves its item to be written or not, never
half written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import asyncpg

from core.db.engine import Database
from core.db.raw import Conn

T = TypeVar("T")
R = TypeVar("R")

MAX_ITEMS = 256


class Batch(Generic[T, R]):
    """``await batch.submit(item)`` -> that item's result from ``run(conn, items)``, which returns one
    result per item, in order, from a single statement."""

    def __init__(
        self,
        db: Database,
        run: Callable[[Conn, Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_items: int = MAX_ITEMS,
    ) -> None:
        # A connection of its own: through the shared pool a batch would queue behind the very
        # callers it serves (measured: re-confirmations under load tripled).
        self._db = Database(db.url, max_size=1)
        self._run = run
        self._max = max_items
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._busy = False  # a statement is running (the caller's own, or a flight's)
        self._flight: asyncio.Task[None] | None = None
        self.statements = (
            0  # how many statements ran, and for how many items (the bench reports them)
        )
        self.items = 0

    async def submit(self, item: T) -> R:
        if not self._busy:  # nobody is writing: this caller writes its own item at once
            self._busy = True
            try:
                results = await self._statement([item])
            finally:
                self._take_off()
            if len(results) != 1:
                raise RuntimeError(f"a batch of 1 returned {len(results)} results")
            return results[0]
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        return await future

    def _take_off(self) -> None:
        """After a statement: those who queued meanwhile go together in the next one."""
        if self._queue:
            self._flight = asyncio.get_running_loop().create_task(self._fly())
        else:
            self._busy = False

    async def _fly(self) -> None:
        try:
            while self._queue:
                batch = [(item, f) for item, f in self._queue[: self._max] if not f.done()]
                del self._queue[: self._max]
                if batch:
                    await self._execute(batch)
        except BaseException as exc:  # cancelled (shutdown) or a bug: nobody waits for ever
            failure = exc if isinstance(exc, Exception) else RuntimeError("the batch was cancelled")
            for _, future in self._queue:
                _fail(future, failure)
            self._queue.clear()
            raise
        finally:
            self._flight = None
            self._busy = False

    async def _execute(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = list(await self._statement(items))
            if len(results) != len(items):
                raise RuntimeError(f"a batch of {len(items)} returned {len(results)} results")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            if len(batch) == 1:
                _fail(batch[0][1], exc)
                return
            for one in batch:  # one bad item fails alone
                await self._execute([one])
            return
        except BaseException as exc:
            for _, future in batch:
                _fail(
                    future,
                    exc if isinstance(exc, Exception) else RuntimeError("the batch was cancelled"),
                )
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def aclose(self) -> None:
        await self._db.close()

    async def _statement(self, items: list[T]) -> Sequence[R]:
        async with self._db.autocommit() as conn:
            results = await self._run(conn, items)
        self.statements += 1
        self.items += len(items)
        return results


def arrays(items: Sequence[tuple], names: Sequence[str]) -> dict[str, list]:
    """Items (tuples, one field per name) as one list per field: the parameters of an ``unnest`` statement."""
    return {name: [item[i] for item in items] for i, name in enumerate(names)}


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class Batches:
    """A process's batches by name, each made on first use (they share nothing but the database)."""

    def __init__(self) -> None:
        self._made: dict[str, Batch] = {}

    def get(self, name: str, make: Callable[[], Batch]) -> Batch:
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = make()
        return made

    def __getitem__(self, name: str) -> Batch:
        return self._made[name]

    def items(self):
        return self._made.items()

    async def aclose(self) -> None:
        for made in self._made.values():
            await made.aclose()
