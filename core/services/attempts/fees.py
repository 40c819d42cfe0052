"""What a quote accepts: the fees of the attempt numbers it may be paid at, from the fee rule
(core/rules.py, their one home). The payment receives them; it computes no fee of its own."""

from __future__ import annotations

from core.rules import FeeRule, apply_discount, attempt_fee

MAX_ROWS = 100_000


def acceptable_fees(
    rule: FeeRule, first: int, max_fee: int, discount_bps: int
) -> tuple[list[list[int]], bool]:
    """For numbers ``first``, ``first + 1``...: ``[list fee, fee after the discount]`` while the fee stays
    within ``max_fee``; and whether the last row holds for every later number (the fee reached its cap,
    or does not grow)."""
    rows: list[list[int]] = []
    n = first
    while len(rows) < MAX_ROWS:
        list_fee = attempt_fee(n, rule.base, rule.growth_bps, rule.cap)
        fee = apply_discount(list_fee, discount_bps)
        if fee > max_fee:
            return rows, False
        rows.append([list_fee, fee])
        if list_fee >= rule.cap or rule.growth_bps == 0:
            return rows, True
        n += 1
    return rows, False
