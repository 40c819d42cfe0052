"""`bounty`: the one command-line entry point (SPEC §2)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from cli.runtime import exit_on_sigterm, settings_or_exit, start_services


def cmd_run(args: argparse.Namespace) -> int:
    """Start everything: database, queue, migrations, a Celery worker and beat, and the bots whose
    tokens are set; with no bot token, the console in this terminal."""
    from cli.serve import serve

    only = set(args.only.split(",")) if args.only else None
    return serve(console_only=False, workers=not args.no_workers, only=only)


def cmd_play(args: argparse.Namespace) -> int:
    """Play in this terminal (the console adapter), on the local database."""
    from cli.serve import serve

    return serve(console_only=True)


def _celery(argv: list[str], role: str) -> int:
    settings = settings_or_exit()
    from core import logs, metrics

    # The worker's own output is its log (a file under `bounty run`, the container's log in
    # production): redacted like every line, in LOG_FORMAT.
    logs.configure(settings, role=role, redirect_output=True)
    metrics.set_role(role)
    exit_on_sigterm()
    with ExitStack() as stack:
        if role == "worker" and settings.METRICS_LISTEN:
            # The pool's processes count in files the main process serves (one directory per worker).
            counts = tempfile.mkdtemp(prefix="bounty-metrics-")
            stack.callback(shutil.rmtree, counts, True)
            metrics.use_multiprocess(counts)
        services = start_services(settings, stack, redis=True)
        from workers.celery_app import celery_app

        celery_app.conf.broker_url = celery_app.conf.result_backend = services.redis_url
        # JSON logs are one object per line: no start-up banner between them.
        celery_app.start(["--quiet", *argv] if settings.LOG_FORMAT == "json" else argv)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker for the background jobs (and /metrics, /healthz, /readyz on METRICS_LISTEN)."""
    return _celery(["worker", "--loglevel=INFO", "--concurrency=2", *args.celery_args], "worker")


def cmd_beat(args: argparse.Namespace) -> int:
    """Run Celery beat, which schedules the periodic jobs (an hourly `bounty check` among them)."""
    settings = settings_or_exit()
    schedule = settings.BOUNTY_DATA_DIR / "celerybeat-schedule"
    settings.BOUNTY_DATA_DIR.mkdir(parents=True, exist_ok=True)
    return _celery(["beat", "--loglevel=INFO", f"--schedule={schedule}", *args.celery_args], "beat")


def cmd_migrate(args: argparse.Namespace) -> int:
    """Upgrade the database schema to the newest migration."""
    settings = settings_or_exit()
    with ExitStack() as stack:
        services = start_services(settings, stack, redis=False)
        print(
            f"database is at the newest schema ({'embedded' if services.embedded_database else 'DATABASE_URL'})"
        )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check the ledger's and the token's invariants on the live database; exit 1 if any is broken."""
    settings = settings_or_exit()
    with ExitStack() as stack:
        services = start_services(settings, stack, redis=False)
        from datetime import UTC, datetime

        from core.services.checks import check_and_record

        async def run():
            from core.db.engine import Database

            db = Database(services.database_url, max_size=1)
            try:
                async with db.autocommit() as conn:
                    return await check_and_record(conn, by="cli", now=datetime.now(UTC))
            finally:
                await db.close()

        results = asyncio.run(run())
    width = max(len(r.name) for r in results)
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'}  {r.name:<{width}}  {r.detail}")
    broken = [r for r in results if not r.ok]
    print(f"{len(results) - len(broken)}/{len(results)} checks passed")
    if args.json:
        print(json.dumps([r.__dict__ for r in results]))
    return 1 if broken else 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Write a consistent copy of the database (embedded or DATABASE_URL) to a file (pg_dump custom format)."""
    from cli.backup import backup

    return backup(Path(args.file))


def cmd_restore(args: argparse.Namespace) -> int:
    """Load a `bounty backup` file into an empty database (refuses one that holds anything)."""
    from cli.backup import restore

    return restore(Path(args.file))


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure speed and memory against the targets and write bench-results.json (see `bounty bench --help`)."""
    from benchmarks.run import main as bench_main

    return bench_main(args.bench_args)


def cmd_classify(args: argparse.Namespace) -> int:
    """Tag attack texts (one per line on stdin) with pattern categories, one JSON object per line."""
    from core.memory.patterns import classify

    lines = (line.rstrip("\n") for line in sys.stdin)
    texts = (text for text in lines if text.strip())
    if args.rules:
        for text in texts:
            print(
                json.dumps({"text": text, "categories": classify(text)}, ensure_ascii=False),
                flush=True,
            )
        return 0
    return asyncio.run(_classify_hybrid(texts))


async def _classify_hybrid(texts) -> int:
    """Rules and the nearest labelled prototypes (the local model), in batches, in input order."""
    from core.memory.embedders.local import shared_local_embedder
    from core.memory.prototypes import PrototypeDetector

    detector = PrototypeDetector(shared_local_embedder())
    batch: list[str] = []

    async def flush() -> None:
        for text, categories in zip(batch, await detector.classify_many(batch), strict=True):
            print(
                json.dumps({"text": text, "categories": categories}, ensure_ascii=False), flush=True
            )
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) >= 64:
            await flush()
    if batch:
        await flush()
    return 0


COMMANDS = {
    "run": cmd_run,
    "play": cmd_play,
    "worker": cmd_worker,
    "beat": cmd_beat,
    "migrate": cmd_migrate,
    "check": cmd_check,
    "backup": cmd_backup,
    "restore": cmd_restore,
    "bench": cmd_bench,
    "classify": cmd_classify,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bounty", description="Billions Bounty: the AI jailbreak challenge bots."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    for name, fn in COMMANDS.items():
        doc = " ".join((fn.__doc__ or "").split())
        p = sub.add_parser(name, help=doc, description=doc)
        p.set_defaults(func=fn)
        if name in ("worker", "beat"):
            p.add_argument("celery_args", nargs=argparse.REMAINDER, help="passed to celery")
        if name == "bench":
            p.add_argument("bench_args", nargs=argparse.REMAINDER, help="see `bounty bench --help`")
            p.add_help = False
        if name == "run":
            p.add_argument(
                "--no-workers",
                action="store_true",
                help="do not start a Celery worker and beat here (they run as their own services)",
            )
            p.add_argument("--only", metavar="discord,telegram", help="start only these bots")
        if name == "classify":
            p.add_argument(
                "--rules",
                action="store_true",
                help="rules only: starts at once, without the embedding model (less recall on unseen wordings)",
            )
        if name == "backup":
            p.add_argument("file", help="where to write the backup (a file ending in .dump, say)")
        if name == "restore":
            p.add_argument("file", help="a file written by `bounty backup`")
        if name == "check":
            p.add_argument("--json", action="store_true", help="also print the results as JSON")
    return parser


PASSTHROUGH = {"worker": "celery_args", "beat": "celery_args"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # the bench parses its own options (and its own --help), in order
        from benchmarks.run import main as bench_main

        rest = argv[1:]
        return bench_main(rest[1:] if rest[:1] == ["--"] else rest)
    args, extra = build_parser().parse_known_args(argv)
    if extra:
        if args.command not in PASSTHROUGH:
            build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(
            args, PASSTHROUGH[args.command], [*getattr(args, PASSTHROUGH[args.command]), *extra]
        )
    if args.command not in LONG_RUNNING:
        _one_shot_logging()
    return args.func(args) or 0


LONG_RUNNING = {"run", "play", "worker", "beat", "bench"}  # each sets up its own logging


def _one_shot_logging() -> None:
    """A one-shot command logs warnings and errors to stderr, redacted like every other process's."""
    from core import logs
    from core.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError:
        return  # the command itself says what is wrong
    logs.configure(
        settings, role="cli", level=max(logging.WARNING, logging.getLevelName(settings.LOG_LEVEL))
    )


if __name__ == "__main__":
    raise SystemExit(main())
