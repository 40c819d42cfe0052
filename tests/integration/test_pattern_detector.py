"""The pattern detector on texts it was not written against (tests/unit/pattern_unseen.py), with the
real local model for the prototypes: the issue's measure, at least 80 % of jailbreaks tagged with a
category and at most 10 % of ordinary messages. The shares are printed."""

from __future__ import annotations

import pytest

from core.memory.embedders.local import shared_local_embedder
from core.memory.patterns import CATEGORIES, classify
from core.memory.prototypes import PrototypeDetector
from tests.unit.pattern_unseen import (
    FRESH_JAILBREAKS,
    FRESH_LABELS,
    FRESH_ORDINARY,
    JAILBREAKS,
    ORDINARY,
)

SETS = {
    "written after the rules": (JAILBREAKS, ORDINARY),
    "fresh": (FRESH_JAILBREAKS, FRESH_ORDINARY),
}


@pytest.mark.parametrize("name", list(SETS))
async def test_unseen_jailbreaks_are_tagged_and_ordinary_chat_is_not(name, capsys):
    jailbreaks, ordinary = SETS[name]
    detector = PrototypeDetector(shared_local_embedder())
    hybrid_j = await detector.classify_many(jailbreaks)
    hybrid_o = await detector.classify_many(ordinary)
    share = {
        "rules": (
            sum(bool(classify(t)) for t in jailbreaks) / len(jailbreaks),
            sum(bool(classify(t)) for t in ordinary) / len(ordinary),
        ),
        "rules + prototypes": (
            sum(map(bool, hybrid_j)) / len(jailbreaks),
            sum(map(bool, hybrid_o)) / len(ordinary),
        ),
    }
    with capsys.disabled():
        for how, (j, o) in share.items():
            print(
                f"\n{name}: {how}: {j:.0%} of {len(jailbreaks)} jailbreaks tagged, {o:.0%} of {len(ordinary)} ordinary"
            )
    j, o = share["rules + prototypes"]
    missed = [t[:80] for t, c in zip(jailbreaks, hybrid_j, strict=True) if not c]
    flagged = [t[:80] for t, c in zip(ordinary, hybrid_o, strict=True) if c]
    assert j >= 0.8, missed
    assert o <= 0.1, flagged


async def test_an_attempt_nothing_matches_is_other():
    detector = PrototypeDetector(shared_local_embedder())
    assert await detector.classify_many(["the weather is nice today"], attack=True) == [["other"]]


async def test_per_category_precision_and_recall_on_the_fresh_set(capsys):
    """Printed, not held to a floor: a few texts per category only."""
    assert len(FRESH_LABELS) == len(FRESH_JAILBREAKS)
    detector = PrototypeDetector(shared_local_embedder())
    got = await detector.classify_many(FRESH_JAILBREAKS + FRESH_ORDINARY)
    truth = FRESH_LABELS + [set()] * len(FRESH_ORDINARY)
    lines = [f"{'category':<26} {'precision':>9} {'recall':>7} {'cases':>6}"]
    for c in CATEGORIES:
        tp = sum(c in g and c in t for g, t in zip(got, truth, strict=True))
        fp = sum(c in g and c not in t for g, t in zip(got, truth, strict=True))
        fn = sum(c not in g and c in t for g, t in zip(got, truth, strict=True))
        p = f"{tp / (tp + fp):.2f}" if tp + fp else "-"
        r = f"{tp / (tp + fn):.2f}" if tp + fn else "-"
        lines.append(f"{c:<26} {p:>9} {r:>7} {tp + fn:>6}")
    with capsys.disabled():
        print("\nfresh set, rules + prototypes:\n" + "\n".join(lines))
    assert any(got)
