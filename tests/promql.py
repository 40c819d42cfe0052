"""The part of PromQL that docs/grafana-dashboard.json uses, evaluated over two scrapes of /metrics
(no Prometheus runs in the tests): ``sum``/``max``/``min`` with ``by``, ``rate`` and ``increase``
between the scrapes, ``histogram_quantile`` as Prometheus computes it, label matchers, a factor."""

from __future__ import annotations

import math
import re

Series = dict[frozenset, float]


class PromQL:
    """The PromQL the dashboard uses, over two scrapes {(name, labels): value} ``dt`` seconds apart."""

    TOKEN = re.compile(
        r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<str>\"[^\"]*\")"
        r"|(?P<range>\[\d+[smh]\])|(?P<op>!=|=~|[(){},=*]))"
    )

    def __init__(self, before: dict, after: dict, dt: float) -> None:
        self.before, self.after, self.dt = before, after, dt

    def evaluate(self, expr: str) -> Series:
        self.tokens = [m for m in self.TOKEN.finditer(expr)]
        assert "".join(m.group(0) for m in self.tokens).replace(" ", "") == expr.replace(" ", ""), (
            f"cannot read {expr!r}"
        )
        self.at = 0
        result = self._product()
        assert self.at == len(self.tokens), f"left over in {expr!r}"
        return result

    # --- parsing and evaluating at once ---

    def _peek(self) -> str | None:
        return self.tokens[self.at].group(0).strip() if self.at < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        assert token is not None and (expected is None or token == expected), (expected, token)
        self.at += 1
        return token

    def _product(self) -> Series:
        left = self._term()
        while self._peek() == "*":
            self._take("*")
            factor = float(self._take())
            left = {k: v * factor for k, v in left.items()}
        return left

    def _labels(self) -> list[str]:
        self._take("(")
        names = []
        while self._peek() != ")":
            names.append(self._take())
            if self._peek() == ",":
                self._take(",")
        self._take(")")
        return names

    def _term(self) -> Series:
        word = self._take()
        if word in ("sum", "max", "min"):
            by = self._labels() if self._peek() == "by" and self._take("by") else None
            self._take("(")
            inner = self._product()
            self._take(")")
            if by is None and self._peek() == "by":
                self._take("by")
                by = self._labels()
            return self._aggregate(word, inner, by or [])
        if word in ("rate", "increase"):
            self._take("(")
            name, matchers = self._selector()
            self._take()  # the range: two scrapes stand for it
            self._take(")")
            out = {}
            for labels, now in self._select(self.after, name, matchers).items():
                then = self._select(self.before, name, matchers).get(labels, 0.0)
                grown = now - then if now >= then else now  # a counter reset
                out[labels] = grown / self.dt if word == "rate" else grown
            return out
        if word == "histogram_quantile":
            self._take("(")
            q = float(self._take())
            self._take(",")
            buckets = self._product()
            self._take(")")
            return self._quantile(q, buckets)
        self.at -= 1
        name, matchers = self._selector()
        return self._select(self.after, name, matchers)

    def _selector(self) -> tuple[str, list[tuple[str, str, str]]]:
        name = self._take()
        matchers = []
        if self._peek() == "{":
            self._take("{")
            while self._peek() != "}":
                label, op, value = self._take(), self._take(), self._take().strip('"')
                matchers.append((label, op, value))
                if self._peek() == ",":
                    self._take(",")
            self._take("}")
        return name, matchers

    @staticmethod
    def _select(scrape: dict, name: str, matchers) -> Series:
        out = {}
        for (sample, labels), v in scrape.items():
            if sample != name:
                continue
            have = dict(labels)
            if all(
                (have.get(label, "") == value) == (op == "=")
                if op in ("=", "!=")
                else bool(re.fullmatch(value, have.get(label, "")))
                for label, op, value in matchers
            ):
                out[labels] = v
        return out

    @staticmethod
    def _aggregate(how: str, series: Series, by: list[str]) -> Series:
        groups: dict[frozenset, list[float]] = {}
        for labels, v in series.items():
            key = frozenset((k, v2) for k, v2 in labels if k in by)
            groups.setdefault(key, []).append(v)
        pick = {"sum": sum, "max": max, "min": min}[how]
        return {k: pick(vs) for k, vs in groups.items()}

    @staticmethod
    def _quantile(q: float, buckets: Series) -> Series:
        """Prometheus's histogram_quantile: linear within the bucket the rank falls in."""
        grouped: dict[frozenset, list[tuple[float, float]]] = {}
        for labels, count in buckets.items():
            le = dict(labels)["le"]
            rest = frozenset((k, v) for k, v in labels if k != "le")
            grouped.setdefault(rest, []).append((math.inf if le == "+Inf" else float(le), count))
        out = {}
        for rest, bs in grouped.items():
            bs.sort()
            total = bs[-1][1]
            if total <= 0:
                out[rest] = math.nan
                continue
            rank, lower, below = q * total, 0.0, 0.0
            for upper, count in bs:
                if count >= rank:
                    if upper == math.inf:
                        out[rest] = lower
                    else:
                        out[rest] = lower + (upper - lower) * (rank - below) / max(
                            count - below, 1e-12
                        )
                    break
                lower, below = upper, count
        return out
