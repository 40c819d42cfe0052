"""The memory's background work, called by the Celery tasks (workers/tasks/memory.py). Each takes
ids and is idempotent: run twice, it leaves the same rows.

- ``embed_attempt``: the attack's vector by the current model, stored once (concurrent runs of the
  same job wait for each other on an advisory lock and the second finds the row).
- ``classify_attempt``: rules, prototypes, an LLM's second opinion when keyed; stored and counted once.
- ``catch_up``: everything answered that the memory has not learned yet (rules and prototypes, no
  LLM opinion: that would cost a call per attempt of the history): attempts made with the
  enhanced context off (their path enqueues nothing), and the whole history again after
  EMBEDDINGS_PROVIDER changed. Resumable by construction (it works on what is missing, oldest
  first), one at a time (a session advisory lock), with its progress in the log; when the current
  model covers every attempt, vectors of other models are deleted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.db import locks
from core.db.locks import Lock
from core.memory import opinion
from core.memory.patterns import OTHER, known
from core.memory.prototypes import PrototypeDetector
from core.memory.stats import ANSWERED, record_categories
from core.memory.store import store_embedding
from core.ports.embeddings import Embedder

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)

BATCH = 64


async def embed_attempt(
    app: App, embedder: Embedder, attempt_id: int, vector: list[float] | None = None
) -> bool:
    """Store the attempt's vector by ``embedder.model`` (``vector``: made already, by that model, on
    the attempt path); True if this call stored it."""
    async with app.uow() as uow:
        conn = uow.conn
        await locks.xact(conn, Lock.MEMORY_EMBED, attempt_id)
        row = (
            await conn.execute(
                (
                    "SELECT a.message, a.bounty_id, a.player_id, a.status, EXISTS (SELECT 1 FROM attack_embeddings e "
                    "WHERE e.attempt_id = a.id AND e.model = :m) AS stored FROM attempts a WHERE a.id = :id"
                ),
                {"id": attempt_id, "m": embedder.model},
            )
        ).first()
        if row is None or row.stored or row.status not in ANSWERED or not row.message:
            return False  # (an empty text: erased at its player's request, privacy.erase)
        if vector is None:
            vector = await embedder.embed_one(row.message)
        return await store_embedding(
            conn, attempt_id, row.bounty_id, vector, model=embedder.model, player_id=row.player_id
        )


async def classify_attempt(
    app: App, detector: PrototypeDetector, attempt_id: int, vector: list[float] | None = None
) -> list[str] | None:
    """Tag the attempt and count it in the statistics once; None if it is not an answered attempt."""
    async with app.uow() as uow:
        row = (
            await uow.conn.execute(
                "SELECT message, status FROM attempts WHERE id = :id", {"id": attempt_id}
            )
        ).first()
    if row is None or row.status not in ANSWERED or not row.message:
        return None
    (found,) = await detector.classify_many(
        [row.message], attack=True, vectors=None if vector is None else [vector]
    )
    llm = await opinion.second_opinion(app.settings, row.message)
    categories = known([*found, *(llm or [])])
    if len(categories) > 1 and OTHER in categories:
        categories.remove(OTHER)
    async with app.uow() as uow:
        await record_categories(uow.conn, attempt_id, categories, rules=found, llm=llm)
    return categories


@dataclass
class CatchUp:
    embedded: int = 0
    classified: int = 0
    remaining: int = 0
    deleted_other_models: int = 0
    skipped: bool = False  # another catch-up holds the lock


async def catch_up(
    app: App, embedder: Embedder, detector: PrototypeDetector, *, seconds: float = 50.0
) -> CatchUp:
    """Learn what is missing for up to ``seconds`` (then the next run goes on where this one stopped)."""
    result = CatchUp()
    deadline = time.monotonic() + seconds
    async with locks.session(app.db, Lock.MEMORY_CATCH_UP, wait=False) as held:
        if not held:
            result.skipped = True
            return result
        total = await _missing_vectors(app, embedder.model, count=True)
        if total:
            log.info(
                "memory: %d answered attempts have no %s vector yet; embedding them",
                total,
                embedder.model,
            )
        while True:  # at least one batch per run, however short the run
            batch = await _missing_vectors(app, embedder.model)
            if not batch:
                break
            vectors = await embedder.embed([r.message for r in batch])
            async with app.uow() as uow:
                for r, v in zip(batch, vectors, strict=True):
                    result.embedded += await store_embedding(
                        uow.conn,
                        r.id,
                        r.bounty_id,
                        v,
                        model=embedder.model,
                        player_id=r.player_id,
                    )
            log.info("memory: embedded %d of %d for %s", result.embedded, total, embedder.model)
            if time.monotonic() >= deadline:
                break
        while True:
            rows = await _unclassified(app)
            if not rows:
                break
            # Rules and prototypes only: an LLM's opinion on a whole history would cost a call each.
            found = await detector.classify_many([r.message for r in rows], attack=True)
            async with app.uow() as uow:
                for r, categories in zip(rows, found, strict=True):
                    await record_categories(uow.conn, r.id, categories, rules=categories)
            result.classified += len(rows)
            log.info("memory: classified %d attempts", result.classified)
            if time.monotonic() >= deadline:
                break
        result.remaining = await _missing_vectors(app, embedder.model, count=True)
        if result.remaining == 0:
            async with app.uow() as uow:
                deleted = (
                    await uow.conn.execute(
                        "DELETE FROM attack_embeddings WHERE model <> :m RETURNING 1",
                        {"m": embedder.model},
                    )
                ).all()
            result.deleted_other_models = len(deleted)
            if deleted:
                log.info(
                    "memory: every attempt has a %s vector; deleted %d vectors of other models",
                    embedder.model,
                    len(deleted),
                )
        else:
            log.info(
                "memory: %d attempts still to embed for %s; the next run goes on",
                result.remaining,
                embedder.model,
            )
    return result


async def _missing_vectors(app: App, model: str, *, count: bool = False):
    sql = (
        "FROM attempts a WHERE a.status IN ('rejected','won','late') AND a.message <> '' AND NOT EXISTS "
        "(SELECT 1 FROM attack_embeddings e WHERE e.attempt_id = a.id AND e.model = :m)"
    )
    async with app.uow() as uow:
        if count:
            return (await uow.conn.execute(f"SELECT count(*) {sql}", {"m": model})).scalar_one()
        return (
            await uow.conn.execute(
                f"SELECT a.id, a.message, a.bounty_id, a.player_id {sql} ORDER BY a.id LIMIT :n",
                {"m": model, "n": BATCH},
            )
        ).all()


async def _unclassified(app: App) -> list:
    async with app.uow() as uow:
        return (
            await uow.conn.execute(
                (
                    "SELECT a.id, a.message FROM attempts a LEFT JOIN attempt_memory m ON m.attempt_id = a.id "
                    "WHERE a.status IN ('rejected','won','late') AND a.message <> '' AND m.counted_at IS NULL "
                    "ORDER BY a.id LIMIT :n"
                ),
                {"n": BATCH},
            )
        ).all()
