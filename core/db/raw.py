"""The game's connection, ``Conn``: plain SQL strings with ``:name`` parameters, run by asyncpg.

The services speak plain SQL. Running it through asyncpg without SQLAlchemy's execution layer roughly
halves the Python cost per statement on the attempt path (measured: SQLAlchemy's greenlet hop and
result wrapping were most of the CPU of an attempt). SQLAlchemy stays for the schema (Alembic) and
for tests that inspect the database independently; the game's code never receives a SQLAlchemy
connection, and never sees asyncpg: its errors arrive as this module's (``UniqueViolation``,
``Refused``), and a nested atomic step is ``conn.transaction()``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import asyncpg

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Row(asyncpg.Record):
    """A result row: by index, by ``row["col"]``, and by ``row.col`` like SQLAlchemy's rows."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(self.items())


@lru_cache(maxsize=1024)
def compile_named(sql: str) -> tuple[str, tuple[str, ...]]:
    """``... WHERE id = :id AND x = :id`` -> ``... WHERE id = $1 AND x = $1``, ("id",)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAM.sub(number, sql), tuple(names)


class Result:
    __slots__ = ("_rows",)

    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows

    def all(self) -> list[Row]:
        return self._rows

    def first(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def one(self) -> Row:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        if not self._rows:
            return None
        return self.one()[0]

    def scalars(self) -> Scalars:
        return Scalars([r[0] for r in self._rows])


class Scalars:
    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def all(self) -> list[Any]:
        return self._values

    def first(self) -> Any:
        return self._values[0] if self._values else None


class DatabaseError(Exception):
    """A statement failed in the database (the driver's error is the cause)."""


class UniqueViolation(DatabaseError):
    """A unique constraint refused a row: someone else made it first."""

    def __init__(self, constraint: str | None) -> None:
        super().__init__(f"unique constraint {constraint} violated")
        self.constraint = constraint


class Refused(DatabaseError):
    """A game function in the database refused (an SQLSTATE of the game's own class ``BB``); the
    statement changed nothing. ``code`` names the refusal, ``detail`` carries its values."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code} {detail}".strip())
        self.code = code
        self.detail = detail


def translated_error(exc: asyncpg.PostgresError) -> DatabaseError | None:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(getattr(exc, "constraint_name", None))
    state = str(getattr(exc, "sqlstate", "") or "")
    if state.startswith("BB"):
        return Refused(state, str(getattr(exc, "detail", "") or ""))
    return None


class Conn:
    """The connection every service receives: ``await conn.execute("... :name ...", {"name": v})``.

    Inside a unit of work (``app.uow()``) its statements share one transaction and ``after_commit``
    hooks wait for the commit; from ``db.autocommit()`` each statement commits on its own."""

    __slots__ = ("_raw", "_hooks")

    def __init__(self, raw: asyncpg.Connection, hooks: list | None = None) -> None:
        self._raw = raw
        self._hooks = hooks

    def after_commit(self, hook) -> None:
        """Run ``hook`` once this connection's unit of work has committed (never on rollback); on an
        autocommit connection what was done has committed already, so it runs now (sync hooks only)."""
        if self._hooks is not None:
            self._hooks.append(hook)
        elif hook() is not None:
            raise TypeError("an autocommit connection runs only synchronous after-commit hooks")

    async def execute(self, statement: str, params: dict[str, Any] | None = None) -> Result:
        """Run one statement; ``statement`` is SQL text (or anything with a ``.text``, as tests pass)."""
        sql, names = compile_named(getattr(statement, "text", statement))
        args = [params[n] for n in names] if names else []
        try:
            return Result(await self._raw.fetch(sql, *args))
        except asyncpg.PostgresError as exc:
            translated = translated_error(exc)
            if translated is None:
                raise
            raise translated from exc

    def transaction(self):
        """An atomic step: a transaction on an autocommit connection, a savepoint inside a unit of
        work. ``async with conn.transaction(): ...`` commits (or releases) on success, rolls back on error."""
        return self._raw.transaction()


# How many candidates pgvector's HNSW scan keeps (hnsw.ef_search) on every pooled connection: the
# memory's searches run at this without a SET LOCAL round trip of their own; one that needs more
# sets it for its transaction (core.memory.store). 40 measured recall@5 of 0.99-1.0 against the
# exact search on the bench's 100,000 stored attacks, at half the search's CPU of 80.
HNSW_EF_SEARCH = 40


async def _init_connection(con: asyncpg.Connection) -> None:
    # A dotted name is accepted before pgvector's library is loaded; it applies once it is.
    await con.execute(f"SET hnsw.ef_search = {HNSW_EF_SEARCH}")
    for typ in ("json", "jsonb"):
        await con.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def keep_session(con: asyncpg.Connection) -> None:
    """The pool's reset on release. asyncpg's default sends a reset query (RESET ALL, UNLISTEN *,
    unlock advisory locks, CLOSE ALL): a round trip on every release. The game leaves no session
    state behind (its settings and advisory locks are transaction-local, but for the constant ones
    every connection gets at its start; listeners are removed by their owners), and asyncpg still
    rolls back a transaction left open, so nothing needs resetting."""


async def create_pool(url: str, *, max_size: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=1,
        max_size=max_size,
        init=_init_connection,
        reset=keep_session,
        record_class=Row,
        statement_cache_size=512,
        max_inactive_connection_lifetime=600,
        server_settings={"application_name": "bounty"},
    )
