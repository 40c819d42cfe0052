"""One attempt through the real core path: quote, confirm, and confirm again at the new fee when
others raised it meanwhile (FeeChanged). Counts outcomes, refusals and re-confirmations."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from core.actors import Actor
from core.app import App
from core.errors import BountyError, FeeChanged
from core.services.attempts import Outcome, Payer, confirm_attempt, quote_attempt

log = logging.getLogger("bounty.bench")

MAX_RECONFIRMS = 50


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)  # outcomes: rejected, refunded...
    refusals: Counter[str] = field(default_factory=Counter)  # core errors (InsufficientFunds...)
    crashes: Counter[str] = field(default_factory=Counter)  # anything else: a bug, logged once
    fee_changed: int = 0
    paid_fees: int = 0

    @property
    def paid(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "refunded")


async def play(
    app: App, actor: Actor, message: str, tally: Tally, payer: Payer | None = None
) -> Outcome | None:
    try:
        quote = await quote_attempt(app, actor, message, payer=payer)
        for _ in range(MAX_RECONFIRMS):
            try:
                # the bench's team pool pays for whoever plays (the team's checks are not measured here)
                outcome = await confirm_attempt(app, actor, quote.id, via_team=payer is not None)
            except FeeChanged as changed:
                tally.fee_changed += 1
                quote = changed.quote
                continue
            tally.statuses[outcome.status] += 1
            if outcome.status != "refunded":
                tally.paid_fees += outcome.fee
            return outcome
        tally.refusals["FeeChanged (gave up)"] += 1
    except BountyError as exc:
        tally.refusals[type(exc).__name__] += 1
    except Exception as exc:
        if not tally.crashes:
            log.exception("an attempt crashed")
        tally.crashes[type(exc).__name__] += 1
    return None
