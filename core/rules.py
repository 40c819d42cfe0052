"""The game's arithmetic: fees, splits and fair shares, all in integers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

BPS = 10_000

PRIZE_SHARE_BPS = 7_000  # of every paid amount
STAKING_SHARE_BPS = 3_000  # of revenue
BUYBACK_SHARE_BPS = 500  # of revenue
LAST_PLAYER_SHARE_BPS = 2_000  # of the pool when a round expires


@dataclass(frozen=True)
class FeeRule:
    base: int  # minor units
    growth_bps: int
    cap: int  # minor units


@lru_cache(maxsize=65_536)
def attempt_fee(n: int, base: int, growth_bps: int, cap: int) -> int:
    """fee(n) = min(cap, floor(base × (1 + growth)^n)) in closed form, exact in integers."""
    if n < 0:
        raise ValueError("attempt number must be >= 0")
    if base >= cap:
        return cap
    if growth_bps == 0:
        return base
    # The float estimate only decides the clear cases; near the cap the exact integer decides.
    log_fee = math.log(base) + n * math.log1p(growth_bps / BPS)
    if log_fee > math.log(cap) + 1e-6:
        return cap
    exact = base * (BPS + growth_bps) ** n // BPS**n
    return min(cap, exact)


@dataclass(frozen=True)
class Split:
    prize: int
    staking: int
    buyback: int
    operations: int

    @property
    def total(self) -> int:
        return self.prize + self.staking + self.buyback + self.operations


def split_payment(paid: int) -> Split:
    """70 % to the prize pool; of the revenue, 30 % staking, 5 % buyback, the rest operations."""
    if paid < 0:
        raise ValueError("paid must be >= 0")
    prize = paid * PRIZE_SHARE_BPS // BPS
    revenue = paid - prize
    staking = revenue * STAKING_SHARE_BPS // BPS
    buyback = revenue * BUYBACK_SHARE_BPS // BPS
    return Split(prize, staking, buyback, revenue - staking - buyback)


def apply_discount(fee: int, discount_bps: int) -> int:
    """The fee after a holder's discount, rounded in the player's favour only by the floor."""
    if not 0 <= discount_bps <= BPS:
        raise ValueError("discount must be 0..10000 bps")
    return fee - fee * discount_bps // BPS


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Share ``total`` by ``weights``: floors, then one unit each by largest remainder.

    Ties go to the earlier position, so callers order weights by their tie-break (e.g. join time).
    The shares always add up to ``total`` exactly (all to nobody is impossible: weights sum > 0).
    """
    if total < 0:
        raise ValueError("total must be >= 0")
    weight_sum = sum(weights)
    if weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    shares = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:leftover]:
        shares[i] += 1
    return shares


def expiry_shares(pool: int, last_player_index: int, fees_paid: Sequence[int]) -> list[int]:
    """Expired round: 20 % to the last player, 80 % by fees paid; adds up to ``pool`` exactly."""
    last_share = pool * LAST_PLAYER_SHARE_BPS // BPS
    rest = largest_remainder(pool - last_share, fees_paid)
    rest[last_player_index] += last_share
    return rest
