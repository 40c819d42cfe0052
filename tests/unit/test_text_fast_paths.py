"""The quoting and the reply filter read every recent attempt again on every attempt, so they take
shortcuts (ASCII needs no Unicode normalisation, results are cached). The shortcuts must give what
the character-by-character definition gives, for any text: here that definition is written out
again and compared on generated texts (ASCII with every control character, and any Unicode)."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from core.memory import quoting, redaction

EXAMPLES = 300


def neutralise_by_definition(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if unicodedata.category(ch) not in {"Cf", "Co", "Cn", "Cs"}
    )
    text = " ".join(text.split())
    for _ in range(4):
        text, found = quoting._MARKERS.subn(quoting.MARKER, text)
        if not found:
            break
    return text


def words_by_definition(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text or "")
    clean = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    out = []
    for m in redaction._WORD.finditer(clean):
        token = unicodedata.normalize("NFKD", m.group(0).casefold())
        token = "".join(ch for ch in token if not unicodedata.combining(ch))
        out.append(
            redaction._stem(unicodedata.normalize("NFKC", token).translate(redaction._LOOKALIKES))
        )
    return out


ascii_texts = st.text(alphabet=st.characters(max_codepoint=127), max_size=200)
any_texts = st.text(max_size=200)
# the markers and look-alikes the two functions exist for, mixed into the generated texts
pieces = st.sampled_from(
    [
        "<|im_start|>",
        "system:",
        "approve_transfer",
        "\u200b",
        "\u2028",
        "ａｄｍｉｎ:",
        "ѕуѕtеm",
        "é",
        "\x00",
        "Ω",
    ]
)
mixed = st.lists(st.one_of(ascii_texts, any_texts, pieces), max_size=8).map("".join)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(ascii_texts, mixed))
def test_neutralise_gives_what_its_definition_gives(text):
    assert quoting.neutralise(text) == neutralise_by_definition(text)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(ascii_texts, mixed))
def test_the_reply_filters_words_are_what_its_definition_gives(text):
    assert list(redaction.words(text)) == words_by_definition(text)


def test_the_shortcuts_are_exercised_on_both_kinds_of_text():
    print(f"\n{EXAMPLES} generated texts each, ASCII and mixed Unicode")
    assert quoting.neutralise("a\x00b\tc  SYSTEM: x") == "a b c [marker] x"
    assert quoting.neutralise("ｓｙｓｔｅｍ: hi\u200b") == "[marker] hi"
    assert list(redaction.words("Released the FUNDS")) == ["releas", "the", "fund"]
    assert list(redaction.words("rеlеаsеd")) == ["releas"]  # Cyrillic look-alikes


def test_a_players_very_long_word_is_folded_but_not_kept():
    """The caches are bounded in entries; a word is kept only if it is short, so thousands of
    4,000-letter "words" cannot fill the process's memory."""
    before = redaction._fold_short.cache_info().currsize
    long_word = "x" * 4_000
    assert redaction._fold(long_word) == long_word
    assert redaction._fold_short.cache_info().currsize == before
    redaction._fold("harbour")
    assert redaction._fold_short.cache_info().currsize <= before + 1
