"""The worker's side of a payout: it pays an approved payout with the treasury keypair and never
sends one twice. Before sending it stores the signed transaction and its signature (committed).
Every later try looks at that signature on chain first: landed, it waits for finality and marks it
paid; unknown while its blockhash can still land, it re-sends the same bytes (a cluster accepts one
signature once); unknown after the blockhash expired, the transaction can never land, so only then is
a new one signed. Each step is written to the audit log."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.db import locks
from core.db.locks import Lock
from core.errors import NotFound
from core.ports.solana import SolanaRejected, SolanaUnavailable
from core.services.audit import audit_line as audit
from core.services.token.payouts.common import MAX_BACKOFF, WORKER, settle
from core.services.token.payouts.decisions import keypair_configured
from core.services.token.payouts.transactions import build_transfer, load_treasury_keypair

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)


async def pay(app: App, payout_id: int) -> str:
    """Pay an approved payout on chain (the worker's job; safe to run again at any point). Returns the
    payout's status afterwards, or "busy" when another worker is paying it right now."""
    async with locks.session(app.db, Lock.PAYOUT, payout_id, wait=False) as held:
        if not held:  # another worker is paying it now
            return "busy"
        return await _pay_locked(app, payout_id)


async def _pay_locked(app: App, payout_id: int) -> str:
    async with app.uow() as uow:
        row = (
            await uow.conn.execute(
                (
                    "SELECT status, amount, wallet_address, tx_signature, signed_tx, last_valid_block_height, tries "
                    "FROM payouts WHERE id = :id"
                ),
                {"id": payout_id},
            )
        ).first()
    if row is None:
        raise NotFound(f"No payout #{payout_id}.")
    if row.status not in ("approved", "sending"):
        return row.status  # requested (never without approval), paid or rejected: nothing to do
    keypair = load_treasury_keypair(app)
    solana = app.solana
    try:
        if row.tx_signature is not None:
            # A transaction was signed before: what became of it decides everything.
            status = await solana.signature_status(row.tx_signature)
            if status is not None:
                if status.err is not None:
                    return await _failed_on_chain(app, payout_id, row.tx_signature, status.err)
                return await _confirm_and_settle(app, payout_id, row.tx_signature)
            if await solana.block_height() <= row.last_valid_block_height:
                await _send(
                    app, payout_id, base64.b64decode(row.signed_tx), row.tx_signature, again=True
                )
                return await _confirm_and_settle(app, payout_id, row.tx_signature)
            async with app.uow() as uow:
                await audit(
                    uow.conn,
                    actor=WORKER,
                    action="payout.expired",
                    target=f"payout #{payout_id}",
                    details={
                        "tx": row.tx_signature,
                        "last_valid_block_height": row.last_valid_block_height,
                    },
                )
        blockhash = await solana.latest_blockhash()
        wire, signature = build_transfer(
            app, keypair, row.wallet_address, row.amount, blockhash.blockhash
        )
        async with app.uow() as uow:
            stored = (
                await uow.conn.execute(
                    (
                        "UPDATE payouts SET status = 'sending', signed_tx = :w, tx_signature = :s, "
                        "last_valid_block_height = :h, tries = tries + 1, last_error = NULL "
                        "WHERE id = :id AND status IN ('approved','sending') "
                        "AND tx_signature IS NOT DISTINCT FROM :old RETURNING id"
                    ),
                    {
                        "w": base64.b64encode(wire).decode(),
                        "s": signature,
                        "h": blockhash.last_valid_block_height,
                        "id": payout_id,
                        "old": row.tx_signature,
                    },
                )
            ).first()
            if stored is None:
                return "busy"  # changed under us (rejected meanwhile): nothing was sent
            await audit(
                uow.conn,
                actor=WORKER,
                action="payout.signed",
                target=f"payout #{payout_id}",
                details={
                    "tx": signature,
                    "amount": row.amount,
                    "wallet": row.wallet_address,
                    "last_valid_block_height": blockhash.last_valid_block_height,
                },
            )
        # Committed: from here on any retry finds this signature first.
        await _send(app, payout_id, wire, signature, again=False)
        return await _confirm_and_settle(app, payout_id, signature)
    except SolanaUnavailable as exc:
        await _later(app, payout_id, str(exc))
        async with app.uow() as uow:
            return (
                await uow.conn.execute(
                    "SELECT status FROM payouts WHERE id = :id", {"id": payout_id}
                )
            ).scalar_one()


async def _send(app: App, payout_id: int, wire: bytes, signature: str, *, again: bool) -> None:
    try:
        sent = await app.solana.send_transaction(wire)
    except SolanaRejected as exc:
        if "already been processed" in str(exc):
            return
        # Refused before reaching the cluster; the stored transaction stays, and is replaced only
        # once its blockhash has expired (the one moment it provably cannot land).
        async with app.uow() as uow:
            await audit(
                uow.conn,
                actor=WORKER,
                action="payout.send_refused",
                target=f"payout #{payout_id}",
                details={"tx": signature, "error": str(exc)[:300]},
            )
        raise
    if sent != signature:
        log.error("payout %s: the node reported signature %s for %s", payout_id, sent, signature)
    async with app.uow() as uow:
        await uow.conn.execute(
            "UPDATE payouts SET sent_at = :now WHERE id = :id",
            {"now": app.clock(), "id": payout_id},
        )
        await audit(
            uow.conn,
            actor=WORKER,
            action="payout.resent" if again else "payout.sent",
            target=f"payout #{payout_id}",
            details={"tx": signature},
        )


async def _confirm_and_settle(app: App, payout_id: int, signature: str) -> str:
    """Wait for the signature to be finalized, then mark the payout paid."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + app.settings.SOLANA_CONFIRM_SECONDS
    while True:
        status = await app.solana.signature_status(signature)
        if status is not None and status.err is not None:
            return await _failed_on_chain(app, payout_id, signature, status.err)
        if status is not None and status.finalized:
            break
        if loop.time() >= deadline:
            await _later(app, payout_id, f"transaction {signature} not finalized yet")
            return "sending"
        await asyncio.sleep(app.settings.SOLANA_POLL_SECONDS)
    async with app.uow() as uow:
        settled = await settle(
            app, uow.conn, payout_id, signature, paid_by=WORKER, from_status="sending"
        )
        if settled:
            await audit(
                uow.conn,
                actor=WORKER,
                action="payout.paid",
                target=f"payout #{payout_id}",
                details={"tx": signature, "slot": status.slot},
            )
    return "paid"


async def _failed_on_chain(app: App, payout_id: int, signature: str, err: Any) -> str:
    """The transaction landed and failed: it moved nothing, so the payout goes back to approved."""
    async with app.uow() as uow:
        await uow.conn.execute(
            (
                "UPDATE payouts SET status = 'approved', signed_tx = NULL, tx_signature = NULL, "
                "last_valid_block_height = NULL, last_error = :e WHERE id = :id AND tx_signature = :s"
            ),
            {
                "e": f"transaction {signature} failed on chain: {json.dumps(err)[:200]}",
                "id": payout_id,
                "s": signature,
            },
        )
        await audit(
            uow.conn,
            actor=WORKER,
            action="payout.failed",
            target=f"payout #{payout_id}",
            details={"tx": signature, "error": err},
        )
    await _later(app, payout_id, f"transaction {signature} failed on chain")
    return "approved"


async def _later(app: App, payout_id: int, error: str) -> None:
    async with app.uow() as uow:
        tries = (
            await uow.conn.execute("SELECT tries FROM payouts WHERE id = :id", {"id": payout_id})
        ).scalar_one()
        wait = min(MAX_BACKOFF, timedelta(seconds=30 * 2 ** min(tries, 10)))
        await uow.conn.execute(
            "UPDATE payouts SET last_error = :e, next_try_at = :t WHERE id = :id",
            {"e": error[:300], "t": app.clock() + wait, "id": payout_id},
        )


async def resume(app: App) -> dict[int, str]:
    """The beat's job: try again every approved or in-flight payout that is due (a worker that died,
    a node that did not answer, a transaction not final yet)."""
    if not keypair_configured(app):
        return {}
    async with app.uow() as uow:
        ids = (
            (
                await uow.conn.execute(
                    (
                        "SELECT id FROM payouts WHERE status IN ('approved','sending') "
                        "AND (next_try_at IS NULL OR next_try_at <= :now) ORDER BY id LIMIT 50"
                    ),
                    {"now": app.clock()},
                )
            )
            .scalars()
            .all()
        )
    return {payout_id: await pay(app, payout_id) for payout_id in ids}
