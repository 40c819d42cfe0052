"""The attempt (SPEC §4): quote the fee, confirm, pay, ask the guardian, settle — refund in full on
failure — and how a round ends.

- ``quotes``: the exact fee shown and the checks a payment needs; nothing is charged.
- ``fees``: the fees a quote accepts, from the fee rule.
- ``payment``: paying a confirmed quote in one statement, once whatever the taps.
- ``confirm``: payment, the guardian within its deadline, the answer.
- ``settlement``: the fee split once answered, or refunded; stale attempts; attempt numbers.
- ``endings``: a win, an expiry.
- ``outcomes``: what a player is told.
- ``pace``: how far the fee moves between a quote and its payment, lately.
"""

from core.services.attempts.confirm import answer, confirm_attempt
from core.services.attempts.endings import end_inactive_rounds, expire_round, settle_win
from core.services.attempts.fees import acceptable_fees
from core.services.attempts.outcomes import Outcome, get_outcome
from core.services.attempts.payment import HISTORY_TURNS, FeeMoved, Paid, pay
from core.services.attempts.quotes import (
    Payer,
    Quote,
    Terms,
    cancel_quote,
    clean_message,
    quote_attempt,
    quote_team_attempt,
)
from core.services.attempts.settlement import (
    recover_stale_attempts,
    refund_attempt,
    repair_numbers,
)
from core.services.attempts.verdicts import record_verdict

__all__ = [
    "HISTORY_TURNS",
    "FeeMoved",
    "Outcome",
    "Paid",
    "Payer",
    "Quote",
    "Terms",
    "acceptable_fees",
    "answer",
    "cancel_quote",
    "clean_message",
    "confirm_attempt",
    "end_inactive_rounds",
    "expire_round",
    "get_outcome",
    "pay",
    "quote_attempt",
    "quote_team_attempt",
    "record_verdict",
    "recover_stale_attempts",
    "refund_attempt",
    "repair_numbers",
    "settle_win",
]
