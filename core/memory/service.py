"""The guardian's memory on the attempt path (ENABLE_ENHANCED_CONTEXT): embed the new attack once,
while its context is built, before the guardian answers; note what was recalled and enqueue the
background work (storing the vector, classifying, statistics, summaries) in the verdict's
transaction, so a rolled-back attempt leaves no job and a committed one is never lost."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.db import Conn
from core.memory import context as ctx
from core.memory.redaction import Confidential, known_words
from core.memory.stats import ALL_TIME, PatternCount
from core.memory.store import similar_attacks
from core.ports.embeddings import Embedder, EmbeddingsUnavailable
from core.ports.guardian import Turn
from core.services import outbox

if TYPE_CHECKING:
    from core.app import App
    from core.settings import Settings

log = logging.getLogger(__name__)

COUNT_CAP = 20  # similar earlier attempts counted at most (the reply says "20 or more")
RECENT = 50
ROUND_SUMMARY_EVERY = 25  # attempts of a round between two summaries of its older attempts
THREAD_SUMMARY_EVERY = 10

EMBED_JOB = "bounty.memory.embed"
CLASSIFY_JOB = "bounty.memory.classify"
SUMMARISE_JOB = "bounty.memory.summarise"


@dataclass(frozen=True)
class Recall:
    """What the memory gave the guardian for one attempt."""

    context: str | None
    history: tuple[Turn, ...]
    similar_count: int  # earlier attempts at least ``threshold`` similar (capped at COUNT_CAP)
    threshold: float
    model: str | None  # None: the embedding failed, no similar attacks were searched
    confidential: tuple[Confidential, ...]
    tokens: int
    similar_shown: int = 0  # similar past attacks put in the context


_DETAILS = (
    "SELECT 's' AS kind, a.id, a.bounty_id, a.player_id, a.number, a.message, a.reply, a.status, m.categories, "
    "b.status NOT IN ('active','paused') AS revealed FROM attempts a JOIN bounties b ON b.id = a.bounty_id "
    "LEFT JOIN attempt_memory m ON m.attempt_id = a.id WHERE a.id = ANY(CAST(:ids AS bigint[])) "
    # The round's newest answered attempts by others: the limit applies before the join, so only
    # ``recent`` rows are read, walking the (bounty_id, created_at) index backwards. (Ordered by id,
    # the whole round was read and joined first: 7.5 ms of PostgreSQL CPU an attempt at 2,000
    # attempts, growing with the round.)
    "UNION ALL (SELECT 'r', a.id, a.bounty_id, a.player_id, a.number, a.message, a.reply, a.status, m.categories, "
    "false FROM (SELECT * FROM attempts WHERE bounty_id = :b AND status IN ('rejected','won','late') "
    "AND player_id <> :p ORDER BY created_at DESC, id DESC LIMIT :recent) a "
    "LEFT JOIN attempt_memory m ON m.attempt_id = a.id ORDER BY a.created_at DESC, a.id DESC)"
)
_AGGREGATES = (
    "SELECT (SELECT json_agg(json_build_array(bounty_id, category, attempts, wins)) FROM ("
    "  (SELECT * FROM pattern_stats WHERE bounty_id = :b AND attempts > 0 ORDER BY attempts DESC, category LIMIT 6) "
    "  UNION ALL (SELECT * FROM pattern_stats WHERE bounty_id = :all AND attempts > 0 "
    "  ORDER BY attempts DESC, category LIMIT 6)) s) AS stats, "
    "(SELECT json_agg(json_build_array(scope, text)) FROM memory_summaries WHERE bounty_id = :b "
    "  AND ((scope = 'round' AND player_id IS NULL) OR (scope = 'thread' AND player_id = :p))) AS summaries"
)


class Memory:
    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder

    def warm_up(self) -> None:
        """Load the model now (synchronous: run it in a thread at start), not on a player's attempt.
        A model that cannot load is logged; attempts then go on without similar attacks."""
        try:
            self.embedder.warm_up()
        except EmbeddingsUnavailable as exc:
            log.error("the embedding model is unavailable: %s", exc)

    async def recall(
        self, app: App, *, bounty_id: int, player_id: int, message: str, history: tuple[Turn, ...]
    ) -> Recall:
        """The enhanced context for a new attack. Never fails the attempt: without the embedding (the
        provider is down) it recalls without similar attacks; on any other error, nothing."""
        threshold = self.settings.MEMORY_SIMILARITY_THRESHOLD
        try:
            return await self._recall(app, bounty_id, player_id, message, history, threshold)
        except Exception:
            log.exception("the memory failed for an attempt; the guardian answers without it")
            return Recall(None, history, 0, threshold, None, (), 0)

    async def _recall(
        self,
        app: App,
        bounty_id: int,
        player_id: int,
        message: str,
        history: tuple[Turn, ...],
        threshold: float,
    ) -> Recall:
        k = self.settings.MEMORY_SIMILAR_K
        try:
            vector: list[float] | None = await self.embedder.embed_one(message)
        except EmbeddingsUnavailable as exc:
            log.warning("no embedding for an attempt (%s); recalled without similar attacks", exc)
            vector = None
        async with app.uow() as uow:
            conn = uow.conn
            similar = []
            if vector is not None:
                similar = await similar_attacks(
                    conn, vector, k=max(k, COUNT_CAP), model=self.embedder.model
                )
            rows = (
                await conn.execute(
                    _DETAILS,
                    {
                        "ids": [s.attempt_id for s in similar[: k + 5]],
                        "b": bounty_id,
                        "p": player_id,
                        "recent": RECENT,
                    },
                )
            ).all()
            aggregates = (
                await conn.execute(_AGGREGATES, {"b": bounty_id, "all": ALL_TIME, "p": player_id})
            ).one()
        found = {r.id: r for r in rows if r.kind == "s"}
        past = []
        for s in similar[: k + 5]:
            r = found.get(s.attempt_id)
            if r is not None and r.status in ("rejected", "won", "late"):
                past.append(_past(r, s.similarity))
        recent = [_past(r, None) for r in rows if r.kind == "r"]
        round_stats: list[PatternCount] = []
        all_time: list[PatternCount] = []
        for b, category, attempts, wins in aggregates.stats or []:
            (round_stats if b == bounty_id else all_time).append(
                PatternCount(category, int(attempts), int(wins))
            )
        summaries = dict(aggregates.summaries or [])
        built = ctx.build(
            ctx.Inputs(
                player_id=player_id,
                history=history,
                similar=past[:k],
                round_stats=round_stats[:6],
                all_time_stats=all_time[:6],
                recent=recent,
                round_summary=summaries.get("round"),
                thread_summary=summaries.get("thread"),
            ),
            self.settings.MEMORY_CONTEXT_TOKENS,
        )
        count = sum(s.similarity >= threshold for s in similar)
        # the player's own words are never withheld from a reply to them
        known = known_words(message, *(t.text for t in history if t.role == "player"))
        return Recall(
            built.text,
            built.history,
            count,
            threshold,
            self.embedder.model if vector else None,
            tuple(Confidential(text, known) for text in built.confidential),
            built.tokens,
            built.similar_shown,
        )

    async def note(
        self,
        conn: Conn,
        recall: Recall,
        *,
        attempt_id: int,
        bounty_id: int,
        player_id: int,
        number: int,
        history_turns: int,
    ) -> None:
        """In the verdict's transaction: what was recalled, and the background work of this attempt."""
        await conn.execute(
            (
                "INSERT INTO attempt_memory (attempt_id, enhanced_context, similar_count, similarity_threshold, "
                "embedding_model) VALUES (:id, true, :n, :t, :m) ON CONFLICT (attempt_id) DO NOTHING"
            ),
            {"id": attempt_id, "n": recall.similar_count, "t": recall.threshold, "m": recall.model},
        )
        await enqueue_learning(conn, attempt_id)
        for job in summaries_due(bounty_id, player_id, number, history_turns):
            await outbox.enqueue_job(conn, SUMMARISE_JOB, key=job.pop("key"), **job)


async def enqueue_learning(conn: Conn, attempt_id: int) -> None:
    """Store the attempt's vector, classify it and count it: two jobs, each run once."""
    await outbox.enqueue_job(
        conn, EMBED_JOB, key=f"memory.embed:{attempt_id}", attempt_id=attempt_id
    )
    await outbox.enqueue_job(
        conn, CLASSIFY_JOB, key=f"memory.classify:{attempt_id}", attempt_id=attempt_id
    )


def summaries_due(bounty_id: int, player_id: int, number: int, history_turns: int) -> list[dict]:
    """Summary jobs this attempt makes due: the round's every ROUND_SUMMARY_EVERY attempts once it
    has more than its recent window, the player's thread every so often once their window is full."""
    jobs = []
    if number >= RECENT and number % ROUND_SUMMARY_EVERY == 0:
        jobs.append(
            {
                "key": f"memory.summary:round:{bounty_id}:{number // ROUND_SUMMARY_EVERY}",
                "bounty_id": bounty_id,
                "player_id": None,
            }
        )
    if (
        history_turns >= 2 * 10
    ):  # the key makes it once per THREAD_SUMMARY_EVERY attempts of the round
        jobs.append(
            {
                "key": f"memory.summary:thread:{bounty_id}:{player_id}:{number // THREAD_SUMMARY_EVERY}",
                "bounty_id": bounty_id,
                "player_id": player_id,
            }
        )
    return jobs


def _past(r, similarity: float | None) -> ctx.PastAttack:
    return ctx.PastAttack(
        r.id,
        r.bounty_id,
        r.player_id,
        r.number,
        r.message,
        r.reply,
        r.status,
        tuple(r.categories or ()),
        bool(r.revealed),
        similarity,
    )


def similar_phrase(count: int, threshold: float) -> str:
    """How an outcome tells the player what the guardian recognised (semantic similarity)."""
    if count == 0:
        return f"The guardian recognised no similar earlier attempt (cosine similarity of at least {threshold:.2f})."
    shown = f"{COUNT_CAP} or more" if count >= COUNT_CAP else str(count)
    what = "similar earlier attempt" + ("" if count == 1 else "s")
    return (
        f"The guardian recognised {shown} {what} (cosine similarity of at least {threshold:.2f})."
    )


def tokens_of(history: Sequence[Turn]) -> int:
    return sum(ctx.tokens(t.text) + 4 for t in history)
