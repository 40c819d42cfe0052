"""The shape of a command (name, typed arguments with limits, help, who may run it, the core call)
and of a reply (title, text, fields, an optional confirmation), both platform-neutral."""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from core.durations import parse_duration
from core.errors import InvalidArgument
from core.money import TOKEN, USDC, parse_amount

if TYPE_CHECKING:
    from core.actors import Actor
    from core.app import App

# "player": someone a command names (a moderator's target, a team invitee). Kept as typed; the
# service resolves it (players.find_player), since what a person types depends on the platform.
# "duration": 30m, 12h, 7d (core/durations.py), converted to a timedelta.
ArgKind = Literal["text", "word", "int", "amount", "token_amount", "choice", "player", "duration"]

MAX_TEXT = 4_000  # nothing longer is ever accepted as an argument, whatever a command allows
MAX_PLAYER_REF = 100
MAX_DURATION = 16
# Quotes that group words into one argument on the text platforms ("Demo round"; phones type “ ”).
QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c", "\u00ab": "\u00bb"}
# Optional arguments of these kinds, before the last argument, are told apart from the next one by
# their first character: a digit or a sign starts them (and then they must be valid).
NUMERIC_KINDS = frozenset({"int", "amount", "token_amount", "duration"})
# What no text column can hold: NUL, and lone surrogates (not UTF-8). Refused, never stored or sent.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """Whether ``text`` holds a character PostgreSQL cannot store (NUL, a lone surrogate)."""
    return bool(_UNSTORABLE.search(text))


@dataclass(frozen=True)
class Arg:
    name: str
    kind: ArgKind
    help: str
    required: bool = True
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = None
    # A setting that decides the maximum length (``"ATTEMPT_MAX_CHARS"``): read from the settings in
    # force when the argument is checked and when a platform registers the command.
    max_length_setting: str | None = None
    choices: tuple[str, ...] = ()
    autocomplete: str | None = (
        None  # a source in core/commands/completions.py, for platforms that offer it
    )
    # A secret (the guardian's prompt, a link code): the command is refused where others see what was
    # typed (a Telegram group), since the secret would already be out (SPEC §10.6).
    secret: bool = False

    def limit(self, settings: Any = None) -> int:
        """The most characters this argument takes, under ``settings`` (the settings in force)."""
        if self.max_length_setting is not None and settings is not None:
            return min(int(getattr(settings, self.max_length_setting)), MAX_TEXT)
        if self.max_length is not None:
            return self.max_length
        return {"player": MAX_PLAYER_REF, "duration": MAX_DURATION}.get(self.kind, MAX_TEXT)

    def could_be(self, word: str) -> bool:
        """Whether ``word`` is meant for this (optional) argument, rather than for the next one."""
        if self.kind in NUMERIC_KINDS:
            return bool(word) and (word[0].isdigit() or word[0] in "+-.")
        return True

    def convert(self, raw: Any, settings: Any = None) -> Any:
        """Check and convert one value; a wrong value raises InvalidArgument naming this argument."""
        if isinstance(raw, str) and unstorable(raw):
            raise InvalidArgument(
                f"`{self.name}` holds a character that cannot be stored (a NUL or a broken one)."
            )
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                raise InvalidArgument(f"`{self.name}` is missing: {self.help}")
            return None
        if self.kind in ("text", "word", "player"):
            value = str(raw).strip()
            limit = self.limit(settings)
            if len(value) > limit:
                raise InvalidArgument(
                    f"`{self.name}` is too long: {len(value):,} characters, at most {limit:,}."
                )
            if self.kind == "word" and any(ch.isspace() for ch in value):
                raise InvalidArgument(f"`{self.name}` must be a single word.")
            return value
        if self.kind == "duration":
            text = str(raw).strip()
            if len(text) > self.limit(settings):
                raise InvalidArgument(
                    f"`{self.name}` must be like 30m, 12h or 7d, not {text[:20]!r}."
                )
            return parse_duration(text, name=self.name)
        if self.kind == "int":
            text = str(raw).strip()
            if len(text) > 20 or not text.lstrip("-+").isdigit():
                raise InvalidArgument(f"`{self.name}` must be a whole number, not {text[:20]!r}.")
            value = int(text)
            if self.min_value is not None and value < self.min_value:
                raise InvalidArgument(f"`{self.name}` must be at least {self.min_value:,}.")
            if self.max_value is not None and value > self.max_value:
                raise InvalidArgument(f"`{self.name}` must be at most {self.max_value:,}.")
            return value
        if self.kind == "amount":
            try:
                return parse_amount(str(raw), USDC)
            except InvalidArgument as exc:
                raise InvalidArgument(f"`{self.name}`: {exc.message}") from None
        if self.kind == "token_amount":
            try:
                return parse_amount(str(raw), TOKEN)
            except InvalidArgument as exc:
                raise InvalidArgument(f"`{self.name}`: {exc.message}") from None
        if self.kind == "choice":
            value = str(raw).strip().lower()
            if value not in self.choices:
                raise InvalidArgument(f"`{self.name}` must be one of: {', '.join(self.choices)}.")
            return value
        raise AssertionError(self.kind)


@dataclass(frozen=True)
class Field:
    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True)
class Confirm:
    """Ask the caller to confirm; adapters show a button / inline keyboard / y-n prompt.

    ``token`` goes back to ``run_confirmation`` unchanged; it is short (fits Telegram's 64 bytes).
    """

    token: str
    prompt: str
    accept_label: str
    cancel_label: str
    expires_at: datetime


Tone = Literal["info", "success", "warning", "danger"]


@dataclass(frozen=True)
class Attachment:
    """A file sent with a reply: an image shown with it (a chart), or any other file."""

    name: str  # a file name with its extension, like "stats.png"
    data: bytes
    image: bool = False


@dataclass(frozen=True)
class Reply:
    """A platform-neutral answer. Text is plain (adapters escape it for their markup)."""

    text: str = ""
    title: str | None = None
    fields: tuple[Field, ...] = ()
    footer: str | None = None
    private: bool = (
        False  # only the caller sees it (ephemeral on Discord, private chat on Telegram)
    )
    tone: Tone = "info"
    confirm: Confirm | None = None
    lines: tuple[str, ...] = ()  # list content (logs, leaderboards): adapters paginate it
    # Text the person must copy exactly (a message for their wallet to sign): shown alone and
    # verbatim, in a code block on Discord and Telegram and on its own line on the console.
    code: str | None = None
    attachments: tuple[Attachment, ...] = ()
    # Answers to a press on a confirmation. keep_message: tell only the presser; the message the
    # button sits on keeps what it shows (a repeated or late press must not turn an answer back into
    # an earlier state). follow: the final answer, which replaces this one once ready (this one says
    # what is happening meanwhile: the guardian is thinking).
    keep_message: bool = False
    follow: Callable[[], Awaitable[Reply]] | None = field(default=None, compare=False, repr=False)

    def as_text(self) -> str:
        """A plain-text rendering (console, and the fallback of every adapter)."""
        parts: list[str] = []
        if self.title:
            parts.append(self.title)
        if self.text:
            parts.append(self.text)
        for f in self.fields:
            parts.append(f"{f.name}: {f.value}")
        parts.extend(self.lines)
        if self.footer:
            parts.append(self.footer)
        if self.code is not None:
            parts.append(self.code)
        return "\n".join(parts)


@dataclass
class CommandContext:
    app: App
    actor: Actor


Handler = Callable[[CommandContext, dict[str, Any]], Awaitable[Reply]]
# What running a command would do now, in the words of the question asked before it runs.
Preview = Callable[[CommandContext, dict[str, Any]], Awaitable[str]]

# What running a command changes for its caller: "view" nothing (it reads, or only makes something the
# caller may hand on, like a link code); "state" their standing (a team place, a wallet link, joined
# accounts, a setting); "money" it moves money.
Effect = Literal["view", "state", "money"]


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # ("admin", "grant") is /admin grant
    help: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    moderator: bool = False  # checked in core again, whatever the adapter shows
    private: bool = False  # the reply is for the caller only
    slow: bool = False  # may wait on the guardian or heavy queries: adapters defer first
    # Where a platform cannot invoke a group bare (Discord: /bounty with /bounty log beside it),
    # this command is also reachable as this subcommand (/bounty status). Text platforms accept both.
    bare_name: str | None = None
    # A banned player is refused this command (paid and team commands); read-only ones still answer.
    refuses_banned: bool = False
    # Only these platforms offer it (None: all). A command that reads local files is console-only.
    platforms: tuple[str, ...] | None = None
    # What it changes (see Effect). None: derived, see ``changes``. Reached any way but typed by its
    # owner (a Telegram deep link, a forwarded button), a command that changes anything asks its owner
    # first, saying what will happen (core/commands/consent.py; SPEC §10.3).
    effect: Effect | None = None
    # Its own answer is always a question before anything changes (/attempt, /team disband,
    # /link <code>): reached indirectly it runs as typed, since it asks anyway.
    confirms: bool = False
    # What running it now would do, for that question (default: its help text).
    preview: Preview | None = None
    # Called when a secret argument was typed where others see it (a link code is burned); says what
    # it did, for the refusal.
    on_exposed: Preview | None = None

    @property
    def changes(self) -> Effect:
        """What it changes: as declared, else "state" for a command a banned player is refused (it
        acts: pays, joins, leaves) or a moderator's, else "view"."""
        if self.effect is not None:
            return self.effect
        return "state" if self.refuses_banned or self.moderator else "view"

    @property
    def secret_args(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if a.secret)

    def offered_on(self, platform: str) -> bool:
        return self.platforms is None or platform in self.platforms

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def usage(self) -> str:
        parts = ["/" + self.name]
        for a in self.args:
            parts.append(f"<{a.name}>" if a.required else f"[{a.name}]")
        return " ".join(parts)

    def convert(self, raw: dict[str, Any], settings: Any = None) -> dict[str, Any]:
        """Every argument checked and converted (limits from ``settings`` where an Arg names one)."""
        unknown = set(raw) - {a.name for a in self.args}
        if unknown:
            raise InvalidArgument(f"Unknown option {sorted(unknown)[0]!r}. Usage: {self.usage}")
        return {a.name: a.convert(raw.get(a.name), settings) for a in self.args}


def parse_text_args(command: Command, rest: str) -> dict[str, Any]:
    """Split the text after a command name into its arguments (Telegram, console).

    Words fill arguments in order; a final ``text`` argument takes the rest of the line verbatim.
    Quotes group words into one argument (``/admin bounty new "Demo round" 1000 ...``). An optional
    numeric or duration argument before the last one is taken only when its word starts with a digit
    or a sign (``/admin ban @bob 7d spam`` and ``/admin ban @bob spam`` both work); then it must be valid.
    """
    rest = rest.strip()
    if len(rest) > MAX_TEXT * 2:
        raise InvalidArgument(f"That is too long: {len(rest):,} characters.")
    values: dict[str, Any] = {}
    args = list(command.args)
    for i, arg in enumerate(args):
        if not rest:
            break
        last = i == len(args) - 1
        if arg.kind == "text" and last:
            values[arg.name] = rest
            rest = ""
            break
        if rest[0] in QUOTES:
            close = rest.find(QUOTES[rest[0]], 1)
            if close < 0:
                raise InvalidArgument(
                    f"`{arg.name}`: a quote is not closed. Usage: {command.usage}"
                )
            word, after = rest[1:close], rest[close + 1 :]
            if after and not after[0].isspace():
                raise InvalidArgument(
                    f"`{arg.name}`: put a space after the closing quote. Usage: {command.usage}"
                )
            values[arg.name] = word
            rest = after.strip()
            continue
        parts = rest.split(None, 1)
        if not arg.required and not last and not arg.could_be(parts[0]):
            continue  # not this optional argument: the word is the next one's
        values[arg.name] = parts[0]
        rest = parts[1].strip() if len(parts) > 1 else ""
    if rest:
        raise InvalidArgument(f"Too many arguments. Usage: {command.usage}")
    return values


def resolve(commands: list[Command], words: list[str]) -> tuple[Command | None, int]:
    """The command with the longest path matching the leading words, and how many words it used."""
    best: Command | None = None
    used = 0
    lowered = [w.lower() for w in words]
    for cmd in commands:
        n = len(cmd.path)
        if n > used and lowered[:n] == list(cmd.path):
            best, used = cmd, n
        if cmd.bare_name and n + 1 > used and lowered[: n + 1] == [*cmd.path, cmd.bare_name]:
            best, used = cmd, n + 1
    return best, used


def split_words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


# Every command defined, by name (the table's order is core/commands/registry.py's): what finds a
# command by its name (a question's token, a preview quoting a help text) without the table.
DEFINED: dict[str, Command] = {}


def command(path: str, handler: Handler, *args: Arg, **options: Any) -> Command:
    """A command table entry: ``command("admin grant", handler, Arg(...), moderator=True)``; the
    handler's docstring is the help text."""
    made = Command(
        tuple(path.split()), (handler.__doc__ or "").strip(), handler, tuple(args), **options
    )
    DEFINED[made.name] = made
    return made
