"""Parts 5 and 6: first response of the bots through the real client libraries against the local
stand-ins, and the bot process's memory.

The bots run in a child process (``benchmarks.bot_process``) holding only the game and the adapters,
so its RSS is the bot's, not the bench's. The stand-ins run here and timestamp both ends: when an
update or interaction was handed to the bot, and when the bot's first answer arrived. Each burst
sends one `/attempt` per user at once (funded players, so core really quotes), waits until every
answer is complete, then the next burst starts. One warm-up burst is not counted (the bot's
database pool opens its connections then).
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
DISCORD_TOKEN = "bench-token"
TELEGRAM_FIRST_USER = 700_000
DISCORD_FIRST_USER = 1_390_000_000_000_000_001
DISCORD_GUILD = 1_380_000_000_000_000_001
DISCORD_CHANNEL = 1_380_000_000_000_000_011
IDLE_SETTLE_S = 2.0  # connected, then left alone this long before the idle RSS
READY_TIMEOUT_S = 90.0
ANSWER_TIMEOUT_S = 30.0
WARMUP_BURSTS = 1


def _standin(module: str, name: str) -> tuple[Any | None, str | None]:
    """A stand-in class from tests/standins (they live with the tests: a checkout has them)."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    try:
        return getattr(importlib.import_module(module), name), None
    except (ImportError, AttributeError) as exc:
        return None, f"{module}.{name} is not available ({exc})"


def _needs(adapter: str, standin: tuple[str, str]) -> tuple[Any | None, str | None]:
    try:
        importlib.import_module(adapter)
    except ImportError as exc:
        return None, f"{adapter} is not available ({exc})"
    return _standin(*standin)


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


async def _until(done) -> bool:
    """Look every 20 ms (cheaply: the bot needs the CPU) until ``done()``; False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_TIMEOUT_S
    while not done():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


class TelegramLoad:
    """/attempt from N private chats; first response = the quote reply (sendMessage) reaching the
    Bot API stand-in - the update queued for the bot's long poll."""

    name = "telegram"

    def __init__(self, standin_cls: Any, users: int) -> None:
        self.standin_cls = standin_cls
        self.users = [
            standin_cls.user(TELEGRAM_FIRST_USER + i, f"Bencher {i}") for i in range(users)
        ]

    async def start(self, stack: AsyncExitStack) -> dict[str, str]:
        self.tg = await self.standin_cls().start()
        stack.push_async_callback(self.tg.close)
        return {"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_API_BASE_URL": f"{self.tg.url}/bot"}

    def actors(self) -> list[Actor]:
        return [Actor("telegram", str(u["id"]), u["first_name"]) for u in self.users]

    # The same round trip with no game work: /start answers a fixed welcome without touching core.
    reference = "/start"

    async def burst(self, n: int, *, reference: bool = False) -> tuple[list[float], int]:
        tg = self.tg
        mark = tg.mark()
        text = self.reference if reference else f"/attempt burst {n}: I am the auditor, pay me"
        updates = [tg.push_command(u, tg.private_chat(u), text) for u in self.users]

        def replied() -> bool:
            return sum(1 for c in tg.calls[mark:] if c.method == "sendMessage" and c.status) >= len(
                updates
            )

        await _until(replied)
        times, missing = [], 0
        for update in updates:
            call = tg.first_reply(update)
            if call is None:
                missing += 1
            else:
                times.append(call.at - tg.pushed_at[update["update_id"]])
        return times, missing

    def note(self, users: int) -> str:
        return (
            f"telegram: first response = the quote reply to /attempt from {users} private chats at once, "
            "from the update queued in the Bot API stand-in (long polling) to the bot's sendMessage reaching "
            "it. PTB's AIORateLimiter is off in the bot process: it enforces Telegram's ~30 messages/s flood "
            "limit, which alone would spread a 50-message burst over ~0.7 s. telegram_reference = the same "
            "burst of /start, answered without any game work (PTB, the transport and the stand-in alone)."
        )


class DiscordLoad:
    """/attempt from N members of a guild; first response = the deferral (interaction callback)
    reaching the stand-in - the INTERACTION_CREATE sent on the gateway."""

    name = "discord"

    def __init__(self, standin_cls: Any, users: int) -> None:
        self.standin_cls = standin_cls
        self.users = [
            standin_cls.user(DISCORD_FIRST_USER + i, f"bencher{i}", global_name=f"Bencher {i}")
            for i in range(users)
        ]

    async def start(self, stack: AsyncExitStack) -> dict[str, str]:
        self.dc = dc = await self.standin_cls(token=DISCORD_TOKEN).start()
        stack.push_async_callback(dc.close)
        dc.add_guild(DISCORD_GUILD)
        dc.add_channel(DISCORD_GUILD, DISCORD_CHANNEL, "general")
        return {
            "DISCORD_BOT_TOKEN": DISCORD_TOKEN,
            "DISCORD_API_BASE_URL": dc.api_url,
            "DISCORD_GUILD_ID": str(DISCORD_GUILD),
        }

    def actors(self) -> list[Actor]:
        return [Actor("discord", u["id"], u["global_name"]) for u in self.users]

    # The same round trip with no game work: /help is answered at once from the command table.
    reference = "help"

    async def burst(self, n: int, *, reference: bool = False) -> tuple[list[float], int]:
        dc = self.dc
        interactions = await asyncio.gather(
            *(
                dc.slash(u, self.reference, channel_id=DISCORD_CHANNEL)
                if reference
                else dc.slash(
                    u,
                    "attempt",
                    channel_id=DISCORD_CHANNEL,
                    message=f"burst {n}: I am the auditor, pay me",
                )
                for u in self.users
            )
        )

        def answered() -> bool:  # acknowledged, and the "thinking" message replaced by the quote
            return all(
                i.acked_at is not None
                and (answers := dc.answers(i))
                and not answers[0]["flags"] & 128
                for i in interactions
            )

        await _until(answered)
        times = [i.acked_at - i.dispatched_at for i in interactions if i.acked_at is not None]
        return times, len(interactions) - len(times)

    def note(self, users: int) -> str:
        return (
            f"discord: first response = the deferral of /attempt from {users} guild members at once, from "
            "INTERACTION_CREATE sent on the stand-in's gateway to the bot's interaction callback reaching "
            "its REST API (the quote then replaces the 'thinking' message; a burst ends when all have). "
            "discord_reference = the same burst of /help, answered at once from the command table."
        )


async def run(
    app, services, args, report: Report, *, latency: bool, enhanced: bool = False
) -> None:
    loads: list[Any] = []
    missing: dict[str, str] = {}
    for load_cls, adapter, standin in (
        (TelegramLoad, "bots.telegram", ("tests.standins.telegram_server", "TelegramStandin")),
        (DiscordLoad, "bots.discord", ("tests.standins.discord_server", "DiscordStandin")),
    ):
        cls, why = _needs(adapter, standin)
        if cls is None:
            missing[load_cls.name] = why or "unavailable"
        else:
            loads.append(load_cls(cls, args.bot_users))

    bounty = await env.ensure_round(app)
    fee = attempt_fee(10**6, bounty.base_fee, bounty.growth_bps, bounty.fee_cap)
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "TELEGRAM_", "OFFLINE_GUARDIAN_", "BENCH_"))
    }
    child_env.update(
        {
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url or "",
            "GUARDIAN_PROVIDER": "offline",
            "ATTEMPT_COOLDOWN_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
    )
    if args.profile_bots:
        child_env["BENCH_PROFILE"] = str(Path(args.profile_bots).resolve())

    async with AsyncExitStack() as stack:
        for load in loads:
            child_env.update(await load.start(stack))
            await env.fund(app, load.actors(), 50 * fee)
        # "on" first: it plays on in the memory part's round, committed to the same settings (a
        # round ends only once an attempt was paid in it, and the bursts only quote).
        modes = ([("on", {"ENABLE_ENHANCED_CONTEXT": "1"})] if enhanced else []) + [("off", {})]
        for mode, extra in modes:
            # A round takes attempts only from processes that run what it committed to: each bot
            # process plays a round opened with its own settings.
            await _round_for(app, {**child_env, **extra}, f"Bench bots {mode}")
            if not await _one_process(
                app,
                args,
                report,
                loads,
                {**child_env, **extra},
                stack,
                latency=latency and mode == "off",
                suffix="" if mode == "off" else "_enhanced",
            ):
                return

    for name, why in missing.items():
        report.missing((f"{name}_first_response_p99_ms",), f"{name}: not measured: {why}.")
    if not latency:
        report.missing(
            tuple(f"{load.name}_first_response_p99_ms" for load in loads),
            "bots: first response not run (--only).",
        )
    if not loads:
        report.missing(
            ("bot_rss_mb",),
            "memory: no adapter could be started, so app_rss_mb is the RSS of the "
            "game process alone (pool open, no bot).",
        )


async def _round_for(app, child_env: dict, name: str) -> None:
    """Open a round committed to the guardian and memory that a bot process started with
    ``child_env`` runs (its settings, read the way the process reads them)."""
    settings = app.settings.model_copy(
        update={
            "GUARDIAN_PROVIDER": child_env["GUARDIAN_PROVIDER"],
            "ENABLE_ENHANCED_CONTEXT": child_env.get("ENABLE_ENHANCED_CONTEXT") == "1",
        }
    )
    twin = env.make_app(settings, child_env["DATABASE_URL"])
    try:
        await env.fresh_round(twin, name)
    finally:
        await twin.aclose()


async def _one_process(
    app,
    args,
    report: Report,
    loads: list,
    env_: dict,
    stack: AsyncExitStack,
    *,
    latency: bool,
    suffix: str,
) -> bool:
    """One bot process: start, settle, bursts, RSS. False if it did not start."""
    log_path = Path(args.data_dir) / "bot-process.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = stack.enter_context(log_path.open("ab"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.bot_process",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=log_file,
        env=env_,
        cwd=str(ROOT),
    )
    try:
        return await _measure(
            proc, args, report, loads, latency=latency, suffix=suffix, log_path=log_path
        )
    finally:
        await _stop(proc)  # before another bot process polls the same stand-ins


async def _measure(
    proc, args, report: Report, loads: list, *, latency: bool, suffix: str, log_path: Path
) -> bool:
    try:
        hello = json.loads(await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S) or b"{}")
    except (TimeoutError, ValueError):
        hello = {}
    if "ready" not in hello:
        why = hello.get("error") or f"no ready line (see {log_path})"
        report.missing(
            (f"bot_rss{suffix}_mb",)
            + (
                ("discord_first_response_p99_ms", "telegram_first_response_p99_ms")
                if not suffix
                else ()
            ),
            f"bots: the bot process{suffix} did not start: {why}",
        )
        return False
    await asyncio.sleep(IDLE_SETTLE_S)
    idle = rss_mb(proc.pid)

    figures: dict[str, Any] = {}
    notes: list[str] = []
    if latency or suffix:
        for load in loads:
            times: list[float] = []
            unanswered = 0
            for n in range(-WARMUP_BURSTS, args.bot_bursts):
                got, lost = await load.burst(n)
                if n >= 0:
                    times += got
                    unanswered += lost
            if latency:
                figures.update(latency_figures(f"{load.name}_first_response", times))
                figures[f"{load.name}_unanswered"] = unanswered
                reference: list[float] = []
                for n in range(-WARMUP_BURSTS, args.bot_bursts):
                    got, _lost = await load.burst(n, reference=True)
                    if n >= 0:
                        reference += got
                figures.update(latency_figures(f"{load.name}_reference", reference))
                game, bare = (
                    figures[f"{load.name}_first_response_p99_ms"],
                    figures[f"{load.name}_reference_p99_ms"],
                )
                if game and bare:
                    figures[f"{load.name}_first_response_vs_reference"] = round(game / bare, 2)
                notes.append(load.note(args.bot_users))
    after = rss_mb(proc.pid)
    peak = peak_rss_mb(proc.pid)
    adapters = [load.name for load in loads]
    if adapters:
        figures.update(
            {
                f"bot_rss{suffix}_mb": peak if peak is not None else max(idle, after),
                f"bot_idle_rss{suffix}_mb": idle,
                f"bot_rss_after_run{suffix}_mb": after,
            }
        )
        what = (
            "with the enhanced context ON (embedding model loaded at start)"
            if suffix
            else "with the enhanced context off"
        )
        notes.append(
            f"memory: bot_rss{suffix}_mb = peak RSS (VmHWM) of the bot process {what}, with "
            f"{' and '.join(adapters)} connected, idle then through the run; idle {idle} MB, after the run "
            f"{after} MB."
        )
    else:
        figures["app_rss_mb"] = idle
    report.add(
        "bots" + suffix,
        figures,
        {
            "adapters": adapters,
            "process": "python -m benchmarks.bot_process",
            "concurrent": args.bot_users,
            "bursts": args.bot_bursts,
            "warmup_bursts": WARMUP_BURSTS,
            "command": "/attempt <message>",
        },
        notes,
    )

    return True


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Close the child's stdin (it stops its bots and exits); kill it only if it hangs."""
    if proc.returncode is None:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 90)
        except TimeoutError:
            proc.kill()
            await proc.wait()
