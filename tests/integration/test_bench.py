"""`bounty bench` end to end, tiny: every part runs through the real CLI entry point on its own
embedded services, and the JSON has the promised shape. Never asserts speed."""

from __future__ import annotations

import json
import numbers
import subprocess
import sys
from pathlib import Path

from benchmarks.report import REQUIRED

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--attempts",
    "20",
    "--players",
    "4",
    "--rate",
    "20",
    "--duration",
    "0.5",
    "--team-players",
    "10",
    "--hot-rounds",
    "2",
    "--search-rows",
    "600",
    "--queries",
    "20",
    "--exact-queries",
    "20",
    "--bot-users",
    "3",
    "--bot-bursts",
    "1",
    "--embed-samples",
    "5",
    "--real-rows",
    "40",
    "--real-queries",
    "5",
    "--enhanced-attempts",
    "8",
]


def test_tiny_bench_writes_every_figure(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "bench",
            *TINY,
            "--data-dir",
            str(tmp_path / "data"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert set(data) == {"commit", "cores", "started_at", "parameters", "notes", "figures"}
    assert isinstance(data["cores"], int) and data["started_at"]
    assert {
        "attempts",
        "hot_pool",
        "search",
        "context",
        "embed",
        "enhanced_attempts",
        "bots",
        "bots_enhanced",
        "run",
    } <= set(data["parameters"])
    figures = data["figures"]
    assert set(REQUIRED) <= set(figures)
    for key, value in figures.items():
        assert value is None or isinstance(value, numbers.Real), (key, value)
    # Every part ran, both bots included: no figure may be missing.
    assert [key for key in REQUIRED if figures[key] is None] == [], data["notes"]
    # Money: every attempt paid once, nothing overdrawn, the ledger balances.
    assert figures["ledger_sum"] == 0
    assert figures["hot_pool_overdrafts"] == 0
    assert figures["ledger_checks_failed"] == 0
    assert figures["attempts_paid"] == 20
    assert (
        figures["hot_pool_debits"] + figures["hot_pool_ran_dry"] == 20
    )  # each attempt paid or ran dry
    assert (
        figures["hot_pool_ran_dry"] > 0
    )  # the pool is sized to run out: the no-overdraft claim is tested
    assert 0 <= figures["search_recall_at_5"] <= 1
    assert figures["context_turns_avg"] > 0 and figures["context_similar_avg"] > 0
    assert 0 <= figures["search_recall_at_5_real"] <= 1 and figures["context_tokens_avg"] <= 1_500
    assert (
        data["parameters"]["enhanced_attempts"]["on"]["paid"] == 8
    )  # every enhanced attempt paid, none crashed
    assert figures["bot_rss_enhanced_mb"] > figures["bot_rss_mb"]  # the model is in that process
    # Where an enhanced attempt's CPU went, beside the run without it: the embedding runs in the
    # model's thread (none without the memory), and the bound it sets on the ratio.
    spent = {
        m: data["parameters"]["enhanced_attempts"][m]["cpu_ms_per_attempt"] for m in ("off", "on")
    }
    assert spent["on"]["bench_other_threads"] > spent["off"]["bench_other_threads"]
    assert all(spent[m]["database"] > 0 and spent[m]["bench_main_thread"] > 0 for m in spent)
    assert figures["attempt_cpu_ms_enhanced"] == spent["on"]["total"]
    assert 0 < figures["attempts_enhanced_ratio_embedding_bound"] < 1
    # The embedder used and its CPU cost a text, beside the figures.
    assert figures["embed_cpu_ms_per_text"] > 0 and figures["embed_cpu_ms_alone"] > 0
    assert data["parameters"]["embed"]["model"] == "local/all-MiniLM-L6-v2@int8"
    assert any(
        n.startswith("embedder: local/all-MiniLM-L6-v2@int8 (onnx-int8") for n in data["notes"]
    )
    assert "embedder: local/all-MiniLM-L6-v2@int8" in done.stdout
    assert figures["telegram_unanswered"] == 0 and figures["discord_unanswered"] == 0
    assert data["parameters"]["bots"]["adapters"] == ["telegram", "discord"]
    # The table names every figure.
    for key in REQUIRED:
        assert key in done.stdout


async def test_the_ceiling_loop_does_exactly_the_work_it_describes(pg_url):
    """One transaction per attempt: the conditional UPDATE of the payer, one INSERT of 4 entries, the
    attempt row; nothing else is sent, and an overdraft moves nothing."""
    from benchmarks.ceiling import STATEMENTS, Ceiling

    async with Ceiling(pg_url, 1) as ceiling:
        await ceiling.fund(2, 1)  # two payers, each with money for two attempts
        assert ceiling.pool is not None
        async with ceiling.pool.acquire() as conn:
            sent: list[str] = []
            conn.add_query_logger(lambda record: sent.append(record.query))
            await ceiling.attempt_on(conn, 0, "release the funds")
            assert sent[0].startswith("BEGIN") and sent[1:] == list(STATEMENTS)
            assert (
                len(STATEMENTS) == 3 and STATEMENTS[1].count("), (") == 3
            )  # 4 entries in one INSERT
            for _ in range(2):
                await ceiling.attempt_on(conn, 0, "again")
            counts = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM bench_ceiling_attempts) AS attempts, "
                "(SELECT count(*) FROM bench_ceiling_entries) AS entries, "
                "(SELECT sum(amount) FROM bench_ceiling_entries) AS total, "
                "(SELECT balance FROM bench_ceiling_accounts WHERE id = 0) AS balance"
            )
    assert ceiling.overdrafts == 1  # the third attempt found no money and moved nothing
    assert (counts["attempts"], counts["entries"], counts["total"], counts["balance"]) == (
        2,
        8,
        0,
        0,
    )
