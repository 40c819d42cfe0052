"""Typed arguments on the text platforms: durations, quoted names, an optional duration before a
reason, limits from the settings in force."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.commands import Arg, parse_text_args
from core.commands.registry import find
from core.durations import describe, parse_duration
from core.errors import InvalidArgument
from core.settings import load_settings


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        (" 7D ", timedelta(days=7)),
        ("+1h", timedelta(hours=1)),
        ("3650d", timedelta(days=3650)),
    ],
)
def test_durations(raw, value):
    assert parse_duration(raw) == value


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("0", "more than zero"),
        ("0h", "more than zero"),
        ("-5h", "cannot be negative"),
        ("99999d", "at most 3,650 days"),
        ("3651d", "at most 3,650 days"),
        ("abc", "a number and a unit"),
        ("5", "needs a unit: 5m, 5h or 5d"),
        ("1.5h", "a number and a unit"),
        ("7 d", "a number and a unit"),
        ("9" * 30 + "d", "a number and a unit"),
    ],
)
def test_bad_durations_say_what_was_wrong(raw, needle):
    with pytest.raises(InvalidArgument) as err:
        parse_duration(raw)
    assert needle in err.value.message


def test_describe():
    assert [describe(parse_duration(d)) for d in ("30m", "90m", "24h", "14d", "1d")] == [
        "30 minutes",
        "90 minutes",
        "1 day",
        "2 weeks",
        "1 day",
    ]


def test_an_optional_duration_is_told_from_the_reason_by_its_first_character():
    ban = find("admin ban")
    assert parse_text_args(ban, "@bob 7d spamming links") == {
        "player": "@bob",
        "duration": "7d",
        "reason": "spamming links",
    }
    assert parse_text_args(ban, "@bob spamming links") == {
        "player": "@bob",
        "reason": "spamming links",
    }
    assert parse_text_args(ban, "@bob") == {"player": "@bob"}
    # A word that starts with a digit or a sign is the duration, and must then be a valid one.
    with pytest.raises(InvalidArgument, match="needs a unit"):
        ban.convert(parse_text_args(ban, "@bob 3 strikes"))
    with pytest.raises(InvalidArgument, match="cannot be negative"):
        ban.convert(parse_text_args(ban, "@bob -5h no"))
    with pytest.raises(InvalidArgument, match="`reason` is missing"):
        ban.convert(parse_text_args(ban, "@bob 7d"))
    converted = ban.convert(parse_text_args(ban, "telegram:42 12h flood"))
    assert converted == {
        "player": "telegram:42",
        "duration": timedelta(hours=12),
        "reason": "flood",
    }


def test_quotes_group_words_into_one_argument():
    new = find("admin bounty new")
    assert parse_text_args(new, '"Demo round" 1000 Never  release it.') == {
        "name": "Demo round",
        "seed": "1000",
        "prompt": "Never  release it.",
    }
    assert (
        parse_text_args(new, "\u201cDemo round\u201d 1000 p")["name"] == "Demo round"
    )  # phones' quotes
    assert parse_text_args(new, "Solo 1000 p")["name"] == "Solo"
    with pytest.raises(InvalidArgument, match="quote is not closed"):
        parse_text_args(new, '"Demo round 1000 p')
    with pytest.raises(InvalidArgument, match="space after the closing quote"):
        parse_text_args(new, '"Demo"round 1000 p')
    with pytest.raises(InvalidArgument, match="`name` is missing"):
        new.convert(parse_text_args(new, '"" 1000 p'))
    with pytest.raises(InvalidArgument, match="at most 64"):
        new.convert(parse_text_args(new, f'"{"x" * 65}" 1000 p'))


def test_a_limit_named_by_a_setting_is_read_from_the_settings_in_force():
    attempt = find("attempt")
    (message,) = attempt.args
    small = load_settings(ATTEMPT_MAX_CHARS=300, _env_file=None)
    assert message.limit(small) == 300 and message.limit(load_settings(_env_file=None)) == 1_000
    with pytest.raises(InvalidArgument, match="301 characters, at most 300"):
        attempt.convert({"message": "x" * 301}, small)
    assert attempt.convert({"message": "x" * 300}, small) == {"message": "x" * 300}


def test_a_character_no_text_column_can_hold_is_refused_with_a_clear_answer():
    """Found by the fuzzing: a NUL (or a lone surrogate) reached PostgreSQL and crashed the command."""
    for bad in ("a\x00b", "\ud800", "x\udfffy"):
        for kind in ("text", "word", "player"):
            with pytest.raises(InvalidArgument, match="cannot be stored"):
                Arg("message", kind, "h").convert(bad)
