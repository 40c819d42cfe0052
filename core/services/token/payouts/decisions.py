"""The moderators' side of a payout: approve (PAYOUT_APPROVALS distinct moderators, never the
payee), reject (the amount goes back), or mark paid with a transaction from the treasury."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.base58 import parse_signature
from core.db import Conn, UniqueViolation
from core.errors import InvalidArgument
from core.money import usdc
from core.ports.solana import SolanaUnavailable
from core.services import notices, outbox, oversight
from core.services.audit import audit_line as audit
from core.services.players import ensure_player, require_moderator
from core.services.token.common import (
    ChainUnavailable,
    associated_account,
    treasury_usdc_account,
)
from core.services.token.deposits import token_moves
from core.services.token.payouts.common import (
    _SELECT,
    OPEN,
    PAY_JOB,
    PayoutRow,
    get,
    keypair_configured,
    settle,
)

if TYPE_CHECKING:
    from core.app import App


async def listing(app: App, actor: Actor) -> tuple[list[PayoutRow], list[PayoutRow]]:
    """(open requests oldest first, the last ten finished)."""
    require_moderator(app.settings, actor)
    async with app.uow() as uow:
        conn = uow.conn
        open_ = (
            await conn.execute(
                _SELECT + " WHERE o.status = ANY(:s) ORDER BY o.id", {"s": list(OPEN)}
            )
        ).all()
        done = (
            await conn.execute(
                _SELECT + " WHERE o.status IN ('paid','rejected') ORDER BY o.id DESC LIMIT 10"
            )
        ).all()
    return [PayoutRow(*r) for r in open_], [PayoutRow(*r) for r in done]


async def _moderator(conn: Conn, actor: Actor) -> tuple[str, int]:
    mod = await ensure_player(conn, actor)
    return f"{actor.label} ({mod.display_name})", mod.id


@dataclass(frozen=True)
class Approval:
    payout: PayoutRow
    approved: bool  # enough moderators approved it: it is paid (by the worker, or marked paid)
    worker_pays: bool  # a treasury keypair is configured
    approvals: int
    needed: int
    exempt: bool  # the console's one operator decided alone


async def approve(app: App, actor: Actor, payout_id: int) -> Approval:
    """One moderator's approval of a requested payout (never the payee's); once PAYOUT_APPROVALS
    distinct moderators approved it, it is approved, and with a treasury keypair the worker pays it."""
    require_moderator(app.settings, actor)
    now = app.clock()
    needed = oversight.payout_approvals_needed(app.settings, actor)
    async with app.uow() as uow:
        conn = uow.conn
        label, mod_id = await _moderator(conn, actor)
        row = await get(conn, payout_id, lock=True)
        if row.status != "requested":
            raise InvalidArgument(f"Payout #{payout_id} is {row.status}, not waiting for approval.")
        oversight.refuse_own(actor, mod_id, row.player_id, "approve a payout")
        added = (
            await conn.execute(
                "INSERT INTO payout_approvals (payout_id, moderator_player_id, moderator_label) "
                "VALUES (:id, :mod, :label) ON CONFLICT DO NOTHING RETURNING payout_id",
                {"id": payout_id, "mod": mod_id, "label": label},
            )
        ).first()
        if added is None:
            raise InvalidArgument(
                f"You approved payout #{payout_id} already: it needs another moderator's approval."
            )
        approvers = (
            (
                await conn.execute(
                    "SELECT moderator_label FROM payout_approvals WHERE payout_id = :id ORDER BY created_at",
                    {"id": payout_id},
                )
            )
            .scalars()
            .all()
        )
        done = len(approvers) >= needed
        await audit(
            conn, actor=label, player_id=mod_id, action="payout.approve", target=f"payout #{payout_id}",
            details={"amount": row.amount, "wallet": row.wallet_address, "approval": len(approvers),
                     "needed": needed, "approved_by": approvers},
        )  # fmt: skip
        auto = keypair_configured(app)
        if done:
            await conn.execute(
                "UPDATE payouts SET status = 'approved', decided_at = :now, decided_by = :by WHERE id = :id",
                {"now": now, "by": ", ".join(approvers), "id": payout_id},
            )
            if auto:
                await outbox.enqueue_job(
                    conn, PAY_JOB, key=f"payout:{payout_id}", payout_id=payout_id
                )
            await notices.notify(
                conn,
                row.player_id,
                "Payout approved",
                f"Your payout #{payout_id} of {usdc(row.amount)} to {row.wallet_address} is approved"
                + (" and on its way." if auto else "; it is paid shortly."),
                key=f"payout:{payout_id}:approved",
                tone="success",
            )
        return Approval(
            await get(conn, payout_id), done, auto, len(approvers), needed, oversight.exempt(actor)
        )


async def reject(app: App, actor: Actor, payout_id: int, reason: str) -> PayoutRow:
    """Reject a request (not one being paid): the amount goes back to the player."""
    require_moderator(app.settings, actor)
    reason = " ".join((reason or "").split())[:500]
    if not reason:
        raise InvalidArgument("A rejection needs a reason (the player is told, and it is audited).")
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        label, mod_id = await _moderator(conn, actor)
        row = await get(conn, payout_id, lock=True)
        if row.status not in ("requested", "approved"):
            raise InvalidArgument(
                f"Payout #{payout_id} is {row.status}: only a requested or approved payout can be "
                "rejected."
                + (" Its transaction may already be on chain." if row.status == "sending" else "")
            )
        await conn.execute(
            (
                "UPDATE payouts SET status = 'rejected', decided_at = :now, decided_by = :by, "
                "reason = :r WHERE id = :id"
            ),
            {"now": now, "by": label, "r": reason, "id": payout_id},
        )
        pending = await app.accounts.get(conn, ledger.PENDING_PAYOUTS)
        player = await app.accounts.get(conn, ledger.PLAYER, row.player_id)
        await ledger.transfer(
            conn,
            f"payout:{payout_id}:reject",
            "payout_reject",
            [(pending, -row.amount), (player, row.amount)],
            memo=reason,
        )
        await audit(
            conn,
            actor=label,
            player_id=mod_id,
            action="payout.reject",
            target=f"payout #{payout_id}",
            details={"amount": row.amount, "reason": reason},
        )
        await notices.notify(
            conn,
            row.player_id,
            "Payout rejected",
            f"Your payout #{payout_id} of {usdc(row.amount)} was rejected: {reason}. "
            "The amount is back in your balance.",
            key=f"payout:{payout_id}:rejected",
            tone="warning",
        )
        return await get(conn, payout_id)


async def mark_paid(app: App, actor: Actor, payout_id: int, signature_text: str) -> PayoutRow:
    """Record an approved payout as paid by a transaction a moderator sent; the transaction is checked
    on chain (finalized, and USDC of at least the amount reached the player's wallet)."""
    require_moderator(app.settings, actor)
    signature = parse_signature(signature_text, "transaction signature")
    async with app.uow() as uow:
        row = await get(uow.conn, payout_id)
        used = (
            await uow.conn.execute(
                "SELECT id FROM payouts WHERE tx_signature = :s", {"s": signature}
            )
        ).first()
    if used is not None:
        raise InvalidArgument(f"That transaction already paid payout #{used.id}.")
    if row.status != "approved":
        raise InvalidArgument(
            f"Payout #{payout_id} is {row.status}"
            + (
                ": approve it first."
                if row.status == "requested"
                else f": the worker is paying it (transaction {row.tx_signature})."
                if row.status == "sending"
                else "."
            )
        )
    await _check_paid_on_chain(app, row, signature)
    try:
        async with app.uow() as uow:
            conn = uow.conn
            label, mod_id = await _moderator(conn, actor)
            oversight.refuse_own(actor, mod_id, row.player_id, "mark a payout paid")
            if not await settle(
                app, conn, payout_id, signature, paid_by=label, from_status="approved"
            ):
                raise InvalidArgument(
                    f"Payout #{payout_id} changed meanwhile; look again (/admin payouts)."
                )
            await audit(
                conn,
                actor=label,
                player_id=mod_id,
                action="payout.mark_paid",
                target=f"payout #{payout_id}",
                details={"amount": row.amount, "tx": signature},
            )
            return await get(conn, payout_id)
    except UniqueViolation:
        raise InvalidArgument("That transaction already paid another payout.") from None


async def _check_paid_on_chain(app: App, row: PayoutRow, signature: str) -> None:
    try:
        status = await app.solana.signature_status(signature)
        tx = (
            await app.solana.transaction(signature)
            if status is not None and status.finalized
            else None
        )
    except SolanaUnavailable:
        raise ChainUnavailable(
            "Solana is not answering, so that transaction cannot be checked; try again shortly."
        ) from None
    if status is None:
        raise InvalidArgument("No transaction with that signature is known on Solana.")
    if status.err is not None:
        raise InvalidArgument("That transaction failed on chain; it paid nothing.")
    if tx is None:
        raise InvalidArgument(
            "That transaction is not finalized yet; mark the payout paid once it is."
        )
    try:
        moves = token_moves(tx)
    except (KeyError, TypeError, ValueError, IndexError):
        raise ChainUnavailable("Solana answered a transaction this game cannot read.") from None
    # Only USDC that left the treasury's own account pays a payout: a transfer from anyone else (the
    # player paying themselves, a moderator's own wallet) proves nothing about the treasury's money.
    treasury = treasury_usdc_account(app.settings)
    destination = associated_account(row.wallet_address, app.settings.USDC_MINT)
    balances = tx.get("meta", {}).get("postTokenBalances") or []
    keys = [
        k["pubkey"] if isinstance(k, dict) else k
        for k in tx["transaction"]["message"]["accountKeys"]
    ]
    owned = {keys[b["accountIndex"]] for b in balances if b.get("owner") == row.wallet_address} | {
        destination
    }
    paid = sum(
        m.amount
        for m in moves
        if m.mint == app.settings.USDC_MINT and m.destination in owned and m.source == treasury
    )
    if paid < row.amount:
        raise InvalidArgument(
            f"That transaction sends {usdc(paid)} from the treasury to {row.wallet_address}; the payout "
            f"is {usdc(row.amount)}. Not marked paid."
        )
