"""No moderator moves money alone (SPEC §10.6).

No moderator credits themselves, approves their own payout or refunds their own attempt; a grant
over ADMIN_GRANT_REVIEW_ABOVE and every payout need a second moderator (PAYOUT_APPROVALS distinct
approvals, none of them the payee's). The console's local game has one operator, the person at the
keyboard who runs the whole installation: it is exempt, and its answers say so.
"""

from __future__ import annotations

from core.actors import Actor
from core.errors import NotPermitted
from core.settings import Settings

EXEMPT_NOTE = "(the console's local game has one operator: no second moderator is asked)"


def exempt(actor: Actor) -> bool:
    """The console's operator: the only moderator of a local game."""
    return actor.platform == "console"


def refuse_own(actor: Actor, moderator_id: int, player_id: int, what: str) -> None:
    """Refuse ``what`` when the moderator would do it for their own player."""
    if moderator_id == player_id and not exempt(actor):
        raise NotPermitted(f"A moderator cannot {what} for themselves: ask another moderator.")


def payout_approvals_needed(settings: Settings, actor: Actor) -> int:
    return 1 if exempt(actor) else settings.PAYOUT_APPROVALS


def grant_needs_review(settings: Settings, actor: Actor, amount: int) -> bool:
    return not exempt(actor) and amount > settings.grant_review_above
