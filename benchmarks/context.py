"""Part 4: what an attempt's context costs today, on the stored history: the player's recent
exchanges (what the attempt path reads) plus the top-5 similar attacks for the new message."""

from __future__ import annotations

import random
import time

from benchmarks.history import SYNTHETIC_MODEL, History
from benchmarks.stats import latency_figures
from core.app import App
from core.memory.store import similar_attacks
from core.services.attempts import _history

K = 5
AFTER_EVERYTHING = 2**62  # attempt id bound: the player's latest exchanges


async def measure(app: App, history: History, samples: int, ef_search: int) -> tuple[dict, dict, list[str]]:
    rng = random.Random(5)
    times: list[float] = []
    turns = similar = 0
    for i in range(samples):
        player_id = rng.choice(history.player_ids)
        query = history.queries[i % len(history.queries)]
        started = time.perf_counter()
        async with app.uow() as uow:
            exchanges = await _history(uow.conn, history.bounty_id, player_id, AFTER_EVERYTHING)
            found = await similar_attacks(uow.conn, query, k=K, model=SYNTHETIC_MODEL, ef_search=ef_search)
        times.append(time.perf_counter() - started)
        turns += len(exchanges)
        similar += len(found)
    figures = {
        **latency_figures("context", times),
        "context_turns_avg": round(turns / samples, 1) if samples else None,
        "context_similar_avg": round(similar / samples, 1) if samples else None,
    }
    parameters = {"samples": samples, "ef_search": ef_search, "history_rows": history.rows}
    notes = [
        "context: no context builder exists yet (memory issue); measured = the player's recent exchanges "
        "(core.services.attempts._history) + the top-5 similar attacks search, in one transaction. "
        "Embedding the new attack is NOT included yet (no local embedding model installed); a synthetic "
        "query embedding is used.",
    ]
    return figures, parameters, notes
