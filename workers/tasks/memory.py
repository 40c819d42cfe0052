"""The guardian's memory: store an attack's vector, classify it (statistics), summarise old threads,
and catch up on whatever the memory has not learned (attempts made with the enhanced context off,
re-embedding after EMBEDDINGS_PROVIDER changed). Each task takes ids, is idempotent, acknowledges
late (a worker killed mid-task leaves it to be run again), retries transient errors with backoff,
and has a time limit. The embedding model is loaded once per worker process, on first use."""

from __future__ import annotations

import logging
import threading

import asyncpg

from core.memory import jobs, summaries
from core.memory.embedders import make_embedder
from core.memory.embedders.local import shared_local_embedder
from core.memory.prototypes import PrototypeDetector
from core.memory.store import unpack_vector
from core.ports.embeddings import Embedder, EmbeddingsUnavailable
from core.settings import load_settings
from workers.celery_app import celery_app
from workers.runner import run_with_app

TRANSIENT = (
    OSError,
    ConnectionError,
    TimeoutError,
    EmbeddingsUnavailable,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 10,
    "ignore_result": True,
}

log = logging.getLogger(__name__)
_lock = threading.Lock()
_embedder: Embedder | None = None
_detector: PrototypeDetector | None = None


def embedder() -> Embedder:
    """The settings' embedding provider, one per worker process."""
    global _embedder
    with _lock:
        if _embedder is None:
            _embedder = make_embedder(load_settings())
        return _embedder


def detector() -> PrototypeDetector:
    """Prototypes are compared on the local model, whatever EMBEDDINGS_PROVIDER says: their
    thresholds were measured on it."""
    global _detector
    with _lock:
        if _detector is None:
            _detector = PrototypeDetector(shared_local_embedder(load_settings().EMBEDDINGS_THREADS))
        return _detector


def given(model: str | None, vector: str | None, wanted: str) -> list[float] | None:
    """The attempt path's vector if it is ``wanted``'s model (else the job embeds the text)."""
    if model != wanted or not vector:
        return None
    try:
        return unpack_vector(vector)
    except ValueError:
        log.warning("a memory job carried a malformed vector; embedding the text instead")
        return None


@celery_app.task(name="bounty.memory.embed", time_limit=120, soft_time_limit=100, **RETRY)
def embed(attempt_id: int, model: str | None = None, vector: str | None = None) -> bool:
    """Store the attempt's vector by the current model; True if this run stored it."""
    current = embedder()
    made = given(model, vector, current.model)
    return run_with_app(lambda app: jobs.embed_attempt(app, current, attempt_id, made))


@celery_app.task(name="bounty.memory.classify", time_limit=120, soft_time_limit=100, **RETRY)
def classify(
    attempt_id: int, model: str | None = None, vector: str | None = None
) -> list[str] | None:
    """Tag the attempt with pattern categories and count it in the statistics (once)."""
    found = detector()
    made = given(model, vector, found.embedder.model)
    return run_with_app(lambda app: jobs.classify_attempt(app, found, attempt_id, made))


@celery_app.task(name="bounty.memory.summarise", time_limit=180, soft_time_limit=150, **RETRY)
def summarise(bounty_id: int, player_id: int | None = None) -> str | None:
    """Summarise a player's older attempts in a round (``player_id``), or the round's older attempts."""
    return run_with_app(lambda app: summaries.summarise(app, bounty_id, player_id))


@celery_app.task(
    name="bounty.memory.catch_up", time_limit=120, soft_time_limit=100, ignore_result=True
)
def catch_up() -> dict:
    """Learn what the memory is missing for up to a minute (the beat schedule runs it every minute)."""
    model, found = embedder(), detector()
    result = run_with_app(lambda app: jobs.catch_up(app, model, found, seconds=50))
    return result.__dict__
