"""Test set-up: one embedded PostgreSQL (pgvector) and Redis per run, the schema built by running
the Alembic migrations, and a clean database for every test that asks for ``app``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from core.app import App, bootstrap
from core.db.migrate import upgrade
from core.ports.embeddings import Embedder
from core.ports.guardian import Guardian
from core.settings import Settings, load_settings
from tests.helpers import PASSPHRASE
from tests.offline import refuse_the_network
from tests.standins.local import running
from tests.standins.solana_rpc import SolanaStandIn

refuse_the_network()

if not os.environ.get("XDG_RUNTIME_DIR"):  # pgserver's lock files want a private runtime dir
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="bounty-run-")


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bounty-test-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def pg_url(data_dir: Path) -> Iterator[str]:
    """A migrated database: TEST_DATABASE_URL if given, else an embedded PostgreSQL."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        upgrade(given)
        yield given
        return
    from core.infra.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(data_dir)
    url = pg.start()
    upgrade(url)
    yield url
    pg.stop()


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    from core.infra.embedded import EmbeddedRedis

    r = EmbeddedRedis(data_dir)
    url = r.start()
    yield url
    r.stop()


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: offline guardian with a known passphrase, no cooldown, no .env file."""
    base: dict[str, object] = {
        "GUARDIAN_PROVIDER": "offline",
        "OFFLINE_GUARDIAN_PASSPHRASE": PASSPHRASE,
        "ATTEMPT_COOLDOWN_SECONDS": 0,
        "_env_file": None,
    }
    base.update(overrides)
    return load_settings(**base)


async def reset_database(app: App) -> None:
    """Empty every table the migrations made (whatever areas added them) and drop round sequences."""
    async with app.engine.begin() as conn:
        tables = (
            (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        seqs = (
            (
                await conn.execute(
                    text(
                        "SELECT sequencename FROM pg_sequences WHERE sequencename LIKE 'bounty_attempt_numbers_%'"
                    )
                )
            )
            .scalars()
            .all()
        )
        for seq in seqs:
            await conn.execute(text(f"DROP SEQUENCE {seq}"))
    app.forget_cached()


@pytest.fixture
async def app_factory(pg_url: str):
    """Build Apps on the clean test database; ``await app_factory(guardian=..., **settings)``."""
    made: list[App] = []

    async def factory(
        *,
        guardian: Guardian | None = None,
        embedder: Embedder | None = None,
        reset: bool = True,
        **overrides: object,
    ) -> App:
        app = bootstrap(
            make_settings(**overrides), pg_url, guardian=guardian, embedder=embedder, pool_size=10
        )
        if reset and not made:
            await reset_database(app)
        made.append(app)
        return app

    yield factory
    for made_app in made:
        await made_app.aclose()  # closing twice is harmless


@pytest.fixture
async def app(app_factory) -> AsyncIterator[App]:
    """A fresh game on a clean, migrated database with the offline guardian."""
    a = await app_factory()
    yield a
    await a.aclose()


@pytest.fixture
async def chain() -> AsyncIterator[SolanaStandIn]:
    """The Solana JSON-RPC stand-in on 127.0.0.1 (the token's chain), stopped and leak-checked after the test."""
    async with running(SolanaStandIn(), "stop") as standin:
        yield standin
