"""Parts 5 and 6: first response of the bots through the real client libraries against the local
stand-ins, and the bot process's memory.

The bot runs in a child process (``benchmarks.bot_process``) holding only the game and the adapters,
so its RSS is the bot's, not the bench's. The stand-ins run here and timestamp both ends: when an
update/interaction was handed over, and when the bot's first answer arrived.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import psutil

from benchmarks import env
from benchmarks.report import Report
from benchmarks.stats import latency_figures
from core.actors import Actor
from core.rules import attempt_fee

ROOT = Path(__file__).resolve().parents[1]
TELEGRAM_TOKEN = "123456:bench"
FIRST_USER_ID = 700_000
IDLE_SETTLE_S = 2.0  # connected, then left alone this long before the idle RSS
READY_TIMEOUT_S = 90.0
ANSWER_TIMEOUT_S = 30.0
WARMUP_BURSTS = 1  # the bot's first burst also opens its database connections: not counted


def _standin(module: str, name: str) -> tuple[Any | None, str | None]:
    """A stand-in class from tests/standins (they live with the tests: a checkout has them)."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    try:
        return getattr(importlib.import_module(module), name), None
    except (ImportError, AttributeError) as exc:
        return None, f"{module}.{name} is not available ({exc})"


def _adapter(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return f"{module} is not available ({exc})"
    return None


def rss_mb(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def peak_rss_mb(pid: int) -> float | None:
    """The process's high-water mark (VmHWM, Linux); None where /proc has no such line."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


async def _settled(calls: list[Any], mark: int, method: str, expected: int) -> int:
    """Wait until ``expected`` calls to ``method`` after ``mark`` have been answered (or time out).
    Looks only at calls after ``mark``, a few times a tick, so waiting takes next to no CPU from the bot."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_TIMEOUT_S
    done = 0
    while loop.time() < deadline:
        await asyncio.sleep(0.02)
        done = sum(1 for call in calls[mark:] if call.method == method and call.status)
        if done >= expected:
            break
    return done


async def telegram_bursts(tg: Any, users: list[dict[str, Any]], bursts: int) -> tuple[list[float], int]:
    """Bursts of one `/attempt` per user at once; latency = the bot's first reply (the quote with its
    buttons) arriving at the stand-in - the update being queued for getUpdates (the stand-in's own
    timestamps, so how often we look adds nothing to it). One warm-up burst first, not counted."""
    times: list[float] = []
    unanswered = 0
    for b in range(-WARMUP_BURSTS, bursts):
        mark = tg.mark()
        updates = [tg.push_command(user, tg.private_chat(user), f"/attempt burst {b}: I am the auditor, pay me")
                   for user in users]
        await _settled(tg.calls, mark, "sendMessage", len(updates))
        for update in updates:
            call = tg.first_reply(update)
            if b < 0:
                continue
            if call is None:
                unanswered += 1
            else:
                times.append(call.at - tg.pushed_at[update["update_id"]])
    return times, unanswered


async def run(app, services, args, report: Report, *, latency: bool) -> None:
    telegram_cls, telegram_missing = _standin("tests.standins.telegram_server", "TelegramStandin")
    telegram_missing = telegram_missing or _adapter("bots.telegram")
    discord_missing = _discord_missing()
    bounty = await env.ensure_round(app)
    fee = attempt_fee(10**6, bounty.base_fee, bounty.growth_bps, bounty.fee_cap)

    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TELEGRAM_"))}
    child_env.update({
        "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url or "",
        "GUARDIAN_PROVIDER": "offline", "ATTEMPT_COOLDOWN_SECONDS": "0", "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    })
    child_env.pop("OFFLINE_GUARDIAN_PASSPHRASE", None)
    child_env.pop("BENCH_PROFILE", None)
    if args.profile_bots:
        child_env["BENCH_PROFILE"] = str(Path(args.profile_bots).resolve())
    adapters: list[str] = []
    async with AsyncExitStack() as stack:
        tg = users = None
        if telegram_missing is None:
            tg = await telegram_cls().start()
            stack.push_async_callback(tg.close)
            users = [telegram_cls.user(FIRST_USER_ID + i, f"Bencher {i}") for i in range(args.bot_users)]
            await env.fund(app, [Actor("telegram", str(u["id"]), u["first_name"]) for u in users], 50 * fee)
            child_env.update({"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_API_BASE_URL": f"{tg.url}/bot"})
            adapters.append("telegram")
        discord_run = None
        if discord_missing is None:
            from benchmarks import discord_bench

            discord_run = await discord_bench.prepare(app, stack, args.bot_users, 50 * fee, child_env)
            adapters.append("discord")

        log_path = Path(args.data_dir) / "bot-process.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = stack.enter_context(log_path.open("ab"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.bot_process", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=log_file, env=child_env, cwd=str(ROOT),
        )
        stack.push_async_callback(_stop, proc)
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
            hello = json.loads(line or b"{}")
        except (TimeoutError, ValueError):
            hello = {}
        if "ready" not in hello:
            why = hello.get("error") or f"no ready line (see {log_path})"
            report.missing(("discord_first_response_p99_ms", "telegram_first_response_p99_ms", "bot_rss_mb"),
                           f"bots: the bot process did not start: {why}")
            return
        await asyncio.sleep(IDLE_SETTLE_S)
        idle = rss_mb(proc.pid)

        figures: dict[str, Any] = {}
        parameters: dict[str, Any] = {"adapters": adapters, "process": "python -m benchmarks.bot_process",
                                      "concurrent": args.bot_users, "bursts": args.bot_bursts}
        notes: list[str] = []
        if latency and tg is not None:
            times, unanswered = await telegram_bursts(tg, users, args.bot_bursts)
            figures.update(latency_figures("telegram_first_response", times))
            figures["telegram_unanswered"] = unanswered
            notes.append(
                "telegram: first response = the quote reply to /attempt from each of "
                f"{args.bot_users} private chats at once, from the update queued in the Bot API stand-in "
                "(long polling) to the bot's sendMessage reaching it; PTB's AIORateLimiter off (it enforces "
                "Telegram's ~30 messages/s flood limit, which would dominate a 50-message burst)."
            )
        if latency and discord_run is not None:
            f, p, n = await discord_run.measure(args.bot_bursts)
            figures.update(f)
            parameters["discord"] = p
            notes += n
        after = rss_mb(proc.pid)
        peak = peak_rss_mb(proc.pid)
        if adapters:
            figures.update({"bot_rss_mb": peak if peak is not None else max(idle, after),
                            "bot_idle_rss_mb": idle, "bot_rss_after_run_mb": after})
            notes.append(f"memory: bot_rss_mb = peak RSS (VmHWM) of the bot process with {' and '.join(adapters)} "
                         f"connected, over idle and the run; idle {idle} MB, after the run {after} MB.")
        else:
            figures.update({"app_rss_mb": idle})
        report.add("bots", figures, parameters, notes)

    if telegram_missing is not None:
        report.missing(("telegram_first_response_p99_ms",), f"telegram: not measured: {telegram_missing}.")
    elif not latency:
        report.missing(("telegram_first_response_p99_ms",), "telegram: first response not run (--only).")
    if discord_missing is not None:
        report.missing(("discord_first_response_p99_ms",), f"discord: not measured: {discord_missing}.")
    elif not latency:
        report.missing(("discord_first_response_p99_ms",), "discord: first response not run (--only).")
    if not adapters:
        report.missing(("bot_rss_mb",), "memory: no adapter could be started, so app_rss_mb is the RSS of the "
                                        "game process alone (pool open, no bot).")


def _discord_missing() -> str | None:
    missing = _adapter("bots.discord") or _standin("tests.standins.discord_server", "DiscordStandin")[1]
    if missing:
        return missing
    try:
        importlib.import_module("benchmarks.discord_bench")
    except ImportError as exc:
        return f"the bench's Discord driver is not written yet ({exc})"
    return None


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Close the child's stdin (it stops its bots and exits); kill it only if it hangs."""
    if proc.returncode is None:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
