"""The bot process the bench measures: the game plus every adapter whose token is in the
environment, connected to the local stand-ins the bench runs. Prints one JSON line when connected,
stops cleanly when its stdin closes (or on SIGTERM).

Run by ``benchmarks.bots`` as ``python -m benchmarks.bot_process``; not a command for players.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys

from core.app import bootstrap
from core.guardian.offline import OfflineGuardian
from core.services.rounds import current_bounty
from core.settings import load_settings

log = logging.getLogger("bounty.bench")


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(1024):
        pass


async def main() -> int:
    settings = load_settings(_env_file=None)
    if settings.DATABASE_URL is None:
        print(json.dumps({"error": "DATABASE_URL is not set"}), flush=True)
        return 2
    app = bootstrap(settings, settings.DATABASE_URL, guardian=OfflineGuardian(None))
    started: list[tuple[str, object]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        if (
            app.memory is not None
        ):  # as `bounty run` does: the model is loaded before the bot answers
            await asyncio.to_thread(app.memory.warm_up)
        if settings.telegram_enabled:
            from bots.telegram import TelegramBot

            # Without PTB's AIORateLimiter: the bench measures the bot, not Telegram's flood limits.
            telegram = TelegramBot(app, rate_limit=False, poll_timeout=10)
            await telegram.start()
            started.append(("telegram", telegram))
        if settings.discord_enabled:
            from bots.discord import BountyDiscordBot

            discord_bot = BountyDiscordBot(app)
            await discord_bot.start()
            started.append(("discord", discord_bot))
        async with app.uow() as uow:  # the pool is open and the game answers, bots or not
            await current_bounty(uow.conn)
        print(json.dumps({"ready": [name for name, _ in started]}), flush=True)
        watcher = asyncio.create_task(_stdin_closed())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([watcher, stopper], return_when=asyncio.FIRST_COMPLETED)
        watcher.cancel()
        stopper.cancel()
    except Exception as exc:
        log.exception("the bot process failed")
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    finally:
        for _name, bot in reversed(started):
            try:
                await bot.stop()
            except Exception:
                log.exception("a bot did not stop cleanly")
        await app.aclose()
    return 0


def run() -> int:
    """BENCH_PROFILE=<path>: write cProfile stats of the whole bot process there (``--profile-bots``)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    profile_path = os.environ.get("BENCH_PROFILE")
    if not profile_path:
        return asyncio.run(main())
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(asyncio.run, main())
    finally:
        profiler.dump_stats(profile_path)


if __name__ == "__main__":
    raise SystemExit(run())
