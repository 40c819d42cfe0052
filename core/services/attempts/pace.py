"""How many attempts others pay between a player's quote and their payment, lately.

A quote's maximum fee covers that many: when many players attempt at once, the fee moves between
the quote and the payment, and a maximum of "the fee plus a small tolerance" would ask nearly every
player again (measured by `bounty bench`: about two thirds of 5,000 attempts at 50 players). The drift
is observed directly: a payment knows the number it was quoted for and the number it got. In a quiet
round the drift is 0 and the maximum is the fee plus the fixed tolerance. The player still sees the
maximum before confirming and never pays more than it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 30.0  # only recent payments say how busy the round is now
PERCENTILE = 0.95  # cover nineteen players in twenty; the twentieth is asked again
MAX_EXPECTED = 200  # beyond this the player is asked again rather than shown a huge maximum
REFRESH_S = (
    0.25  # the percentile is recomputed at most this often, or after REFRESH_AFTER new payments
)
REFRESH_AFTER = 16


class AttemptPace:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._drifts: dict[int, deque[tuple[float, int]]] = {}
        self._known: dict[
            int, tuple[float, int, int]
        ] = {}  # round: (computed at, value, payments since)

    def drifted(self, bounty_id: int, quoted: int, paid: int) -> None:
        """A payment (or a refusal because the fee moved) saw ``paid`` for a quote of number ``quoted``."""
        now = self._clock()
        seen = self._drifts.setdefault(bounty_id, deque(maxlen=256))
        seen.append((now, max(0, paid - quoted)))
        known = self._known.get(bounty_id)
        if known is not None:
            self._known[bounty_id] = (known[0], known[1], known[2] + 1)
        if len(self._drifts) > 16:  # old rounds
            for old in sorted(self._drifts)[:-16]:
                del self._drifts[old]
                self._known.pop(old, None)

    def expected_others(self, bounty_id: int) -> int:
        """How many attempts others will likely pay between a quote made now and its payment."""
        seen = self._drifts.get(bounty_id)
        if not seen:
            return 0
        now = self._clock()
        known = self._known.get(bounty_id)
        if known is not None and now - known[0] < REFRESH_S and known[2] < REFRESH_AFTER:
            return known[1]  # under load every quote asks; the percentile moves slowly
        value = self._percentile(seen, now)
        self._known[bounty_id] = (now, value, 0)
        return value

    @staticmethod
    def _percentile(seen: deque[tuple[float, int]], now: float) -> int:
        cutoff = now - WINDOW_S
        while seen and seen[0][0] < cutoff:
            seen.popleft()
        drifts = sorted(d for _, d in seen)
        if not drifts:
            return 0
        return min(
            MAX_EXPECTED, drifts[min(len(drifts) - 1, math.ceil(PERCENTILE * len(drifts)) - 1)]
        )
