"""What an attempt looks like to the player: the confirmation, the answer, and what a press on a
confirmation does, for the player's own attempts and a team's alike.

A confirmation message moves forward only: confirmation, then "thinking", then the answer. Only the
press that paid edits it; a repeated or late press (a replay, a new confirmation another press
already showed) is answered to the presser alone (``Reply.keep_message``).
"""

from __future__ import annotations

import time
from dataclasses import replace

from core import metrics
from core.actors import Actor
from core.commands.base import Confirm, Field, Reply
from core.errors import BountyError, FeeChanged
from core.logs import bind
from core.memory.service import similar_phrase
from core.money import usdc
from core.services import attempts


def quote_reply(quote: attempts.Quote, team_name: str | None = None) -> Reply:
    fee = usdc(quote.fee, demo=quote.is_demo)
    detail = f"Attempt #{quote.number + 1} in round {quote.bounty_name} costs {fee} now."
    if quote.discount_bps:
        detail += f" (list {usdc(quote.list_fee, demo=quote.is_demo)}, holder discount {quote.discount_bps / 100:g} %)"
    if quote.max_fee > quote.fee:
        detail += (
            f"\nYou confirm paying at most {usdc(quote.max_fee, demo=quote.is_demo)}: you pay the fee at the moment "
            "of payment, and are asked again if others' attempts raise it past that first."
        )
    else:
        detail += "\nIf others' attempts raise the fee before you confirm, you will be asked again."
    prompt = f"Pay {fee} (at most {usdc(quote.max_fee, demo=quote.is_demo)}) and send your message?"
    reply = Reply(
        title="Confirm your attempt",
        text=detail,
        private=True,
        tone="warning",
        confirm=Confirm(
            token=f"attempt:{quote.id}",
            prompt=prompt,
            accept_label=f"Pay {fee}",
            cancel_label="Cancel",
            expires_at=quote.expires_at,
        ),
    )
    if team_name is None:
        return reply
    assert reply.confirm is not None
    return replace(
        reply,
        title=f"Confirm your team attempt for {team_name}",
        text=reply.text + "\nThe team pool pays it.",
        confirm=replace(
            reply.confirm,
            token=f"teamattempt:{quote.id}",
            prompt=prompt.replace("Pay ", "Pay from the team pool ", 1),
        ),
    )


def outcome_reply(o: attempts.Outcome) -> Reply:
    fee = usdc(o.fee, demo=o.is_demo)
    if o.similar_kind == "semantic":
        similar = similar_phrase(o.similar_count, o.similarity_threshold or 0.0)
    else:
        similar = (
            f"The guardian recognised {o.similar_count} identical earlier attempt{'s' if o.similar_count != 1 else ''}."
            if o.similar_count
            else "The guardian has not seen this exact attempt before."
        )
    if o.status == "won":
        return Reply(
            title="The guardian released the prize pool!",
            text=(o.reply or "")
            + f"\n\nYou won {usdc(o.prize, demo=o.is_demo)}. It is in your balance.",
            fields=(Field("Attempt", f"#{o.number + 1}"), Field("Fee", fee)),
            tone="success",
            private=True,
        )
    if o.status == "refunded":
        why = o.refund_reason or "the guardian did not answer in time"
        return Reply(
            title="Attempt refunded",
            text=f"Your {fee} was refunded in full: {why}.",
            tone="warning",
            private=True,
        )
    if o.status == "pending":
        return Reply(
            title="Still waiting",
            text="The guardian is still answering this attempt. See /history.",
            private=True,
        )
    title = (
        "The guardian refuses" if o.status == "rejected" else "Too late: the round already ended"
    )
    return Reply(
        title=title,
        text=o.reply or "",
        fields=(Field("Attempt", f"#{o.number + 1}"), Field("Fee paid", fee)),
        footer=similar,
        tone="danger" if o.status == "rejected" else "warning",
        private=True,
    )


def _replay_reply(o: attempts.Outcome) -> Reply:
    """A press on a confirmation already paid: nothing is charged again; the message keeps (or will
    show) the answer."""
    if o.status == "pending":
        text = "Already paid. The guardian is answering; the answer appears in that message."
    else:
        text = f"Already paid (attempt #{o.number + 1}): the answer is in that message and in /history."
    return Reply(title="Already paid", text=text, private=True, keep_message=True)


def _team_outcome_reply(o: attempts.Outcome, team_name: str) -> Reply:
    reply = outcome_reply(o)
    if o.status == "won":
        return replace(
            reply,
            text=(o.reply or "") + f"\n\nYour team {team_name} won "
            f"{usdc(o.prize, demo=o.is_demo)}: it is split among the members, "
            "and each is told their share.",
        )
    if o.status in ("rejected", "late"):
        return replace(reply, footer=(reply.footer or "") + " Paid from the team pool.")
    return reply


async def confirmed(app, actor: Actor, quote_id: str, *, team_name: str | None = None) -> Reply:
    """The player pressed Pay: pay (once), then the guardian's answer follows (``Reply.follow``)."""
    started = time.perf_counter()
    try:
        paid = await attempts.pay(app, actor, quote_id, via_team=team_name is not None)
    except attempts.FeeMoved as moved:
        metrics.count_attempt("fee_changed")
        new = moved.successor.quote
        if moved.successor.shown_before:
            return Reply(
                title="The fee went up",
                text="A new confirmation with the new fee is already shown: confirm that one.",
                private=True,
                keep_message=True,
            )
        changed = FeeChanged(
            f"Other attempts raised the fee to {usdc(new.fee, demo=new.is_demo)}. Confirm again to pay it.",
            new,
        )
        return replace(quote_reply(new, team_name), title="The fee went up", text=changed.message)
    except BountyError:
        metrics.count_attempt("refused")
        raise
    if isinstance(paid, attempts.Outcome):
        return _replay_reply(paid)

    bind(attempt_id=paid.attempt_id, round_id=paid.bounty.id, team_id=paid.team_id)

    async def answer() -> Reply:
        outcome = await metrics.observe_attempt(attempts.answer(app, paid), started=started)
        return (
            outcome_reply(outcome) if team_name is None else _team_outcome_reply(outcome, team_name)
        )

    return Reply(
        title="Sent",
        text="The guardian is thinking…",
        private=True,
        follow=answer,
    )
