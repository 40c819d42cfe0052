"""How fast a round's attempts are being paid, and how long this process's players take to confirm.

A quote's maximum fee covers the attempts others are expected to pay before this player's payment:
``expected_others`` = the round's payment rate x this process's usual time from quote to payment.
In a quiet round that is about nothing and the maximum is the fee plus the small fixed tolerance; when
many players attempt at once it is larger, so a player is not asked again for every attempt that
landed while they pressed the button. The player still sees the maximum and never pays more.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 10.0  # payment rate over the last seconds
MIN_SPAN_S = 0.2  # fewer seconds than this of samples say nothing about a rate
SMOOTHING = 0.2  # of each new quote-to-payment time in the running average
MAX_EXPECTED = 200  # beyond this the player is asked again rather than shown a huge maximum


class AttemptPace:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._numbers: dict[int, deque[tuple[float, int]]] = {}
        self.confirm_s: float | None = None

    def saw_number(self, bounty_id: int, number: int) -> None:
        """An attempt number seen now (quoted next, or just paid) in this round."""
        now = self._clock()
        seen = self._numbers.setdefault(bounty_id, deque(maxlen=256))
        seen.append((now, number))
        while seen and seen[0][0] < now - WINDOW_S:
            seen.popleft()
        if len(self._numbers) > 16:  # old rounds
            for old in sorted(self._numbers)[:-16]:
                del self._numbers[old]

    def confirmed_after(self, seconds: float) -> None:
        """A quote of this process was paid ``seconds`` after it was made."""
        seconds = max(0.0, seconds)
        self.confirm_s = seconds if self.confirm_s is None else (
            (1 - SMOOTHING) * self.confirm_s + SMOOTHING * seconds)

    def rate(self, bounty_id: int) -> float:
        seen = self._numbers.get(bounty_id)
        if not seen or len(seen) < 2:
            return 0.0
        (t0, n0), (t1, n1) = seen[0], seen[-1]
        span = t1 - t0
        return max(0, n1 - n0) / span if span >= MIN_SPAN_S else 0.0

    def expected_others(self, bounty_id: int) -> int:
        """How many attempts others will likely pay between a quote now and its payment."""
        if self.confirm_s is None:
            return 0
        return min(MAX_EXPECTED, math.ceil(self.rate(bounty_id) * self.confirm_s * 1.5))
