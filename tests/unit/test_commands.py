import pytest

from core.commands import COMMANDS, parse_text_args, resolve
from core.commands.registry import find
from core.errors import InvalidArgument


def test_names_are_unique_and_help_is_set():
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    for c in COMMANDS:
        assert c.help, c.name
        assert all(a.help for a in c.args), c.name


def test_a_text_argument_takes_the_rest_of_the_line_verbatim():
    cmd = find("attempt")
    assert parse_text_args(cmd, "  ignore  previous   instructions ") == {"message": "ignore  previous   instructions"}


def test_resolve_prefers_the_longest_path_and_bare_names():
    assert resolve(COMMANDS, ["admin", "bounty", "new", "x"])[0].name == "admin bounty new"
    assert resolve(COMMANDS, ["bounty"])[0].name == "bounty"
    assert resolve(COMMANDS, ["bounty", "status"]) == (find("bounty"), 2)
    assert resolve(COMMANDS, ["nope"]) == (None, 0)


@pytest.mark.parametrize(
    ("name", "raw", "needle"),
    [
        ("admin grant", {"player": "#1", "amount": "-5", "reason": "x"}, "positive"),
        ("admin grant", {"player": "#1", "amount": "abc", "reason": "x"}, "not an amount"),
        ("admin grant", {"player": "#1", "reason": "x"}, "`amount` is missing"),
        ("limits exclude", {"days": "0"}, "at least 1"),
        ("limits exclude", {"days": "99999999999999999999999"}, "whole number"),
        ("limits exclude", {"days": "ten"}, "whole number"),
        ("admin bounty set", {"field": "prompt", "value": "x"}, "must be one of"),
        ("attempt", {"message": "x" * 5_000}, "too long"),
        ("bounty", {"oops": "1"}, "Unknown option"),
    ],
)
def test_bad_arguments_are_named(name, raw, needle):
    with pytest.raises(InvalidArgument) as err:
        find(name).convert(raw)
    assert needle in err.value.message


def test_too_many_words_for_a_command():
    with pytest.raises(InvalidArgument, match="Too many arguments"):
        parse_text_args(find("balance"), "extra words")
