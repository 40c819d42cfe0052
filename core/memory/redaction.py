"""Other players' unrevealed texts never reach a player through the guardian's reply (SPEC §10.7).

The guardian sees other players' attempts (quoted, in its context) and could be talked into repeating
them. Before a reply is shown, every passage that copies a confidential text is replaced by
``[withheld]``. Reply and texts are compared as words: Unicode-normalised (NFKC, accents and
invisible characters dropped, common Cyrillic and Greek look-alikes read as Latin letters),
case-folded, split on anything that is not a letter or digit (so spacing, punctuation and
underscores change nothing), and lightly stemmed (``owes`` and ``owed`` are one word). Two checks:

- **runs**: six words of a text in a row, in its order, anywhere in the reply;
- **bags**: five of its distinctive words (not common words, not words the player used themselves)
  within any twelve words of the reply, in any order, so a reordered or lightly reworded copy is
  caught as well as a verbatim one.

Words the player wrote themselves (their message and earlier turns) never count: the guardian may
answer a player in their own words. What this cannot catch, and is accepted as a risk
(docs/security.md): a true paraphrase (the same idea in other words), a translation, an encoding
(base64, a cipher, spelling a text out letter by letter), numbers written differently (forty / 40),
and a text too short to tell from a coincidence (under four words, or under five distinctive ones
for the reordering check).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

WITHHELD = "[withheld]"
RUN = 6  # words in a row
BAG = 5  # distinctive words ...
WINDOW = 12  # ... within this many words of the reply
MIN_RUN = 4  # a text shorter than this is too short to tell a quotation from a coincidence

# Latin look-alikes in Cyrillic and Greek: a copy in mixed scripts reads as the original.
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁһкмтвнℓαεικνορτυχ",
    "aeopcyxijsdhkmtbhlaeikvoptux",
)
_WORD = re.compile(r"[^\W_]+")
# One suffix off, the first that leaves three letters: crude, but the same on both sides (owes, owed
# and owe meet; released, releasing and release too).
_SUFFIXES = ("ing", "ed", "es", "s", "e", "d")
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can cannot could did do does doing down during each else even
    ever every few for from further get got had has have having he her here hers him his how i if
    in into is it its itself just let like may me might more most much must my never no nor not now
    of off on once one only or other our ours out over own please really said same say says she
    should so some such than that the their theirs them then there these they this those through
    to too under until up upon us very was we were what when where which while who whom why will
    with would yes yet you your yours
    attempt attempts ask asked asking decline declined deny funds fund give guardian instructions
    money no nope pool prize refuse release released request rules sorry system transfer try trying
    vault""".split()
)


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


FOLD_CACHED = 32  # words up to this long are cached: a player's 4,000-letter "word" is not kept


def _fold(token: str) -> str:
    return _fold_short(token) if len(token) <= FOLD_CACHED else _fold_word(token)


def _fold_word(token: str) -> str:
    if token.isascii():  # NFKD, the accents and the look-alikes change nothing in ASCII
        return _stem(token.lower())
    token = unicodedata.normalize("NFKD", token.casefold())
    token = "".join(ch for ch in token if not unicodedata.combining(ch))
    return _stem(unicodedata.normalize("NFKC", token).translate(_LOOKALIKES))


_fold_short = functools.lru_cache(maxsize=16_384)(_fold_word)


def _visible(text: str) -> tuple[str, list[int]]:
    """``text`` without invisible format characters, and where each kept character was."""
    if text.isascii():  # ASCII has no format character
        return text, list(range(len(text)))
    kept, where = [], []
    for i, ch in enumerate(text):
        if unicodedata.category(ch) != "Cf":
            kept.append(ch)
            where.append(i)
    return "".join(kept), where


@functools.lru_cache(maxsize=1024)  # the confidential texts of a few contexts (at most ~10 MB)
def words(text: str) -> tuple[str, ...]:
    """The compared form of a text: its folded words, in order. (Cached: the same confidential
    texts are compared with reply after reply.)"""
    text = text or ""
    clean = text if text.isascii() else _visible(unicodedata.normalize("NFKC", text))[0]
    return tuple(_fold(m.group(0)) for m in _WORD.finditer(clean))


def distinctive(tokens: Iterable[str]) -> set[str]:
    return {t for t in tokens if len(t) >= 3 and t not in STOPWORDS}


@dataclass(frozen=True)
class Confidential:
    """A text the player may not see, and the words the player has of their own (never withheld)."""

    text: str
    known: frozenset[str] = field(default_factory=frozenset)


def known_words(*texts: str) -> frozenset[str]:
    """The folded words of the player's own texts."""
    out: set[str] = set()
    for text in texts:
        out.update(words(text))
    return frozenset(out)


def redact(reply: str, confidential: Sequence[str | Confidential]) -> str:
    """The reply with every passage that copies a confidential text replaced by ``[withheld]``."""
    if not reply or not confidential:
        return reply
    secrets = [c if isinstance(c, Confidential) else Confidential(c) for c in confidential]
    for _ in range(4):  # words left on both sides of a withheld passage come closer: look again
        shorter = _redact_once(reply, secrets)
        if shorter == reply:
            break
        reply = shorter
    return reply


def _redact_once(reply: str, confidential: list[Confidential]) -> str:
    clean, where = _visible(reply)
    matches = list(_WORD.finditer(clean))
    tokens = [_fold(m.group(0)) for m in matches]
    hidden = [False] * len(tokens)
    for secret in confidential:
        theirs = words(secret.text)
        if len(theirs) < MIN_RUN:
            continue  # too short to tell a quotation from a coincidence
        _runs(tokens, theirs, secret.known, hidden)
        _bags(tokens, distinctive(theirs) - secret.known, hidden)
    if not any(hidden):
        return reply
    out, at, i = [], 0, 0
    while i < len(matches):
        if not hidden[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(matches) and hidden[j + 1]:
            j += 1
        start = where[matches[i].start()] if matches[i].start() < len(where) else len(reply)
        end = where[matches[j].end() - 1] + 1
        out.append(reply[at:start])
        out.append(WITHHELD)
        at = end
        i = j + 1
    out.append(reply[at:])
    return "".join(out)


def _runs(
    tokens: list[str], theirs: Sequence[str], known: frozenset[str], hidden: list[bool]
) -> None:
    n = min(RUN, len(theirs))
    runs = {tuple(theirs[i : i + n]) for i in range(len(theirs) - n + 1)}
    for i in range(len(tokens) - n + 1):
        run = tuple(tokens[i : i + n])
        if run in runs and not set(run) <= known:
            for j in range(i, i + n):
                hidden[j] = True


def _bags(tokens: list[str], wanted: set[str], hidden: list[bool]) -> None:
    if len(wanted) < BAG:
        return  # too few distinctive words to tell a reordered copy from a coincidence
    for start in range(max(1, len(tokens) - WINDOW + 1)):
        window = range(start, min(len(tokens), start + WINDOW))
        hits = [j for j in window if tokens[j] in wanted]
        if len({tokens[j] for j in hits}) >= BAG:
            for j in range(hits[0], hits[-1] + 1):
                hidden[j] = True
