"""The player's side of a payout: ``/withdraw`` moves the amount from the player to pending payouts
(one ledger transfer) and queues a request for the moderators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.errors import InsufficientFunds, InvalidArgument, NotFound
from core.money import usdc
from core.services.audit import audit_line as audit
from core.services.meta import is_demo_install
from core.services.players import ensure_player, hold
from core.services.token.payouts.common import _SELECT, PayoutRow, get

if TYPE_CHECKING:
    from core.app import App


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
        # The player first (the lock order: an erasure or a /link waits, or goes first), then the
        # wallet, held until the request is written: /wallet unlink locks the row for update, so it
        # waits and then sees this payout (and refuses), or unlinks first and this finds no wallet.
        player = await hold(conn, await ensure_player(conn, actor))
        wallet = (
            await conn.execute(
                "SELECT address FROM wallets WHERE player_id = :p AND unlinked_at IS NULL FOR SHARE",
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
        return await get(conn, payout_id), await ledger.balance(conn, source)


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
