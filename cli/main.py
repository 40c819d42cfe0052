"""`bounty`: the one command-line entry point (SPEC §2)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import ExitStack

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


def _celery(argv: list[str]) -> int:
    settings = settings_or_exit()
    exit_on_sigterm()
    with ExitStack() as stack:
        services = start_services(settings, stack, redis=True)
        from workers.celery_app import celery_app

        celery_app.conf.broker_url = celery_app.conf.result_backend = services.redis_url
        celery_app.start(argv)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker for the background jobs."""
    return _celery(["worker", "--loglevel=INFO", "--concurrency=2", *args.celery_args])


def cmd_beat(args: argparse.Namespace) -> int:
    """Run Celery beat, which schedules the periodic jobs."""
    settings = settings_or_exit()
    schedule = settings.BOUNTY_DATA_DIR / "celerybeat-schedule"
    settings.BOUNTY_DATA_DIR.mkdir(parents=True, exist_ok=True)
    return _celery(["beat", "--loglevel=INFO", f"--schedule={schedule}", *args.celery_args])


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
        from core.ledger import check_invariants
        from core.services.promises import check_money_promises
        from core.services.token.checks import check_token_invariants

        async def run():
            from core.db.engine import Database

            db = Database(services.database_url, max_size=1)
            try:
                async with db.autocommit() as conn:
                    return (
                        await check_invariants(conn)
                        + await check_money_promises(conn)
                        + await check_token_invariants(conn)
                    )
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
    return args.func(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
