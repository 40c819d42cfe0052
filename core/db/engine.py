"""Engines and the unit of work: a transaction that runs after-commit hooks only on commit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.db.raw import Conn, create_pool, translated_error


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 5) -> AsyncEngine:
    """SQLAlchemy, for migrations and for tests that inspect the database independently."""
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True
    )


class Database:
    """The game's asyncpg pool, created on first use inside the running event loop."""

    def __init__(self, url: str, *, max_size: int = 20) -> None:
        self.url = url
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await create_pool(self.url, max_size=self.max_size)
        return self._pool

    @asynccontextmanager
    async def autocommit(self):
        """A pooled connection without an explicit transaction: each statement commits on its own.
        For a path whose statements need no atomicity between them (a read, then a write that
        re-checks what it relies on), which saves the BEGIN and COMMIT round trips."""
        pool = await self.pool()
        raw = await pool.acquire()
        try:
            yield Conn(raw, None)
        finally:
            await pool.release(raw)

    @asynccontextmanager
    async def transaction(self):
        """A short transaction of its own: ``async with db.transaction() as conn``."""
        async with UnitOfWork(self) as uow:
            yield uow.conn

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class UnitOfWork:
    """``async with app.uow() as uow:`` — commits on success, rolls back on any error.

    Work that must not happen unless the data is durable (enqueueing jobs, talking to platforms)
    is registered with ``after_commit`` and runs only once the transaction has committed.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._hooks: list[Callable[[], Awaitable[Any] | Any]] = []
        self.conn: Conn

    async def __aenter__(self) -> UnitOfWork:
        pool = await self._db.pool()
        self._raw = await pool.acquire()
        try:
            self._tx = self._raw.transaction()
            await self._tx.start()
        except BaseException:
            await pool.release(self._raw)
            raise
        self.conn = Conn(self._raw, self._hooks)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        pool = await self._db.pool()
        try:
            if exc_type is None:
                try:
                    await self._tx.commit()
                except (
                    asyncpg.PostgresError
                ) as exc:  # a deferred constraint, a serialization failure
                    translated = translated_error(exc)
                    if translated is None:
                        raise
                    raise translated from exc
            else:
                await self._tx.rollback()
        finally:
            await pool.release(self._raw)
        if exc_type is None:
            for hook in self._hooks:
                result = hook()
                if hasattr(result, "__await__"):
                    await result

    def after_commit(self, hook: Callable[[], Awaitable[Any] | Any]) -> None:
        self._hooks.append(hook)
