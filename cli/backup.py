"""`bounty backup <file>` and `bounty restore <file>`: the whole database (the embedded one, or
DATABASE_URL) in pg_dump's custom format, and back into an empty database.

pg_dump reads one snapshot, so the copy is consistent while the game runs. Both use the PostgreSQL
16 client programs that ship inside the pgserver package (the embedded server's own), so nothing
else needs installing; a server newer than 16 needs its own pg_dump (docs/operators.md). The
password never appears on a command line: it goes to the programs as PGPASSWORD.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cli.runtime import exit_on_sigterm, masked, settings_or_exit, start_services
from core.logs import redact


def client_program(name: str) -> Path:
    """pg_dump / pg_restore from the pgserver package (the embedded server's binaries)."""
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin" / name


def libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """The game's URL as a libpq connection URI without its password, and the environment that
    carries the password instead."""
    url = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    parts = urlsplit(url)
    env = {}
    netloc = parts.netloc
    if parts.password is not None:
        from urllib.parse import unquote

        env["PGPASSWORD"] = unquote(parts.password)
        user = parts.username or ""
        host = netloc.rpartition("@")[2]
        netloc = f"{user}@{host}" if user else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), env


def _run(program: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(client_program(program)), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )


def backup(file: Path) -> int:
    """Write the database to ``file`` (pg_dump custom format), consistent as of one moment."""
    settings = settings_or_exit()
    exit_on_sigterm()
    file = file.expanduser().resolve()
    partial = file.with_name(file.name + ".partial")
    with ExitStack() as stack:
        services = start_services(settings, stack, redis=False, migrate=False)
        target, env = libpq_target(services.database_url)
        done = _run(
            "pg_dump",
            ["--format=custom", "--compress=6", f"--file={partial}", f"--dbname={target}"],
            env,
        )
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            print(
                f"Backup of {masked(services.database_url)} failed:\n{redact(done.stderr).strip()}",
                file=sys.stderr,
            )
            return 1
        partial.replace(file)  # a file with the final name is always a whole backup
    size = file.stat().st_size
    print(f"backed up {masked(services.database_url)} to {file} ({size:,} bytes)")
    return 0


EMPTY_SQL = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
    "AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') ORDER BY c.relname"
)


async def _relations(database_url: str) -> list[str]:
    import asyncpg

    from core.db.raw import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        return [r[0] for r in await conn.fetch(EMPTY_SQL)]
    finally:
        await conn.close()


def restore(file: Path) -> int:
    """Load a backup into the database, which must be empty (a fresh one)."""
    settings = settings_or_exit()
    exit_on_sigterm()
    file = file.expanduser().resolve()
    if not file.is_file():
        print(f"No backup at {file}.", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        services = start_services(settings, stack, redis=False, migrate=False)
        where = masked(services.database_url)
        found = asyncio.run(_relations(services.database_url))
        if found:
            shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
            print(
                f"Refusing to restore: the database at {where} is not empty ({len(found)} tables "
                f"and sequences: {shown}). Restore into an empty database: a new BOUNTY_DATA_DIR "
                "for the embedded one, or a newly created database for DATABASE_URL. Nothing was "
                "changed.",
                file=sys.stderr,
            )
            return 2
        target, env = libpq_target(services.database_url)
        done = _run(
            "pg_restore",
            [
                "--exit-on-error",
                "--single-transaction",
                "--no-owner",
                "--no-privileges",
                f"--dbname={target}",
                str(file),
            ],
            env,
        )
        if done.returncode != 0:
            print(
                f"Restore into {where} failed, and changed nothing (one transaction):\n"
                f"{redact(done.stderr).strip()}",
                file=sys.stderr,
            )
            return 1
        tables = len(asyncio.run(_relations(services.database_url)))
    print(f"restored {file} into {where} ({tables} tables and sequences); run `bounty check` next")
    return 0
