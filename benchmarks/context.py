"""Part 4: building an attempt's context on the stored history with the memory on, the new attack's
embedding by the real local model included: the player's recent exchanges (what the attempt path
reads) and ``Memory.recall`` (embedding, similar attacks, statistics, the round's recent attempts,
summaries, the token budget)."""

from __future__ import annotations

import random
import time

from benchmarks.history import History
from benchmarks.memory import real_texts
from benchmarks.stats import latency_figures
from core.app import App
from core.memory.service import Memory
from core.ports.guardian import Turn
from core.services.attempts import HISTORY_TURNS

AFTER_EVERYTHING = 2**62  # attempt id bound: the player's latest exchanges


async def _history(conn, bounty_id: int, player_id: int, before_id: int) -> tuple[Turn, ...]:
    """The player's last exchanges of the round, as the payment reads them for the guardian."""
    rows = (
        await conn.execute(
            "SELECT message, reply FROM attempts WHERE bounty_id = :b AND player_id = :p AND id < :id "
            "AND status IN ('rejected','late') ORDER BY id DESC LIMIT :n",
            {"b": bounty_id, "p": player_id, "id": before_id, "n": HISTORY_TURNS},
        )
    ).all()
    turns: list[Turn] = []
    for row in reversed(rows):
        turns += [Turn("player", row.message), Turn("guardian", row.reply or "")]
    return tuple(turns)


async def measure(
    app: App, memory: Memory, history: History, samples: int
) -> tuple[dict, dict, list[str]]:
    rng = random.Random(5)
    texts = real_texts(samples, seed=21)
    times: list[float] = []
    turns = similar = used = 0
    for i in range(samples):
        player_id = rng.choice(history.player_ids)
        started = time.perf_counter()
        async with app.uow() as uow:
            exchanges = await _history(uow.conn, history.bounty_id, player_id, AFTER_EVERYTHING)
        recall = await memory.recall(
            app,
            bounty_id=history.bounty_id,
            player_id=player_id,
            message=texts[i],
            history=exchanges,
        )
        times.append(time.perf_counter() - started)
        turns += len(recall.history)
        similar += recall.similar_shown
        used += recall.tokens
    figures = {
        **latency_figures("context", times),
        "context_turns_avg": round(turns / samples, 1) if samples else None,
        "context_similar_avg": round(similar / samples, 1) if samples else None,
        "context_tokens_avg": round(used / samples) if samples else None,
    }
    parameters = {
        "samples": samples,
        "history_rows": history.rows,
        "model": memory.embedder.model,
        "budget_tokens": memory.settings.MEMORY_CONTEXT_TOKENS,
    }
    notes = [
        "context: per attempt = the player's recent exchanges + Memory.recall: the new attack embedded by the real "
        "local model (one call, texts never seen before), the top similar attacks over the stored history, "
        "pattern statistics, the round's last 50 attempts, summaries, within the token budget.",
    ]
    return figures, parameters, notes
