"""Payouts: the only way money leaves the platform, always approved by a moderator first.

``/withdraw`` moves the amount from the player to pending payouts (one ledger transfer) and queues a
request. A moderator approves or rejects it (rejected: the amount goes back). An approved payout is
paid by the worker with the treasury keypair, or marked paid by a moderator with its signature.

The worker never sends a payout twice. Before sending, it stores the signed transaction and its
signature (committed). Every later try looks at that signature on chain first: landed, it waits for
finality and marks it paid; unknown while its blockhash can still land, it re-sends the same bytes
(a cluster accepts one signature once); unknown after the blockhash expired, the transaction can
never land, so only then is a new one signed. Each step is written to the audit log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core import ledger
from core.actors import Actor
from core.db import Conn, UniqueViolation
from core.errors import InsufficientFunds, InvalidArgument, NotConfigured, NotFound
from core.money import usdc
from core.ports.solana import SolanaRejected, SolanaUnavailable
from core.services import notices, outbox
from core.services.players import ensure_player, require_moderator
from core.services.token.codec import parse_signature
from core.services.token.common import (
    ChainUnavailable,
    associated_account,
    audit,
    treasury_usdc_account,
)
from core.services.views import is_demo_install

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)

PAY_JOB = "bounty.token.pay_payout"
USDC_DECIMALS = 6
WORKER = "worker"
OPEN = ("requested", "approved", "sending")
MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class PayoutRow:
    id: int
    player_id: int
    player: str
    wallet_address: str
    amount: int
    status: str
    requested_at: datetime
    decided_by: str | None
    reason: str | None
    tx_signature: str | None
    paid_by: str | None
    last_error: str | None


_SELECT = (
    "SELECT o.id, o.player_id, p.display_name AS player, o.wallet_address, o.amount, o.status, o.requested_at, "
    "o.decided_by, o.reason, o.tx_signature, o.paid_by, o.last_error FROM payouts o "
    "JOIN players p ON p.id = o.player_id"
)


async def _get(conn: Conn, payout_id: int, *, lock: bool = False) -> PayoutRow:
    row = (
        await conn.execute(
            _SELECT + " WHERE o.id = :id" + (" FOR UPDATE OF o" if lock else ""), {"id": payout_id}
        )
    ).first()
    if row is None:
        raise NotFound(f"No payout #{payout_id}. /admin payouts lists them.")
    return PayoutRow(*row)


def keypair_configured(app: App) -> bool:
    return app.settings.TREASURY_KEYPAIR_PATH is not None


# --- the player's side ---


async def request(app: App, actor: Actor, amount: int) -> tuple[PayoutRow, int]:
    """Ask for ``amount`` to be paid to the verified wallet; returns the request and the balance left."""
    if amount <= 0:
        raise InvalidArgument("Withdraw more than zero.")
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        if await is_demo_install(conn):
            raise InvalidArgument(
                "This is a demo game: demo credits are not money and cannot be withdrawn."
            )
        player = await ensure_player(conn, actor)
        wallet = (
            await conn.execute(
                "SELECT address FROM wallets WHERE player_id = :p AND unlinked_at IS NULL",
                {"p": player.id},
            )
        ).scalar_one_or_none()
        if wallet is None:
            raise NotFound(
                "Link your wallet first (/wallet link <address>): payouts go only to your verified wallet."
            )
        payout_id = (
            await conn.execute(
                (
                    "INSERT INTO payouts (player_id, wallet_address, amount, status, requested_at) "
                    "VALUES (:p, :w, :a, 'requested', :now) RETURNING id"
                ),
                {"p": player.id, "w": wallet, "a": amount, "now": now},
            )
        ).scalar_one()
        source = await app.accounts.get(conn, ledger.PLAYER, player.id)
        pending = await app.accounts.get(conn, ledger.PENDING_PAYOUTS)
        try:
            await ledger.transfer(
                conn,
                f"payout:{payout_id}:request",
                "payout_request",
                [(source, -amount), (pending, amount)],
            )
        except InsufficientFunds:
            held = await ledger.balance(conn, source)
            raise InsufficientFunds(
                f"You have {usdc(held)}; you cannot withdraw {usdc(amount)}. Nothing changed."
            ) from None
        await audit(
            conn,
            actor=f"{actor.label} ({player.display_name})",
            player_id=player.id,
            action="payout.request",
            target=f"payout #{payout_id}",
            details={"amount": amount, "wallet": wallet},
        )
        return await _get(conn, payout_id), await ledger.balance(conn, source)


async def mine(app: App, actor: Actor, limit: int = 5) -> list[PayoutRow]:
    async with app.uow() as uow:
        player = await ensure_player(uow.conn, actor)
        rows = (
            await uow.conn.execute(
                _SELECT + " WHERE o.player_id = :p ORDER BY o.id DESC LIMIT :n",
                {"p": player.id, "n": limit},
            )
        ).all()
    return [PayoutRow(*r) for r in rows]


# --- the moderators' side ---


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


async def approve(app: App, actor: Actor, payout_id: int) -> tuple[PayoutRow, bool]:
    """Approve a request; with a treasury keypair the worker pays it. Returns it and whether it will."""
    require_moderator(app.settings, actor)
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        label, mod_id = await _moderator(conn, actor)
        row = await _get(conn, payout_id, lock=True)
        if row.status != "requested":
            raise InvalidArgument(f"Payout #{payout_id} is {row.status}, not waiting for approval.")
        await conn.execute(
            (
                "UPDATE payouts SET status = 'approved', decided_at = :now, decided_by = :by "
                "WHERE id = :id"
            ),
            {"now": now, "by": label, "id": payout_id},
        )
        await audit(
            conn,
            actor=label,
            player_id=mod_id,
            action="payout.approve",
            target=f"payout #{payout_id}",
            details={"amount": row.amount, "wallet": row.wallet_address},
        )
        auto = keypair_configured(app)
        if auto:
            await outbox.enqueue_job(conn, PAY_JOB, key=f"payout:{payout_id}", payout_id=payout_id)
        await notices.notify(
            conn,
            row.player_id,
            "Payout approved",
            f"Your payout #{payout_id} of {usdc(row.amount)} to {row.wallet_address} is approved"
            + (" and on its way." if auto else "; it is paid shortly."),
            key=f"payout:{payout_id}:approved",
            tone="success",
        )
        return await _get(conn, payout_id), auto


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
        row = await _get(conn, payout_id, lock=True)
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
        return await _get(conn, payout_id)


async def mark_paid(app: App, actor: Actor, payout_id: int, signature_text: str) -> PayoutRow:
    """Record an approved payout as paid by a transaction a moderator sent; the transaction is checked
    on chain (finalized, and USDC of at least the amount reached the player's wallet)."""
    require_moderator(app.settings, actor)
    signature = parse_signature(signature_text, "transaction signature")
    async with app.uow() as uow:
        row = await _get(uow.conn, payout_id)
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
            if not await _settle(
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
            return await _get(conn, payout_id)
    except UniqueViolation:
        raise InvalidArgument("That transaction already paid another payout.") from None


async def _check_paid_on_chain(app: App, row: PayoutRow, signature: str) -> None:
    from core.services.token.deposits import token_moves

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
        m.amount for m in moves if m.mint == app.settings.USDC_MINT and m.destination in owned
    )
    if paid < row.amount:
        raise InvalidArgument(
            f"That transaction sends {usdc(paid)} to {row.wallet_address}; the payout is "
            f"{usdc(row.amount)}. Not marked paid."
        )


async def _settle(
    app: App, conn: Conn, payout_id: int, signature: str, *, paid_by: str, from_status: str
) -> bool:
    """Mark paid and move the amount from pending payouts to the outside world, once."""
    now = app.clock()
    row = (
        await conn.execute(
            (
                "UPDATE payouts SET status = 'paid', paid_at = :now, paid_by = :by, tx_signature = :s, "
                "last_error = NULL, next_try_at = NULL WHERE id = :id AND status = :from RETURNING player_id, amount, "
                "wallet_address"
            ),
            {"now": now, "by": paid_by, "s": signature, "id": payout_id, "from": from_status},
        )
    ).first()
    if row is None:
        return False
    pending = await app.accounts.get(conn, ledger.PENDING_PAYOUTS)
    treasury = await app.accounts.get(conn, ledger.TREASURY)
    await ledger.transfer(
        conn,
        f"payout:{payout_id}:paid",
        "payout",
        [(pending, -row.amount), (treasury, row.amount)],
        memo=f"tx {signature}",
    )
    await notices.notify(
        conn,
        row.player_id,
        "Payout paid",
        f"Your payout #{payout_id} of {usdc(row.amount)} was paid to {row.wallet_address}.\n"
        f"Transaction: {signature}",
        key=f"payout:{payout_id}:paid",
        tone="success",
    )
    return True


# --- the worker ---


def load_treasury_keypair(app: App) -> Any:
    from solders.keypair import Keypair

    path = app.settings.TREASURY_KEYPAIR_PATH
    if path is None:
        raise NotConfigured(
            "No treasury keypair (TREASURY_KEYPAIR_PATH): moderators mark payouts paid."
        )
    try:
        numbers = json.loads(path.read_text("utf-8"))
        keypair = Keypair.from_bytes(bytes(numbers))
    except (OSError, ValueError, TypeError):
        # Never the file's content: it is the treasury's secret key.
        raise NotConfigured(
            f"TREASURY_KEYPAIR_PATH {path} is not a readable Solana keypair file."
        ) from None
    wallet = app.settings.TREASURY_WALLET
    if wallet is not None and str(keypair.pubkey()) != wallet:
        raise NotConfigured(
            "TREASURY_KEYPAIR_PATH holds another wallet's key than TREASURY_WALLET."
        )
    return keypair


def build_transfer(
    app: App, keypair: Any, wallet: str, amount: int, blockhash: str
) -> tuple[bytes, str]:
    """A signed USDC transfer from the treasury to the wallet's associated account (created if needed)."""
    from solders.hash import Hash
    from solders.message import MessageV0
    from solders.pubkey import Pubkey
    from solders.transaction import VersionedTransaction
    from spl.token.constants import TOKEN_PROGRAM_ID
    from spl.token.instructions import create_idempotent_associated_token_account, transfer_checked
    from spl.token.models import TransferCheckedParams

    mint = Pubkey.from_string(app.settings.USDC_MINT)
    owner = Pubkey.from_string(wallet)
    treasury = keypair.pubkey()
    source = (
        Pubkey.from_string(treasury_usdc_account(app.settings))
        if app.settings.TREASURY_USDC_ACCOUNT
        else Pubkey.from_string(associated_account(str(treasury), str(mint)))
    )
    dest = Pubkey.from_string(associated_account(wallet, str(mint)))
    instructions = [
        create_idempotent_associated_token_account(treasury, owner, mint),
        transfer_checked(
            TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                source=source,
                mint=mint,
                dest=dest,
                owner=treasury,
                amount=amount,
                decimals=USDC_DECIMALS,
            )
        ),
    ]
    message = MessageV0.try_compile(treasury, instructions, [], Hash.from_string(blockhash))
    tx = VersionedTransaction(message, [keypair])
    return bytes(tx), str(tx.signatures[0])


async def pay(app: App, payout_id: int) -> str:
    """Pay an approved payout on chain (the worker's job; safe to run again at any point). Returns the
    payout's status afterwards, or "busy" when another worker is paying it right now."""
    pool = await app.db.pool()
    async with pool.acquire() as lock:
        # A session lock, held across the network calls, so two workers never pay one payout at once.
        if not await lock.fetchval("SELECT pg_try_advisory_lock(7, $1)", payout_id):
            return "busy"
        try:
            return await _pay_locked(app, payout_id)
        finally:
            await lock.execute("SELECT pg_advisory_unlock(7, $1)", payout_id)


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
        settled = await _settle(
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
