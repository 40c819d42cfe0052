"""Summaries of attempts that fell out of the guardian's windows: a player's attempts in a round
older than their last 10 ("thread"), and a round's attempts older than its last 50 ("round").

Claude writes them when configured (MEMORY_SUMMARIES=auto with ANTHROPIC_API_KEY, or =anthropic);
otherwise, or when the API fails, an extractive summary: the counts of techniques and outcomes and
the few most characteristic sentences (scored by the frequency of their content words, Luhn's
method), verbatim. A summary job run twice writes the same row.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.memory.context import clip
from core.memory.patterns import LABELS

if TYPE_CHECKING:
    from core.app import App
    from core.settings import Settings

log = logging.getLogger(__name__)

THREAD_WINDOW = 10  # the player's latest attempts are in the conversation itself
ROUND_WINDOW = 50  # the round's latest attempts are in the recent tier
MAX_COVERED = 400  # the newest of the older attempts that a summary reads
SENTENCES = 4
SUMMARY_CHARS = 900
STOPWORDS = frozenset(
    "a an the and or but if of to in on at for with by from as is are was were be been being it its this that these "
    "those i you he she we they me my your our their his her them us do does did not no so than then there here "
    "what which who whom will would can could should shall may might must just now please all any some".split()
)
SYSTEM = (
    "You summarise attacks that players sent to an AI guardian of a prize vault, for the guardian's own memory. "
    "In at most 120 words: the techniques used, how they evolved, and what the guardian answered. Do not quote "
    "more than a few words of any attack. Plain text, no preamble."
)


@dataclass(frozen=True)
class Covered:
    attempt_id: int
    message: str
    reply: str | None
    status: str
    categories: tuple[str, ...]


def _sentences(message: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?。！？])\s+|\n+", message) if len(s.strip()) > 8]


def extractive(items: Sequence[Covered]) -> str:
    """Counts of techniques and outcomes, then the most characteristic sentences, verbatim."""
    techniques = Counter(c for it in items for c in (it.categories or ("unclassified",)))
    won = sum(it.status == "won" for it in items)
    head = f"{len(items)} attempts; techniques: " + ", ".join(
        f"{LABELS.get(c, c)} {n}" for c, n in techniques.most_common(5)
    )
    head += f"; {won} won." if won else "; none won."
    words = Counter(
        w
        for it in items
        for w in re.findall(r"\w+", it.message.lower())
        if w not in STOPWORDS and len(w) > 2
    )
    scored: list[tuple[float, int, str]] = []
    seen: set[str] = set()
    for i, it in enumerate(items):
        for s in _sentences(it.message):
            key = s.lower()
            if key in seen:
                continue
            seen.add(key)
            content = [w for w in re.findall(r"\w+", key) if w not in STOPWORDS and len(w) > 2]
            if content:
                scored.append((sum(words[w] for w in content) / len(content) ** 0.5, -i, s))
    best = sorted(scored, reverse=True)[:SENTENCES]
    lines = [head] + [f"“{clip(s, 160)}”" for _, _, s in best]
    return clip(" ".join(lines), SUMMARY_CHARS)


def _use_claude(settings: Settings) -> bool:
    return settings.MEMORY_SUMMARIES != "extractive" and settings.ANTHROPIC_API_KEY is not None


async def _claude(settings: Settings, items: Sequence[Covered]) -> str | None:
    import anthropic

    listing = "\n".join(
        f"- [{', '.join(it.categories) or 'unclassified'}; {it.status}] {clip(it.message, 300)} -> guardian: "
        f"{clip(it.reply or '', 120)}"
        for it in items
    )
    key = settings.ANTHROPIC_API_KEY.get_secret_value() if settings.ANTHROPIC_API_KEY else ""
    client = anthropic.AsyncAnthropic(
        api_key=key, base_url=settings.ANTHROPIC_BASE_URL, timeout=60, max_retries=1
    )
    try:
        message = await client.messages.create(
            model=settings.ANTHROPIC_MODEL,
            max_tokens=400,
            system=SYSTEM,
            messages=[{"role": "user", "content": f"The attacks, oldest first:\n{listing}"}],
        )
    except (anthropic.AnthropicError, ValueError) as exc:
        log.warning(
            "summary by Claude failed (%s); using the extractive summary", type(exc).__name__
        )
        return None
    finally:
        await client.close()
    texts = [
        getattr(b, "text", "")
        for b in getattr(message, "content", None) or []
        if getattr(b, "type", "") == "text"
    ]
    summary = " ".join(t.strip() for t in texts if t.strip())
    return clip(summary, SUMMARY_CHARS) if summary else None


async def summarise(app: App, bounty_id: int, player_id: int | None = None) -> str | None:
    """Write (or rewrite) the summary of a thread (``player_id``) or of a round; returns its text,
    or None when nothing has fallen out of the window yet."""
    window = THREAD_WINDOW if player_id is not None else ROUND_WINDOW
    async with app.uow() as uow:
        rows = (
            await uow.conn.execute(
                (
                    "SELECT a.id, a.message, a.reply, a.status, m.categories FROM attempts a "
                    "LEFT JOIN attempt_memory m ON m.attempt_id = a.id WHERE a.bounty_id = :b "
                    "AND (CAST(:p AS bigint) IS NULL OR a.player_id = :p) AND a.status IN ('rejected','won','late') "
                    "ORDER BY a.id DESC OFFSET :w LIMIT :n"
                ),
                {"b": bounty_id, "p": player_id, "w": window, "n": MAX_COVERED},
            )
        ).all()
    if not rows:
        return None
    items = [
        Covered(r.id, r.message, r.reply, r.status, tuple(r.categories or ()))
        for r in reversed(rows)
    ]
    summary, method = None, "extractive"
    if _use_claude(app.settings):
        summary = await _claude(app.settings, items)
        method = "anthropic" if summary else method
    if summary is None:
        summary = extractive(items)
    async with app.uow() as uow:
        await uow.conn.execute(
            (
                "INSERT INTO memory_summaries (scope, bounty_id, player_id, upto_attempt_id, attempts_covered, text, "
                "method) VALUES (:s, :b, :p, :u, :n, :t, :m) ON CONFLICT ON CONSTRAINT uq_memory_summaries_scope "
                "DO UPDATE SET upto_attempt_id = EXCLUDED.upto_attempt_id, attempts_covered = EXCLUDED.attempts_covered, "
                "text = EXCLUDED.text, method = EXCLUDED.method, updated_at = now()"
            ),
            {
                "s": "thread" if player_id is not None else "round",
                "b": bounty_id,
                "p": player_id,
                "u": items[-1].attempt_id,
                "n": len(items),
                "t": summary,
                "m": method,
            },
        )
    return summary
