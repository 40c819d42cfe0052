"""The bench's results: a flat ``figures`` object (key names are a contract with outside tools),
parameters per part, notes; written as JSON and printed as a table with the SPEC §9 targets."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Always present in ``figures``: a number, or null with a note saying why.
REQUIRED = (
    "attempts_per_s",
    "db_ceiling_attempts_per_s",
    "attempts_vs_ceiling",
    "attempt_p50_ms",
    "attempt_p99_ms",
    "db_ceiling_attempt_p99_ms",
    "hot_pool_debits_per_s",
    "hot_pool_overdrafts",
    "ledger_sum",
    "search_p50_ms",
    "search_p99_ms",
    "search_recall_at_5",
    "search_exact_p50_ms",
    "context_p99_ms",
    "discord_first_response_p99_ms",
    "telegram_first_response_p99_ms",
    "bot_rss_mb",
    "embed_p50_ms",
    "embed_p99_ms",
    "search_recall_at_5_real",
    "bot_rss_enhanced_mb",
    "attempts_per_s_enhanced",
    "attempts_enhanced_ratio",
)

# figure -> (comparison, target) from the issue
TARGETS: dict[str, tuple[str, float]] = {
    "attempts_per_s": (">=", 600),
    "attempts_vs_ceiling": (">=", 0.8),
    "attempt_p99_ms": ("<=", 25),
    "hot_pool_debits_per_s": (">=", 200),
    "hot_pool_overdrafts": ("==", 0),
    "ledger_sum": ("==", 0),
    "ledger_checks_failed": ("==", 0),
    "search_p99_ms": ("<=", 10),
    "search_recall_at_5": (">=", 0.95),
    "search_speedup_vs_exact": (">=", 20),
    "context_p99_ms": ("<=", 50),
    "discord_first_response_p99_ms": ("<=", 100),
    "telegram_first_response_p99_ms": ("<=", 100),
    "bot_rss_mb": ("<=", 400),
    "embed_p99_ms": ("<=", 30),
    "search_recall_at_5_real": (">=", 0.95),
    "bot_rss_enhanced_mb": ("<=", 400),
    "attempts_enhanced_ratio": (">=", 0.5),
}


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parents[1],
        )
    except OSError:
        return None
    return out.stdout.strip() or None


@dataclass
class Report:
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        part: str,
        figures: dict[str, Any],
        parameters: dict[str, Any] | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.figures.update(figures)
        if parameters:
            self.parameters.setdefault(part, {}).update(parameters)
        self.notes.extend(notes or [])

    def missing(self, keys: tuple[str, ...], why: str) -> None:
        """Figures that could not be measured: null, with the reason in the notes."""
        for key in keys:
            self.figures.setdefault(key, None)
        self.notes.append(why)

    def as_json(self) -> dict[str, Any]:
        figures = {key: self.figures.get(key) for key in REQUIRED}
        figures.update(self.figures)
        return {
            "commit": _commit(),
            "cores": os.cpu_count(),
            "started_at": self.started_at,
            "parameters": self.parameters,
            "notes": self.notes,
            "figures": figures,
        }

    def write(self, path: Path) -> dict[str, Any]:
        data = self.as_json()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        return data


def verdict(key: str, value: Any) -> str:
    if key not in TARGETS:
        return ""
    if value is None:
        return "n/a"
    op, target = TARGETS[key]
    ok = {">=": value >= target, "<=": value <= target, "==": value == target}[op]
    return "ok" if ok else "MISS"


def table(data: dict[str, Any]) -> str:
    rows = [("figure", "value", "target", "")]
    for key, value in data["figures"].items():
        target = " ".join(str(x) for x in TARGETS[key]) if key in TARGETS else ""
        rows.append(
            (
                key,
                "null"
                if value is None
                else f"{value:g}"
                if isinstance(value, float)
                else str(value),
                target,
                verdict(key, value),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(
            cell.ljust(w) if i != 1 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.extend(f"note: {n}" for n in data["notes"])
    return "\n".join(lines)
