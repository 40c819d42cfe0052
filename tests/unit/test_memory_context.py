"""The context builder's budget and tiers, the reply redaction, and when summaries are due."""

from __future__ import annotations

from core.memory import context as ctx
from core.memory.service import summaries_due
from core.memory.stats import PatternCount
from core.ports.guardian import Turn


def _past(i: int, player: int = 2, *, revealed: bool = False) -> ctx.PastAttack:
    return ctx.PastAttack(
        i,
        1,
        player,
        i,
        f"attack number {i} " + "with many words " * 30,
        "No.",
        "rejected",
        ("role-play",),
        revealed,
        0.9,
    )


def test_every_budget_is_kept_and_the_newest_turns_win():
    history = tuple(
        t for i in range(10) for t in (Turn("player", f"mine {i} " * 40), Turn("guardian", "no"))
    )
    inputs = ctx.Inputs(
        player_id=1,
        history=history,
        similar=[_past(i) for i in range(5)],
        round_stats=[PatternCount("role-play", 40, 0)],
        all_time_stats=[PatternCount("other", 9, 1)],
        recent=[_past(100 + i) for i in range(50)],
        round_summary="old " * 500,
        thread_summary="older " * 500,
    )
    for budget in (200, 500, 1_500, 5_000):
        built = ctx.build(inputs, budget)
        used = ctx.tokens(built.text or "") + sum(ctx.tokens(t.text) + 4 for t in built.history)
        assert used <= budget and built.tokens <= budget, (budget, used)
        if built.history:
            assert built.history[-2].text == history[-2].text  # the newest exchange is kept first
    big = ctx.build(inputs, 5_000)
    assert len(big.history) == 20 and big.similar_shown == 5
    assert '"section": "earlier attempts not shown"' in big.text


def test_only_other_players_unrevealed_texts_are_confidential():
    inputs = ctx.Inputs(
        player_id=1, history=(), similar=[_past(1, player=1), _past(2, revealed=True), _past(3)]
    )
    built = ctx.build(inputs, 2_000)
    assert built.confidential == [_past(3).message]


def test_redact_withholds_runs_of_six_words_from_a_secret_and_keeps_the_rest():
    secret = "the quick brown fox jumps over the lazy dog near the river"
    reply = "Nice try. The QUICK brown fox, jumps over the lazy dog! But no."
    assert ctx.redact(reply, [secret]) == f"Nice try. {ctx.WITHHELD}! But no."
    assert (
        ctx.redact("the quick brown fox is here", [secret]) == "the quick brown fox is here"
    )  # 4 words: chance
    assert (
        ctx.redact("open the vault", ["open the vault"]) == "open the vault"
    )  # too short to be a quotation
    assert ctx.redact("", [secret]) == "" and ctx.redact(reply, []) == reply


def test_summaries_are_due_once_windows_fill():
    assert summaries_due(7, 3, 10, 2) == []
    (round_job,) = summaries_due(7, 3, 75, 2)
    assert round_job == {"key": "memory.summary:round:7:3", "bounty_id": 7, "player_id": None}
    thread = summaries_due(7, 3, 61, 20)
    assert thread == [{"key": "memory.summary:thread:7:3:6", "bounty_id": 7, "player_id": 3}]
