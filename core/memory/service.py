"""The guardian's memory on the attempt path (ENABLE_ENHANCED_CONTEXT): embed the new attack once,
while its context is built, before the guardian answers; note what was recalled and enqueue the
background work (storing the vector, classifying, statistics, summaries) in the verdict's
transaction, so a rolled-back attempt leaves no job and a committed one is never lost."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.db import Conn
from core.memory import context as ctx
from core.memory.redaction import Confidential, known_words
from core.memory.stats import ALL_TIME, ANSWERED, PatternCount
from core.memory.store import SimilarAttack, pack_vector, similar_attacks, vector_literal
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
    vector: tuple[float, ...] | None = None  # the attack's embedding by ``model``


# The recall reads everything in one statement (one round trip, one snapshot, no transaction of
# its own): the nearest stored attacks (``s`` rows: every candidate the index gave, ``kept`` when it
# is the current model's, with the attempt's details for the first ``shown`` kept), the round's
# newest answered attempts by others (``r``), and one ``a`` row whose ``extra`` holds the pattern
# statistics and the summaries. Its sizes are written into the text (``_statement``), not bound:
# with a bound LIMIT the planner's generic plan guessed 10,000 rows and hashed the whole attempts
# table (100 ms); with the numbers in the text the cached plan is the right one.
_FROM_INDEX = (
    # The index's nearest n of every model at the connection's hnsw.ef_search (n <= it): the
    # filter is applied after the scan (core.memory.store), here by ``kept``.
    "WITH c AS MATERIALIZED (SELECT attempt_id, model, embedding <=> CAST(:q AS vector) AS d "
    "FROM attack_embeddings ORDER BY embedding <=> CAST(:q AS vector) LIMIT {n}), "
    "s AS (SELECT attempt_id, d, model = :m AS kept, "
    "row_number() OVER (PARTITION BY model = :m ORDER BY d) AS rank FROM c) "
)
_FROM_IDS = (  # the nearest found by ``similar_attacks`` (the fallback), in their order
    "WITH s AS (SELECT attempt_id, d, true AS kept, rank FROM unnest(CAST(:ids AS bigint[]), "
    "CAST(:ds AS float8[])) WITH ORDINALITY t(attempt_id, d, rank)) "
)
_RECALL = (
    "SELECT 's' AS kind, s.attempt_id AS id, s.d, s.kept, a.bounty_id, a.player_id, a.number, a.message, "
    "a.reply, a.status, m.categories, b.status NOT IN ('active','paused') AS revealed, NULL::json AS extra "
    "FROM s LEFT JOIN attempts a ON a.id = s.attempt_id AND s.kept AND s.rank <= {shown} "
    "LEFT JOIN bounties b ON b.id = a.bounty_id LEFT JOIN attempt_memory m ON m.attempt_id = a.id "
    # The round's newest answered attempts by others: the limit applies before the join, so only
    # ``recent`` rows are read, walking the (bounty_id, created_at) index backwards. (Ordered by id,
    # the whole round was read and joined first: 7.5 ms of PostgreSQL CPU an attempt at 2,000
    # attempts, growing with the round.)
    "UNION ALL (SELECT 'r', a.id, NULL, NULL, a.bounty_id, a.player_id, a.number, a.message, a.reply, "
    "a.status, m.categories, false, NULL FROM (SELECT * FROM attempts WHERE bounty_id = :b "
    "AND status IN ('rejected','won','late') AND player_id <> :p ORDER BY created_at DESC, id DESC "
    "LIMIT {recent}) a LEFT JOIN attempt_memory m ON m.attempt_id = a.id ORDER BY a.created_at DESC, a.id DESC) "
    "UNION ALL SELECT 'a', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "json_build_object('stats', (SELECT json_agg(json_build_array(bounty_id, category, attempts, wins)) FROM ("
    "  (SELECT * FROM pattern_stats WHERE bounty_id = :b AND attempts > 0 ORDER BY attempts DESC, category LIMIT 6) "
    "  UNION ALL (SELECT * FROM pattern_stats WHERE bounty_id = :all AND attempts > 0 "
    "  ORDER BY attempts DESC, category LIMIT 6)) x), "
    "'summaries', (SELECT json_agg(json_build_array(scope, text)) FROM memory_summaries WHERE bounty_id = :b "
    "  AND ((scope = 'round' AND player_id IS NULL) OR (scope = 'thread' AND player_id = :p))))"
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
        wanted, shown = max(k, COUNT_CAP), k + 5
        params = {"b": bounty_id, "p": player_id, "all": ALL_TIME}
        async with app.db.autocommit() as conn:
            rows: list = []
            if vector is not None:
                rows = await _recall_rows(
                    conn,
                    _statement(_FROM_INDEX, wanted, shown),
                    params,
                    q=vector_literal(vector),
                    m=self.embedder.model,
                )
            seen = [r for r in rows if r.kind == "s"]
            if vector is None or (sum(r.kept for r in seen) < wanted and len(seen) == wanted):
                # Another model's vectors took places among the nearest (the history is being
                # re-embedded), or no vector: the filtered search widens as it needs.
                similar = []
                if vector is not None:
                    async with conn.transaction():
                        similar = await similar_attacks(
                            conn, vector, k=wanted, model=self.embedder.model
                        )
                rows = await _recall_rows(
                    conn,
                    _statement(_FROM_IDS, wanted, shown),
                    params,
                    ids=[s.attempt_id for s in similar],
                    ds=[s.distance for s in similar],
                )
        # One pass over the rows, by position (the columns of _RECALL), not by name.
        similar, found, recent, aggregates = [], {}, [], None
        for kind, id_, d, kept, *details, extra in rows:
            if kind == "s":
                if kept:
                    similar.append(SimilarAttack(id_, float(d)))
                    if details[5] in ANSWERED:  # status; None when no details were read
                        found[id_] = details
            elif kind == "r":
                recent.append(_past(id_, details, None))
            else:
                aggregates = extra
        similar.sort(key=lambda s: s.distance)
        past = [
            _past(s.attempt_id, found[s.attempt_id], s.similarity)
            for s in similar[:shown]
            if s.attempt_id in found
        ]
        round_stats: list[PatternCount] = []
        all_time: list[PatternCount] = []
        for b, category, attempts, wins in (aggregates or {}).get("stats") or []:
            (round_stats if b == bounty_id else all_time).append(
                PatternCount(category, int(attempts), int(wins))
            )
        summaries = dict((aggregates or {}).get("summaries") or [])
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
            tuple(vector) if vector else None,
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
        jobs = learning_jobs(attempt_id, recall.model, recall.vector)
        for job in summaries_due(bounty_id, player_id, number, history_turns):
            jobs.append((SUMMARISE_JOB, job.pop("key"), job))
        await outbox.enqueue_jobs(conn, jobs)


@functools.lru_cache(maxsize=16)
def _statement(source: str, n: int, shown: int) -> str:
    return (source + _RECALL).format(n=int(n), shown=int(shown), recent=RECENT)


async def _recall_rows(conn: Conn, statement: str, params: dict, **more) -> list:
    return (await conn.execute(statement, {**params, **more})).all()


def learning_jobs(
    attempt_id: int, model: str | None = None, vector: Sequence[float] | None = None
) -> list[tuple[str, str | None, dict]]:
    """Store the attempt's vector, classify it and count it: two jobs, each run once. The vector
    the attempt path made goes with them (packed float32, ``store.pack_vector``), so the worker
    stores it and classifies with it instead of embedding the text again (a job for another
    model than the worker's embeds it itself)."""
    kwargs: dict = {"attempt_id": attempt_id}
    if model and vector:
        kwargs |= {"model": model, "vector": pack_vector(vector)}
    return [
        (EMBED_JOB, f"memory.embed:{attempt_id}", kwargs),
        (CLASSIFY_JOB, f"memory.classify:{attempt_id}", kwargs),
    ]


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


def _past(attempt_id: int, details: list, similarity: float | None) -> ctx.PastAttack:
    bounty_id, player_id, number, message, reply, status, categories, revealed = details
    return ctx.PastAttack(
        attempt_id,
        bounty_id,
        player_id,
        number,
        message,
        reply,
        status,
        tuple(categories or ()),
        bool(revealed),
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
