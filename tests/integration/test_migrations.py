"""Migrations are the schema: they go up and down cleanly and match the models exactly."""

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from core.db.migrate import alembic_config
from core.db.models import Base


async def _schema_diff(url: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
    finally:
        await engine.dispose()


async def test_models_match_migrations_and_downgrade_works(pg_url):
    # a separate database, so the shared test database is untouched
    admin = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql("DROP DATABASE IF EXISTS bounty_migrations")
        await conn.exec_driver_sql("CREATE DATABASE bounty_migrations")
    await admin.dispose()
    url = pg_url.replace("/bounty?", "/bounty_migrations?")
    cfg = alembic_config(url)
    await asyncio.to_thread(command.upgrade, cfg, "head")
    assert await _schema_diff(url) == []
    await asyncio.to_thread(command.downgrade, cfg, "base")
    await asyncio.to_thread(command.upgrade, cfg, "head")
    assert await _schema_diff(url) == []
