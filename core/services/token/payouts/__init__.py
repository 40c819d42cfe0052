"""Payouts: the only way money leaves the platform, always approved by moderators first (two by
default, never the payee: PAYOUT_APPROVALS).

``/withdraw`` moves the amount from the player to pending payouts (one ledger transfer) and queues a
request. A moderator approves or rejects it (rejected: the amount goes back). An approved payout is
paid by the worker with the treasury keypair, or marked paid by a moderator with its signature.

The worker never sends a payout twice. Before sending, it stores the signed transaction and its
signature (committed). Every later try looks at that signature on chain first: landed, it waits for
finality and marks it paid; unknown while its blockhash can still land, it re-sends the same bytes
(a cluster accepts one signature once); unknown after the blockhash expired, the transaction can
never land, so only then is a new one signed. Each step is written to the audit log.
"""

from core.services.token.payouts.common import OPEN, PAY_JOB, PayoutRow, get
from core.services.token.payouts.decisions import (
    Approval,
    approve,
    keypair_configured,
    listing,
    mark_paid,
    reject,
)
from core.services.token.payouts.requests import mine, request
from core.services.token.payouts.sending import pay, resume
from core.services.token.payouts.transactions import build_transfer, load_treasury_keypair

__all__ = [
    "Approval",
    "OPEN",
    "PAY_JOB",
    "PayoutRow",
    "approve",
    "build_transfer",
    "get",
    "keypair_configured",
    "listing",
    "load_treasury_keypair",
    "mark_paid",
    "mine",
    "pay",
    "reject",
    "request",
    "resume",
]
