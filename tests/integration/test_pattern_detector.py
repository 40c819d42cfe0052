"""The pattern detector on texts it was not written against (tests/unit/pattern_unseen.py), with the
real local model for the prototypes: the issue's measure, at least 80 % of jailbreaks tagged with a
category and at most 10 % of ordinary messages. The shares are printed."""

from __future__ import annotations

import pytest

from core.memory.embedders.local import shared_local_embedder
from core.memory.patterns import classify
from core.memory.prototypes import PrototypeDetector
from tests.unit.pattern_unseen import FRESH_JAILBREAKS, FRESH_ORDINARY, JAILBREAKS, ORDINARY

SETS = {"written after the rules": (JAILBREAKS, ORDINARY), "fresh": (FRESH_JAILBREAKS, FRESH_ORDINARY)}


@pytest.mark.parametrize("name", list(SETS))
async def test_unseen_jailbreaks_are_tagged_and_ordinary_chat_is_not(name, capsys):
    jailbreaks, ordinary = SETS[name]
    detector = PrototypeDetector(shared_local_embedder())
    hybrid_j = await detector.classify_many(jailbreaks)
    hybrid_o = await detector.classify_many(ordinary)
    share = {
        "rules": (sum(bool(classify(t)) for t in jailbreaks) / len(jailbreaks),
                  sum(bool(classify(t)) for t in ordinary) / len(ordinary)),
        "rules + prototypes": (sum(map(bool, hybrid_j)) / len(jailbreaks), sum(map(bool, hybrid_o)) / len(ordinary)),
    }
    with capsys.disabled():
        for how, (j, o) in share.items():
            print(f"\n{name}: {how}: {j:.0%} of {len(jailbreaks)} jailbreaks tagged, {o:.0%} of {len(ordinary)} ordinary")
    j, o = share["rules + prototypes"]
    missed = [t[:80] for t, c in zip(jailbreaks, hybrid_j, strict=True) if not c]
    flagged = [t[:80] for t, c in zip(ordinary, hybrid_o, strict=True) if c]
    assert j >= 0.8, missed
    assert o <= 0.1, flagged


async def test_an_attempt_nothing_matches_is_other():
    detector = PrototypeDetector(shared_local_embedder())
    assert await detector.classify_many(["the weather is nice today"], attack=True) == [["other"]]
