"""Engine creation and the unit of work: a transaction that runs after-commit hooks only on commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def make_engine(url: str, *, pool_size: int = 20, max_overflow: int = 40) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # No pre-ping: it costs a round trip per transaction (three per attempt). Connections are
        # recycled instead; after a database restart the first use of a dead one fails once.
        pool_pre_ping=False,
        pool_recycle=1800,
        # The game's SQL is small and repeated: let asyncpg keep its prepared statements.
        connect_args={"server_settings": {"application_name": "bounty"}},
    )


class UnitOfWork:
    """``async with UnitOfWork(engine) as uow:`` — commits on success, rolls back on any error.

    Work that must not happen unless the data is durable (enqueueing jobs, talking to platforms)
    is registered with ``after_commit`` and runs only once the transaction has committed.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._hooks: list[Callable[[], Awaitable[Any] | Any]] = []
        self.conn: AsyncConnection

    async def __aenter__(self) -> UnitOfWork:
        self.conn = await self._engine.connect()
        await self.conn.begin()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                await self.conn.commit()
            else:
                await self.conn.rollback()
        finally:
            await self.conn.close()
        if exc_type is None:
            for hook in self._hooks:
                result = hook()
                if hasattr(result, "__await__"):
                    await result

    def after_commit(self, hook: Callable[[], Awaitable[Any] | Any]) -> None:
        self._hooks.append(hook)
