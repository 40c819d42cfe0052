"""A confirmed attempt: pay it, ask the guardian within its deadline, record the answer.

Payment and answer are two transactions with the guardian call between them, outside any
transaction. A crash after payment leaves a pending attempt (its fee in escrow) that
``recover_stale_attempts`` refunds, so an interrupted attempt ends either answered and settled, or
refunded.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from core.actors import Actor
from core.db import Conn
from core.errors import FeeChanged, RoundNotActive
from core.memory.context import redact
from core.money import usdc
from core.ports.guardian import GuardianRequest, GuardianUnavailable
from core.services import commitment
from core.services.attempts.outcomes import Outcome, get_outcome
from core.services.attempts.payment import FeeMoved, Paid, pay
from core.services.attempts.settlement import refund_attempt
from core.services.attempts.verdicts import record_verdict

if TYPE_CHECKING:
    from core.app import App
    from core.memory.service import Recall

log = logging.getLogger(__name__)

# The memory's recall (the embedding and the search) gets at most this part of the guardian's
# deadline; past it the guardian answers without the enhanced context.
RECALL_SHARE = 0.25


async def confirm_attempt(
    app: App, actor: Actor, quote_id: str, *, via_team: bool = False
) -> Outcome:
    """Pay the confirmed quote (once, whatever the taps), ask the guardian, record the answer.
    A team's quote is paid only through the team's confirmation (``via_team``)."""
    try:
        paid = await pay(app, actor, quote_id, via_team=via_team)
    except FeeMoved as moved:
        new = moved.successor.quote
        raise FeeChanged(
            f"Other attempts raised the fee to {usdc(new.fee, demo=new.is_demo)}. Confirm again to pay it.",
            new,
            shown_before=moved.successor.shown_before,
        ) from None
    if isinstance(paid, Outcome):
        return paid  # a replay: already paid, nothing charged again
    return await answer(app, paid)


async def answer(app: App, paid: Paid) -> Outcome:
    """Ask the guardian about a paid attempt within its deadline and record (settle) the answer;
    refunded in full if it fails or times out."""
    try:  # this process must run the guardian the round committed to (a setting changed meanwhile?)
        commitment.check_config(app, paid.bounty.config_sha256, paid.bounty.name)
    except RoundNotActive:
        await refund_attempt(
            app, paid.attempt_id, "this process's guardian is not the one the round committed to"
        )
        return await get_outcome(app, paid.attempt_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + app.settings.GUARDIAN_TIMEOUT_SECONDS
    recall = await _recall(app, paid, budget=app.settings.GUARDIAN_TIMEOUT_SECONDS * RECALL_SHARE)
    request = GuardianRequest(
        system_prompt=paid.bounty.system_prompt,
        message=paid.message,
        history=paid.history if recall is None else recall.history,
        player_name=paid.player.display_name,
        context=None if recall is None else recall.context,
    )
    try:
        verdict = await asyncio.wait_for(
            app.guardian.judge(request), max(0.0, deadline - loop.time())
        )
    except (GuardianUnavailable, TimeoutError) as exc:
        log.warning("guardian failed on attempt %s: %s", paid.attempt_id, type(exc).__name__)
        await refund_attempt(app, paid.attempt_id, "the guardian did not answer")
        return await get_outcome(app, paid.attempt_id)
    except Exception:
        log.exception("guardian crashed on attempt %s", paid.attempt_id)
        await refund_attempt(app, paid.attempt_id, "the guardian failed")
        return await get_outcome(app, paid.attempt_id)
    note = None
    if recall is not None:
        # Other players' unrevealed attempts were in the context: none of their wording reaches a player.
        verdict = replace(verdict, reply=redact(verdict.reply, recall.confidential))
        memory, history_turns = app.memory, len(paid.history)

        async def note(conn: Conn) -> None:
            await memory.note(
                conn, recall, attempt_id=paid.attempt_id, bounty_id=paid.bounty.id,
                player_id=paid.player.id, number=paid.number, history_turns=history_turns,
            )  # fmt: skip

    status, prize = await record_verdict(
        app, paid.attempt_id, verdict, note=note, paid=(paid.bounty.id, paid.fee)
    )
    if status == "refunded":
        return await get_outcome(app, paid.attempt_id)
    return Outcome(
        attempt_id=paid.attempt_id, bounty_id=paid.bounty.id, number=paid.number, fee=paid.fee,
        status=status, reply=verdict.reply, guardian=verdict.provider, is_demo=paid.bounty.is_demo,
        prize=prize, similar_count=paid.similar if recall is None else recall.similar_count,
        similar_kind="identical" if recall is None else "semantic",
        similarity_threshold=None if recall is None else recall.threshold,
    )  # fmt: skip


async def _recall(app: App, paid: Paid, *, budget: float) -> Recall | None:
    """The enhanced context (ENABLE_ENHANCED_CONTEXT) within ``budget`` seconds, else none: a slow
    embedding provider must not make the guardian's answer late enough to be refunded."""
    if app.memory is None:
        return None
    try:
        return await asyncio.wait_for(
            app.memory.recall(
                app,
                bounty_id=paid.bounty.id,
                player_id=paid.player.id,
                message=paid.message,
                history=paid.history,
            ),  # fmt: skip
            budget,
        )
    except TimeoutError:
        log.warning("the memory took over %.1f s on attempt %s; the guardian answers without it",
                    budget, paid.attempt_id)  # fmt: skip
        return None
