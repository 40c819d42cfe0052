"""The context builder (SPEC §5): what the guardian sees besides its secret prompt, within a token
budget, in three tiers:

- immediate: the player's own last 10 exchanges in this round (the conversation turns);
- recent: the round's last 50 answered attempts, the latest verbatim and the rest as counts when
  they do not fit, plus the summary of the round's older attempts;
- all-time: pattern statistics (this round and all rounds), the most similar past attacks with how
  the guardian answered them, and the summary of this player's older attempts.

Tokens are estimated as one per three characters (conservative for English, about right for code
and most other languages); the budget holds for that estimate. Each tier has a share of the budget;
what a tier leaves unused goes to the next.

Only attempts reach the context: what players paid to send, and the guardian's answers. Other
players' texts reach the guardian only inside the quoted-history block (core/memory/quoting.py).
Those from rounds not yet revealed are marked confidential, and ``redact``
(core/memory/redaction.py) withholds any copy of them from the guardian's reply before a player
sees it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from core.memory import quoting
from core.memory.patterns import LABELS
from core.memory.redaction import WITHHELD, Confidential, redact  # noqa: F401 (the reply filter)
from core.memory.stats import PatternCount
from core.ports.guardian import Turn

SHARES = (
    ("immediate", 0.35),
    ("similar", 0.25),
    ("stats", 0.10),
    ("recent", 0.20),
    ("summaries", 0.10),
)
ITEM_CHARS = 280  # an attack's text in a list
REPLY_CHARS = 160


def tokens(text: str) -> int:
    return (len(text) + 2) // 3


def clip(text: str, chars: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


class PastAttack(NamedTuple):  # a tuple: made ~60 times an attempt, and a cache key
    attempt_id: int
    bounty_id: int
    player_id: int
    number: int
    message: str
    reply: str | None
    status: str
    categories: tuple[str, ...] = ()
    revealed: bool = False  # its round has ended: the text is public
    similarity: float | None = None


@dataclass(frozen=True)
class Inputs:
    player_id: int
    history: tuple[Turn, ...]  # the player's own exchanges, oldest first
    similar: Sequence[PastAttack] = ()
    round_stats: Sequence[PatternCount] = ()
    all_time_stats: Sequence[PatternCount] = ()
    recent: Sequence[PastAttack] = ()  # latest first
    round_summary: str | None = None
    thread_summary: str | None = None


@dataclass
class Built:
    text: str | None
    history: tuple[Turn, ...]
    tokens: int
    confidential: list[str] = field(default_factory=list)
    sections: dict[str, int] = field(default_factory=dict)  # tokens used per tier
    similar_shown: int = 0


def _outcome(a: PastAttack) -> str:
    return {
        "won": "won the round",
        "late": "answered after the round ended",
        "rejected": "rejected",
    }.get(a.status, a.status)


def _fit(lines: Iterable[str], budget: int) -> tuple[list[str], int]:
    """The first lines that fit in ``budget`` tokens. ``lines`` may be made lazily: none is made
    after the first that does not fit."""
    kept, used = [], 0
    for line in lines:
        cost = tokens(line) + 1
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    return kept, used


def _past_entry(a: PastAttack, own: bool, **extra: object) -> dict[str, object]:
    fields: dict[str, object] = {"by": "this player" if own else "another player"}
    fields.update(extra)
    fields["outcome"] = _outcome(a)
    if a.categories:
        fields["techniques"] = [LABELS.get(c, c) for c in a.categories]
    return fields


@functools.lru_cache(maxsize=512)  # ten rounds' recent attempts (at most ~5 MB)
def _recent_line(a: PastAttack) -> str:
    """One of the round's recent attempts by others, as a line (cached: the same recent attempts
    are in the context of every attempt of a busy round)."""
    fields = _past_entry(a, False, attempt=a.number + 1)
    fields["text"] = quoting.neutralise(clip(a.message, ITEM_CHARS // 2))
    return quoting.entry(section="recent attempt", **fields)


def build(inputs: Inputs, budget: int) -> Built:
    """Assemble the context within ``budget`` tokens (history turns included): the player's own
    exchanges as turns, and everything else as one quoted-history block (core/memory/quoting.py)."""
    shares = dict(SHARES)
    spare = 0
    used_total = tokens(quoting.block([])) + 2
    budget_left = budget - used_total
    sections: dict[str, int] = {}
    confidential: list[str] = []

    def allowance(name: str) -> int:
        return int(budget_left * shares[name]) + spare

    # immediate: keep the newest exchanges that fit
    allow = allowance("immediate")
    kept_turns: list[Turn] = []
    used = 0
    pairs = [inputs.history[i : i + 2] for i in range(0, len(inputs.history), 2)]
    for pair in reversed(pairs):
        cost = sum(tokens(t.text) + 4 for t in pair)
        if used + cost > allow:
            break
        kept_turns[:0] = pair
        used += cost
    sections["immediate"] = used
    spare = allow - used

    def own(a: PastAttack) -> bool:
        return a.player_id == inputs.player_id

    def note_confidential(a: PastAttack) -> None:
        if not a.revealed and not own(a):
            confidential.append(a.message)

    lines: list[str] = []
    own_texts = {t.text for t in inputs.history if t.role == "player"}

    # all-time: the most similar past attacks and how they were answered
    allow = allowance("similar")
    shown = [a for a in inputs.similar if a.message not in own_texts]  # own: in the conversation

    def similar_lines() -> Iterator[str]:
        for a in shown:
            fields = _past_entry(
                a,
                own(a),
                section="similar attack",
                **({"similarity": round(a.similarity, 2)} if a.similarity is not None else {}),
            )
            fields["text"] = quoting.neutralise(clip(a.message, ITEM_CHARS))
            fields["your_answer"] = quoting.neutralise(clip(a.reply or "", REPLY_CHARS))
            yield quoting.entry(section=fields.pop("section"), **fields)

    kept, used = _fit(similar_lines(), allow)
    lines += kept
    for a in shown[: len(kept)]:
        note_confidential(a)
    sections["similar"] = used
    similar_shown = len(kept)
    spare = allow - used

    # all-time: pattern statistics (our own counts)
    allow = allowance("stats")

    def stat_line(scope: str, stats: Sequence[PatternCount]) -> str:
        counts = [{"technique": s.label, "attempts": s.attempts, "won": s.wins} for s in stats]
        return quoting.entry(section="techniques", scope=scope, counts=counts)

    candidates = []
    if inputs.round_stats:
        candidates.append(stat_line("this round", inputs.round_stats))
    if inputs.all_time_stats:
        candidates.append(stat_line("all rounds", inputs.all_time_stats))
    kept, used = _fit(candidates, allow)
    lines += kept
    sections["stats"] = used
    spare = allow - used

    # recent: the round's last attempts by others, latest first; the rest as counts
    allow = allowance("recent")
    recent = [a for a in inputs.recent if not own(a)]  # the player's own are the conversation

    kept, used = _fit(map(_recent_line, recent), allow - 40)
    if kept:
        lines += kept
        rest = recent[len(kept) :]
        if rest:
            counts: dict[str, int] = {}
            for a in rest:
                for c in a.categories or ("unclassified",):
                    counts[c] = counts.get(c, 0) + 1
            top = {
                LABELS.get(c, c): n for c, n in sorted(counts.items(), key=lambda kv: -kv[1])[:4]
            }
            more = quoting.entry(
                section="earlier attempts not shown",
                count=len(rest),
                techniques=top,
                any_won=any(a.status == "won" for a in rest),
            )
            if tokens(more) + 1 <= allow - used:
                lines.append(more)
                used += tokens(more) + 1
        for a in recent[: len(kept)]:
            note_confidential(a)
    sections["recent"] = used
    spare = allow - used

    # summaries of old threads (written from players' texts: quoted like them)
    allow = allowance("summaries")
    candidates_: list[tuple[str, str]] = []
    if inputs.round_summary:
        candidates_.append(("earlier in this round", inputs.round_summary))
    if inputs.thread_summary:
        candidates_.append(("this player's older attempts", inputs.thread_summary))
    used = 0
    for of, summary in candidates_:
        room = allow - used
        if room <= 30:
            break
        text_ = quoting.neutralise(summary)
        line = quoting.entry(section="summary", of=of, summary=text_)
        while tokens(line) + 1 > room and text_:
            text_ = clip(text_, max(1, len(text_) - max(8, (tokens(line) + 1 - room) * 3)))
            line = quoting.entry(section="summary", of=of, summary=text_)
        if tokens(line) + 1 > room:
            break
        lines.append(line)
        used += tokens(line) + 1
    if inputs.round_summary and used:
        confidential.append(inputs.round_summary)
    sections["summaries"] = used

    if not lines:
        text_out = None
        context_tokens = 0
    else:
        text_out = quoting.block(lines)
        context_tokens = tokens(text_out)
    history_tokens = sum(tokens(t.text) + 4 for t in kept_turns)
    return Built(
        text_out,
        tuple(kept_turns),
        context_tokens + history_tokens,
        confidential,
        sections,
        similar_shown,
    )
