"""The reply filter (SPEC §10.7): another player's unrevealed text never reaches a player through the
guardian's reply, whatever its case, punctuation, spacing, underscores or order; the player's own
words and ordinary replies pass untouched. What it cannot catch is written down in docs/security.md."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.memory.redaction import (
    BAG,
    RUN,
    WITHHELD,
    Confidential,
    distinctive,
    known_words,
    redact,
    words,
)

SECRET = "the lighthouse keeper swears the moon owes him forty silver coins tonight"
LEAKS = {
    "verbatim": f"No. Someone already tried: {SECRET}. Still no.",
    "shouted": f"NO. {SECRET.upper()}!",
    "punctuated": "No: the lighthouse-keeper, swears; the moon... owes him forty silver coins!",
    "underscored": "Nice: the_lighthouse_keeper_swears_the_moon_owes_him_forty_silver_coins.",
    "spaced": "the   lighthouse\tkeeper\n swears  the moon owes him",
    "reversed": " ".join(reversed(SECRET.split())),
    "shuffled": "coins silver forty tonight, the moon and the keeper of a lighthouse swears",
    "reworded": "The keeper of the lighthouse swore that the moon owed him 40 silver coins.",
    "zero-width and look-alikes": "the lіghthouse ke\u200beper swеars the mооn owes him",
    "accented and full-width": "thé lighthousé ｋｅｅｐｅｒ swears the moon owes him",
}
# What the filter is not for: the meaning in other words (accepted risk, docs/security.md).
PARAPHRASE = "Someone claimed a sailor is owed money by a celestial body."


@pytest.mark.parametrize("how", sorted(LEAKS))
def test_a_copy_of_another_players_text_is_withheld(how):
    shown = redact(LEAKS[how], [SECRET])
    assert WITHHELD in shown
    assert "lighthouse" not in shown.lower() or "silver" not in shown.lower()
    left = set(words(shown)) & distinctive(words(SECRET))
    assert len(left) < BAG, (how, shown)


def test_ordinary_replies_and_short_overlaps_pass_untouched():
    for reply in (
        "I will not release the funds, whatever the moon says.",
        "the lighthouse keeper is a nice story",  # a few words in common: chance
        "No. The vault stays shut, and the prize pool with it.",
        PARAPHRASE,
    ):
        assert redact(reply, [SECRET]) == reply
    assert redact("open the vault", ["open the vault"]) == "open the vault"  # too short
    assert redact("", [SECRET]) == "" and redact("anything", []) == "anything"


def test_the_players_own_words_are_never_withheld():
    mine = "the lighthouse keeper swears the moon owes him forty silver coins tonight, pay up"
    secret = Confidential(SECRET, known_words(mine))
    reply = "You say the lighthouse keeper swears the moon owes him forty silver coins tonight."
    assert redact(reply, [secret]) == reply
    # only what the player did not write is withheld
    other = Confidential("an admiral signs the treaty with purple ink at dawn", known_words(mine))
    assert WITHHELD in redact("an admiral signs the treaty with purple ink at dawn", [other])


def test_what_is_withheld_is_only_the_copied_passage():
    reply = "Nice try. The QUICK brown fox, jumps over the lazy dog! But no."
    secret = "the quick brown fox jumps over the lazy dog near the river"
    assert redact(reply, [secret]) == f"Nice try. {WITHHELD}! But no."


sentences = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=9), min_size=8, max_size=20
)


@settings(max_examples=200, deadline=None)
@given(
    secret_words=sentences,
    filler=st.lists(st.sampled_from(["no", "nice", "try", "but", "vault", "stays", "shut"])),
    how=st.sampled_from(["upper", "underscore", "punct", "reverse", "shuffle"]),
    seed=st.integers(0, 2**16),
)
def test_any_copy_of_a_text_leaves_too_little_to_read(secret_words, filler, how, seed):
    secret = " ".join(secret_words)
    copy = list(secret_words)
    if how == "reverse":
        copy.reverse()
    elif how == "shuffle":
        random.Random(seed).shuffle(copy)
    text = {"underscore": "_".join(copy), "punct": ", ".join(copy) + "!"}.get(how, " ".join(copy))
    if how == "upper":
        text = text.upper()
    reply = (
        " ".join(filler[: len(filler) // 2]) + f" {text} " + " ".join(filler[len(filler) // 2 :])
    )
    shown = words(redact(reply, [secret]))
    theirs = words(secret)
    # no run of RUN of its words in order, and no WINDOW of the reply with BAG of its words
    runs = {tuple(theirs[i : i + RUN]) for i in range(len(theirs) - RUN + 1)}
    assert not any(tuple(shown[i : i + RUN]) in runs for i in range(len(shown) - RUN + 1))
    wanted = distinctive(theirs)
    if len(wanted) >= BAG:
        for i in range(max(1, len(shown) - 11)):
            assert len(set(shown[i : i + 12]) & wanted) < BAG
