"""Start what a command needs: settings, the database (embedded unless DATABASE_URL), Redis (embedded
unless REDIS_URL), migrations; and stop it all on exit, SIGTERM included."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import sys
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from core.logs import redact
from core.settings import Settings, SettingsError, load_settings

log = logging.getLogger("bounty")


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(exc.message, file=sys.stderr)
        raise SystemExit(2) from None


STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def exit_on_sigterm() -> None:
    """SIGTERM and SIGHUP (the terminal closed, an SSH session dropped) become a normal exit, so
    embedded servers and children are stopped, not orphaned. This is for synchronous code (start-up,
    clean-up); inside the event loop ``stop_on_signals`` takes over."""

    def _handler(signum, frame):
        raise SystemExit(128 + signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, _handler)


class StopSignals:
    """Inside the event loop: SIGTERM/SIGHUP (and SIGINT when asked) set ``stop`` instead of raising
    wherever the loop happens to be (an exception raised inside a library's callback can be turned
    into an ordinary error there and swallowed, losing the signal). ``signum`` tells which arrived."""

    def __init__(self, *, interrupt: bool = False, terminal: bool = True) -> None:
        self.stop = asyncio.Event()
        self.signum: int | None = None
        self._signals = (*STOP_SIGNALS, *((signal.SIGINT,) if interrupt else ()))
        self._terminal = terminal
        self._watcher: TerminalWatcher | None = None

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.add_signal_handler(sig, self._received, sig)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # held back by ``held``
        if self._terminal and hasattr(signal, "SIGHUP"):
            self._watcher = TerminalWatcher.start(lambda: loop.call_soon_threadsafe(self._hung_up))
        return self

    def _hung_up(self) -> None:
        log.info("the terminal hung up")
        self._received(signal.SIGHUP)

    def _received(self, signum: int) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        if self.signum is None:
            self.signum = signum
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        if self._watcher is not None:
            self._watcher.close()
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        exit_on_sigterm()  # the loop's removal restored the default action; clean-up still needs ours
        if signal.SIGINT in self._signals:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    @staticmethod
    @contextmanager
    def held():
        """Hold stop signals back while the event loop starts, so one that arrives before
        ``StopSignals`` is entered waits for it instead of raising inside whatever runs then."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum


class TerminalWatcher:
    """Notices the terminal on stdin hanging up, without reading it.

    A closed terminal window sends SIGHUP only to its session's leader, which under ``make run`` is
    make, not us; we would go on with our workers and servers, orphaned. A poll of the terminal with
    no events asked for still reports POLLHUP (and POLLERR/POLLNVAL), so a thread that waits on it
    learns of the hang-up whoever got the signal, in the console and with the bots alike."""

    def __init__(self, on_hangup) -> None:
        self._on_hangup = on_hangup
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._watch, name="terminal-watch", daemon=True)

    @classmethod
    def start(cls, on_hangup) -> TerminalWatcher | None:
        """Watch stdin if it is a terminal; None otherwise (a pipe, /dev/null, a service)."""
        try:
            if not os.isatty(0):
                return None
        except OSError:
            return None
        watcher = cls(on_hangup)
        watcher._thread.start()
        return watcher

    def _watch(self) -> None:
        poller = select.poll()
        poller.register(0, 0)  # no events: only POLLHUP, POLLERR and POLLNVAL are reported
        poller.register(self._wake_r, select.POLLIN)
        while True:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            for fd, _ in events:
                if fd == self._wake_r:
                    return
            if events:
                self._on_hangup()
                return

    def close(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        self._thread.join(2)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


def masked(url: str) -> str:
    """A URL fit for a log line: the password replaced."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


@dataclass
class Services:
    settings: Settings
    database_url: str
    redis_url: str | None
    embedded_database: bool


def start_services(
    settings: Settings, stack: ExitStack, *, redis: bool, migrate: bool = True
) -> Services:
    # pgserver keeps its lock files in the user's runtime dir; give it a private one if unset.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        run_dir = settings.BOUNTY_DATA_DIR.resolve() / "run"
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
    database_url = settings.DATABASE_URL
    embedded = database_url is None
    if embedded:
        from core.infra.embedded import EmbeddedPostgres

        pg = EmbeddedPostgres(settings.BOUNTY_DATA_DIR)
        database_url = pg.start()
        stack.callback(pg.stop)
        log.info("embedded PostgreSQL (pgvector) under %s", pg.path)
    redis_url = settings.REDIS_URL
    if redis and redis_url is None:
        from core.infra.embedded import EmbeddedRedis

        r = EmbeddedRedis(settings.BOUNTY_DATA_DIR)
        redis_url = r.start()
        stack.callback(r.stop)
        log.info("embedded Redis under %s", r.path)
    if migrate:
        from core.db.migrate import upgrade

        try:
            upgrade(database_url)
        except (OSError, ConnectionError) as exc:
            print(
                f"Cannot reach the database at {masked(database_url)}: {redact(str(exc))}",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        except (
            Exception
        ) as exc:  # asyncpg's auth and "database does not exist" errors, among others
            if type(exc).__module__.startswith(("asyncpg", "sqlalchemy")):
                print(
                    f"Cannot use the database at {masked(database_url)}: {redact(str(exc))}",
                    file=sys.stderr,
                )
                raise SystemExit(2) from None
            raise
    # Children (worker, beat) and later code see the same services.
    os.environ["DATABASE_URL"] = database_url
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    return Services(settings, database_url, redis_url, embedded)
