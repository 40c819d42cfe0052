"""Paying a confirmed quote: one statement, ``bounty_pay_attempt`` (migration 0012).

It claims the quote (a second tap waits, then finds it paid), checks the identity, takes the round's
shared lock, the player's and the team's rows, applies the rules (core/services/refusals.py) under
them, takes the attempt number, debits the payer into escrow and writes the pending attempt. It
returns a refusal instead of raising one, so that a number taken for a payment that did not happen is
kept for the next payment in the same commit: no refusal moves anyone's fee.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.db import Conn, locks
from core.db.locks import Lock
from core.errors import ConfirmationExpired, InsufficientFunds, NotPermitted
from core.money import usdc
from core.ports.guardian import Turn
from core.services import refusals, rounds
from core.services.attempts.fees import acceptable_fees
from core.services.attempts.outcomes import Outcome, read_outcome
from core.services.attempts.quotes import Successor, Terms, player_of, supersede
from core.services.players import PlayerRef, StaleIdentity, forget_identity, owner_changed

if TYPE_CHECKING:
    from core.app import App

HISTORY_TURNS = 10

_PAY = (
    "SELECT * FROM bounty_pay_attempt(:quote, :player, :platform, :external, :via_team, :now, :cooldown, "
    ":day_start, :round_lock, :rules, :fees, :tail, :escrow, :guardian, :turns)"
)

_TERMS = (
    "SELECT q.max_fee, q.discount_bps, q.first_number, b.id AS bounty_id, b.status AS bounty_status, "
    "b.name, b.system_prompt, b.prompt_sha256, b.seed, b.base_fee, b.growth_bps, b.fee_cap, b.is_demo, "
    "b.created_at, b.ended_at, b.winner_attempt_id, b.commitment_sha256, b.config_sha256 "
    "FROM attempt_quotes q JOIN bounties b ON b.id = q.bounty_id WHERE q.id = :id"
)


@dataclass(frozen=True)
class Paid:
    attempt_id: int
    bounty: rounds.BountyRow
    number: int
    fee: int
    history: tuple[Turn, ...]
    similar: int
    player: PlayerRef
    message: str
    team_id: int | None


class FeeMoved(Exception):
    """The fee passed the confirmed maximum before payment: ``successor`` is the new confirmation."""

    def __init__(self, successor: Successor) -> None:
        super().__init__("fee moved")
        self.successor = successor


async def pay(app: App, actor: Actor, quote_id: str, *, via_team: bool = False) -> Paid | Outcome:
    """Pay a confirmed quote once, whatever the taps: the payment, or the outcome of the payment
    already made for this confirmation (``replayed``). Raises the refusal's error, or ``FeeMoved``."""
    for _ in range(2):
        player = await player_of(app, actor)
        try:
            return await _pay(app, actor, player, quote_id, via_team)
        except StaleIdentity:  # this process cached the player before a link or unlink elsewhere
            forget_identity(app, actor)
    raise StaleIdentity(player.id)


async def _read_terms(conn: Conn, quote_id: str) -> Terms | None:
    """A quote made by another process (or before a restart): its terms from the database."""
    row = (await conn.execute(_TERMS, {"id": quote_id})).first()
    if row is None:
        return None
    return Terms(rounds.bounty_from(row), row.first_number, row.max_fee, row.discount_bps)


async def _pay(
    app: App, actor: Actor, player: PlayerRef, quote_id: str, via_team: bool
) -> Paid | Outcome:
    now = app.clock()
    terms = app.quote_terms.get(quote_id)
    async with app.db.autocommit() as conn:
        if terms is None:
            terms = await _read_terms(conn, quote_id)
            if terms is None:
                raise ConfirmationExpired(
                    "That confirmation is unknown or expired. Send /attempt again."
                )
        bounty = terms.bounty
        fees, tail = acceptable_fees(
            bounty.rule, terms.first_number, terms.max_fee, terms.discount_bps
        )
        escrow = await app.accounts.get(conn, ledger.ATTEMPT_ESCROW)
        params = {
            "quote": quote_id, "player": player.id, "platform": actor.platform,
            "external": actor.external_id, "via_team": via_team, "now": now,
            "cooldown": app.settings.ATTEMPT_COOLDOWN_SECONDS,
            "day_start": now.replace(hour=0, minute=0, second=0, microsecond=0),
            "round_lock": locks.key(Lock.ROUND, bounty.id),
            "rules": [bounty.base_fee, bounty.growth_bps, bounty.fee_cap], "fees": fees, "tail": tail,
            "escrow": escrow.id, "guardian": app.guardian.name, "turns": HISTORY_TURNS // 2 * 2,
        }  # fmt: skip
        if terms.discount_bps:
            async with conn.transaction():  # the discount's use is recorded with the payment
                row = (await conn.execute(_PAY, params)).one()
                if row.refusal is None:
                    await app.discounts.record_use(
                        conn, row.attempt_id, player.id, terms.discount_bps
                    )
        else:
            row = (await conn.execute(_PAY, params)).one()
    if row.refusal is not None:  # (the connection is back in the pool: explaining may need others)
        if row.number is not None:  # the fee outran the quote's maximum, or the player's means
            app.pace.drifted(bounty.id, terms.first_number, row.number)
        return await _refused(app, actor, player, quote_id, bounty, row)
    app.quote_terms.pop(quote_id)
    app.pace.drifted(bounty.id, terms.first_number, row.number)
    turns: list[Turn] = []
    for message, reply in reversed(row.history or []):
        turns += [Turn("player", message), Turn("guardian", reply or "")]
    return Paid(
        row.attempt_id, bounty, row.number, row.fee, tuple(turns), row.similar_count, player,
        row.message, row.team_id,
    )  # fmt: skip


async def _refused(
    app: App, actor: Actor, player: PlayerRef, quote_id: str, bounty: rounds.BountyRow, row
) -> Outcome:
    """The payment changed nothing (but kept its number for the next one): why, in the player's words;
    a replay of a paid confirmation returns its outcome instead."""
    code, demo = row.refusal, bounty.is_demo
    if code == "not_claimable":
        return await _unclaimable(app, actor, player, quote_id)
    if code == "stale_identity":
        raise StaleIdentity(player.id)
    if code == "fee_moved":
        moved = await supersede(app, actor, quote_id)
        if isinstance(moved, str):
            return await _replay(app, moved)
        raise FeeMoved(moved)
    if code == "funds":
        whose = "the team pool holds" if row.team_id is not None else "your balance is"
        raise InsufficientFunds(
            f"This attempt costs {usdc(int(row.detail), demo=demo)} and {whose} "
            f"{usdc(int(row.extra), demo=demo)}. Nothing was charged."
        )
    raise refusals.error(code, row.detail, row.extra, demo=demo)


async def _unclaimable(app: App, actor: Actor, player: PlayerRef, quote_id: str) -> Outcome:
    """Why a confirmation could not be claimed; a replay of a paid one returns its outcome instead."""
    async with app.db.autocommit() as conn:
        q = (
            await conn.execute(
                "SELECT player_id, status FROM attempt_quotes WHERE id = :id", {"id": quote_id}
            )
        ).first()
        stale = (
            q is not None
            and q.player_id != player.id
            and await owner_changed(conn, actor, player.id)
        )
    if stale:
        raise StaleIdentity(player.id)
    if q is None:
        raise ConfirmationExpired("That confirmation is unknown or expired. Send /attempt again.")
    if q.player_id != player.id:
        raise NotPermitted("This button is not for you.")
    if q.status == "paid":
        return await _replay(app, quote_id)
    if q.status == "superseded":  # the fee moved; its successor is the live confirmation
        moved = await supersede(app, actor, quote_id)
        if isinstance(moved, str):
            return await _replay(app, moved)
        raise FeeMoved(moved)
    if q.status != "open":
        raise ConfirmationExpired("That confirmation was already used or cancelled.")
    raise ConfirmationExpired(
        "That confirmation expired. Send /attempt again to see the current fee."
    )


async def _replay(app: App, quote_id: str) -> Outcome:
    async with app.db.autocommit() as conn:
        attempt_id = (
            await conn.execute("SELECT id FROM attempts WHERE quote_id = :q", {"q": quote_id})
        ).scalar_one()
        return replace(await read_outcome(conn, attempt_id), replayed=True)
