"""Durations people type (``30m``, ``12h``, ``7d``, ``2w``): parsed exactly, refused with what was wrong."""

from __future__ import annotations

import re
from datetime import timedelta

from core.errors import InvalidArgument

UNITS = {"m": ("minute", 60), "h": ("hour", 3_600), "d": ("day", 86_400), "w": ("week", 7 * 86_400)}
MAX = timedelta(
    days=3_650
)  # ten years; longer than that is "until unbanned": leave the duration out
_DURATION = re.compile(r"^(\d{1,7})([mhdw])$")
EXAMPLES = "30m, 12h or 7d"


def looks_like_duration(word: str) -> bool:
    """Whether a typed word is meant as a duration (and so must be a valid one): it starts with a
    digit or a sign. ``/admin ban @bob spamming`` has no duration; ``/admin ban @bob 3x spam`` has a
    bad one."""
    return bool(word) and (word[0].isdigit() or word[0] in "+-")


def parse_duration(raw: str, *, name: str = "duration") -> timedelta:
    text = raw.strip().lower()
    if text.startswith("-"):
        raise InvalidArgument(f"`{name}` cannot be negative ({raw[:20]!r}); use {EXAMPLES}.")
    text = text.removeprefix("+")
    if text.isdigit() and len(text) <= 7:
        if int(text) == 0:
            raise InvalidArgument(
                f"`{name}` must be more than zero; use {EXAMPLES}, or leave it out for no end."
            )
        raise InvalidArgument(
            f"`{name}` needs a unit: {text}m, {text}h or {text}d (minutes, hours or days)."
        )
    match = _DURATION.match(text)
    if match is None:
        raise InvalidArgument(
            f"`{name}` must be a number and a unit (m, h, d or w) like {EXAMPLES}, not {raw[:20]!r}."
        )
    amount, unit = int(match[1]), match[2]
    if amount == 0:
        raise InvalidArgument(
            f"`{name}` must be more than zero; use {EXAMPLES}, or leave it out for no end."
        )
    value = timedelta(seconds=amount * UNITS[unit][1])
    if value > MAX:
        raise InvalidArgument(
            f"`{name}` is at most {MAX.days:,} days ({raw[:20]!r} is longer); leave it out for a ban until unbanned."
        )
    return value


def describe(value: timedelta) -> str:
    """``timedelta(hours=12)`` -> ``12 hours``, with the largest unit that divides it."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        word, size = UNITS[unit]
        if seconds % size == 0 and seconds >= size:
            n = seconds // size
            return f"{n:,} {word}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"
