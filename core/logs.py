"""Log lines for every process: text or JSON (``LOG_FORMAT``), the ids in play on each line, and
every configured secret redacted by its value, whatever logger wrote the line.

Libraries log what they like: solana-py's HTTP client logs each request URL at INFO, and RPC
providers put their key in that URL's path; an SDK's error may quote its base URL; a traceback may
show a connection string. So no line is trusted to be clean: each secret of the settings (tokens,
API keys, the passphrase, the webhook secret, the keypair file's contents) and the secret parts of
each configured URL (userinfo, query values, and the whole path of the URLs that carry a key in it)
is replaced wherever it appears, in the message, its arguments and any traceback, in both formats.

The ids of what a line is about (attempt, player, team, round, platform) are bound with ``bind`` or
``bound`` where a command or a job starts and where a service learns them; each record carries the
ids in play when it was made.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from core.base58 import encode_base58

if TYPE_CHECKING:
    from core.settings import Settings

# The ids a line can be about, in the order they are shown.
ID_NAMES = ("platform", "round_id", "attempt_id", "player_id", "team_id", "task", "task_id")
MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words; no real secret is this short

_NO_IDS: Mapping[str, Any] = MappingProxyType({})
_ids: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "bounty_log_ids", default=_NO_IDS
)


def bind(**ids: Any) -> contextvars.Token:
    """Add ids to every line logged from here on in this task (None removes one)."""
    merged = {**_ids.get(), **ids}
    return _ids.set({k: v for k, v in merged.items() if v is not None})


def unbind(token: contextvars.Token) -> None:
    _ids.reset(token)


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """``with bound(player_id=7):`` the ids hold for what runs inside, and are dropped after."""
    token = bind(**ids)
    try:
        yield
    finally:
        _ids.reset(token)


@contextmanager
def fresh(**ids: Any) -> Iterator[None]:
    """Only these ids for what runs inside (a command or a job starting anew in a long-lived task)."""
    token = _ids.set({k: v for k, v in ids.items() if v is not None})
    try:
        yield
    finally:
        _ids.reset(token)


def current_ids() -> dict[str, Any]:
    return dict(_ids.get())


# --- redaction -------------------------------------------------------------------------------------

# URLs whose path (and query) is itself a credential: RPC and price providers put the key there,
# and a webhook URL's path is often its secret.
SECRET_PATH_URLS = ("SOLANA_RPC_URL", "TOKEN_PRICE_URL", "TELEGRAM_WEBHOOK_URL")
OTHER_URLS = (
    "DATABASE_URL",
    "REDIS_URL",
    "DISCORD_API_BASE_URL",
    "DISCORD_GATEWAY_URL",
    "TELEGRAM_API_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
)
SECRET_SETTINGS = (
    "DISCORD_BOT_TOKEN",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "OFFLINE_GUARDIAN_PASSPHRASE",
)


class Redactor:
    """Secret values and what replaces them; ``redact`` rewrites any text."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str | None, name: str) -> None:
        """Redact ``value`` (and its URL-encoded form) as ``<NAME>`` wherever it appears."""
        if not value or len(value.strip()) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            for form in {value, value.strip(), quote(value, safe=""), quote(value, safe="/:@")}:
                if len(form) >= MIN_SECRET_LENGTH and form not in self._values:
                    self._values[form] = f"<{name}>"
                    self._pattern = None

    def add_url(self, url: str | None, name: str, *, secret_path: bool = False) -> None:
        """A URL's credentials: its userinfo and password, its query values, and with
        ``secret_path`` its whole path and query (the host stays readable)."""
        if not url:
            return
        parts = urlsplit(url)
        if parts.password:
            self.add(parts.password, f"{name} password")
            self.add(unquote(parts.password), f"{name} password")
        for _, value in parse_qsl(parts.query, keep_blank_values=False):
            self.add(value, f"{name} query")
        if secret_path:
            tail = parts.path + (f"?{parts.query}" if parts.query else "")
            if len(tail.strip("/")) >= MIN_SECRET_LENGTH:
                self.add(tail, f"{name} path")
                self.add(parts.path, f"{name} path")
            for segment in parts.path.split("/"):
                if len(segment) >= 8:  # a key alone, as a library may log one segment
                    self.add(segment, f"{name} path")
        elif parts.query:
            self.add(parts.query, f"{name} query")

    def add_settings(self, settings: Settings) -> None:
        for name in SECRET_SETTINGS:
            secret = getattr(settings, name, None)
            if secret is not None:
                self.add(secret.get_secret_value(), name)
        for name in SECRET_PATH_URLS:
            self.add_url(getattr(settings, name, None), name, secret_path=True)
        for name in OTHER_URLS:
            self.add_url(getattr(settings, name, None), name)
        self.add_keypair(getattr(settings, "TREASURY_KEYPAIR_PATH", None))

    def add_keypair(self, path: Path | None) -> None:
        """The treasury keypair file's contents, should any error ever quote them."""
        if path is None:
            return
        try:
            if Path(path).stat().st_size > 16_384:
                return
            text = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return
        self.add(text, "TREASURY_KEYPAIR")
        self.add(re.sub(r"\s+", "", text), "TREASURY_KEYPAIR")
        try:
            raw = json.loads(text)
            numbers = [int(n) for n in raw]
        except (ValueError, TypeError):
            return
        self.add(encode_base58(bytes(numbers)), "TREASURY_KEYPAIR")
        self.add(", ".join(map(str, numbers)), "TREASURY_KEYPAIR")

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def redact(self, text: str) -> str:
        if not self._values or not text:
            return text
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                # Longest first, so a URL's path goes before the key inside it.
                ordered = sorted(self._values, key=len, reverse=True)
                pattern = self._pattern = re.compile("|".join(map(re.escape, ordered)))
        values = self._values
        return pattern.sub(lambda m: values.get(m.group(0), "<secret>"), text)


REDACTOR = Redactor()


def redact(text: str) -> str:
    """Text with every configured secret replaced (for error messages printed outside the logs)."""
    return REDACTOR.redact(text)


def redact_value(value: str | None, name: str) -> None:
    """Redact one more value from every line from now on (a token a bot was given directly)."""
    REDACTOR.add(value, name)
    install_record_factory()


_factory_installed = False
_factory_lock = threading.Lock()


def install_record_factory() -> None:
    """Every record, whatever handler receives it (ours, a test's, a library's), has its message
    redacted and the ids in play attached when it is made."""
    global _factory_installed
    with _factory_lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            record.bounty_ids = dict(_ids.get())
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: the handler reports it, as logging does
                return record
            clean = REDACTOR.redact(message)
            if clean != message:
                record.msg, record.args = clean, None
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


# --- formatters ------------------------------------------------------------------------------------


def _ids_of(record: logging.LogRecord) -> dict[str, Any]:
    ids = getattr(record, "bounty_ids", None)
    return dict(ids) if ids is not None else current_ids()


class TextFormatter(logging.Formatter):
    """``time level logger: message [ids]``, redacted (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = _ids_of(record)
        if ids:
            shown = " ".join(f"{k}={ids[k]}" for k in ID_NAMES if k in ids)
            if shown:
                head, nl, rest = line.partition("\n")
                line = f"{head} [{shown}]{nl}{rest}"
        return REDACTOR.redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the process role, the ids in play,
    and the traceback when there is one; every string redacted before it is written."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "role": self.role,
            "pid": record.process,
        }
        for key, value in _ids_of(record).items():
            out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(_redacted(out), ensure_ascii=False, default=str)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return REDACTOR.redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


class RedactingStream:
    """stdout/stderr of a process whose output is a log (worker, beat): what anything prints
    directly (a banner, a warning, Celery's shutdown notice) is redacted line by line too, and in
    JSON mode each such line becomes a JSON object like every other line."""

    def __init__(self, stream: Any, *, json_role: str | None = None, name: str = "stdout") -> None:
        self._stream = stream
        self._pending = ""
        self._json_role = json_role
        self._name = name

    def _emit(self, lines: str) -> None:
        if self._json_role is None:
            self._stream.write(REDACTOR.redact(lines))
            return
        for line in lines.splitlines():
            if not line.strip():
                continue
            if not line.startswith("{"):
                line = json.dumps(
                    {
                        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        "level": "INFO",
                        "logger": self._name,
                        "message": REDACTOR.redact(line),
                        "role": self._json_role,
                        "pid": os.getpid(),
                    },
                    ensure_ascii=False,
                )
            self._stream.write(line + "\n")

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" not in self._pending:
            return len(text)
        lines, _, self._pending = self._pending.rpartition("\n")
        self._emit(lines + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# --- set-up ----------------------------------------------------------------------------------------

# Loggers that log every request or heartbeat at INFO (solana-py's HTTP client among them): kept at
# WARNING unless LOG_LEVEL=DEBUG. Redaction does not depend on this.
NOISY = (
    "httpx",
    "httpx2",
    "httpcore",
    "discord.gateway",
    "telegram.ext.Updater",
    "pgserver",
    "solana.rpc.async_http_provider",
    "alembic.runtime.plugins",
)

ROLE = "cli"
_configured = False


def is_configured() -> bool:
    """Whether ``configure`` ran in this process (or the one it was forked from)."""
    return _configured


def configure(
    settings: Settings,
    *,
    role: str,
    filename: str | os.PathLike[str] | None = None,
    stream: Any = None,
    level: str | int | None = None,
    redirect_output: bool = False,
) -> logging.Handler:
    """The process's logging: one handler on the root logger (a file, or ``stream``, default
    stderr) in ``LOG_FORMAT``, the settings' secrets redacted in every line, uncaught exceptions
    logged rather than printed raw. ``redirect_output`` also redacts what is printed to stdout and
    stderr (a worker's or beat's output is its log)."""
    global ROLE, _configured
    ROLE = role
    _configured = True
    REDACTOR.add_settings(settings)
    install_record_factory()
    if filename is not None:
        handler: logging.Handler = logging.FileHandler(filename, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    if getattr(settings, "LOG_FORMAT", "text") == "json":
        handler.setFormatter(JsonFormatter(role))
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if old is not handler:
            old.close()
    root.addHandler(handler)
    resolved = level if level is not None else settings.LOG_LEVEL
    root.setLevel(resolved)
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in NOISY:
        logging.getLogger(name).setLevel(max(quiet, root.level))
    logging.captureWarnings(True)
    _log_uncaught()
    if redirect_output:
        as_json = role if getattr(settings, "LOG_FORMAT", "text") == "json" else None
        if not isinstance(sys.stdout, RedactingStream):
            sys.stdout = RedactingStream(sys.stdout, json_role=as_json, name="stdout")
        if not isinstance(sys.stderr, RedactingStream):
            sys.stderr = RedactingStream(sys.stderr, json_role=as_json, name="stderr")
        # Celery writes some notices (a warm shutdown) to the interpreter's original streams.
        sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr  # type: ignore[misc]
    return handler


def _log_uncaught() -> None:
    """An exception nobody caught goes through the log (redacted), not raw to stderr."""

    def excepthook(kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        logging.getLogger("bounty").critical("uncaught exception", exc_info=(kind, value, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        logging.getLogger("bounty").error(
            "uncaught exception in thread %s",
            args.thread.name if args.thread else "?",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
