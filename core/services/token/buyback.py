"""Buybacks: moderators spend the buyback reserve on tokens (on a DEX, outside the game) and record
each purchase with its transaction and implied price."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.base58 import parse_signature
from core.db import UniqueViolation, locks
from core.db.locks import Lock
from core.errors import InsufficientFunds, InvalidArgument
from core.money import usdc
from core.services.audit import audit_line as audit
from core.services.players import ensure_player, require_moderator
from core.services.token.common import token_currency

if TYPE_CHECKING:
    from core.app import App


@dataclass(frozen=True)
class BuybackRow:
    id: int
    usdc: int
    tokens: int
    price_usd: Decimal
    tx_signature: str
    moderator: str
    created_at: datetime


def implied_price(usdc_micro: int, token_units: int, unit: int) -> Decimal:
    """USD per whole token, exact to 30 significant digits."""
    with localcontext() as ctx:
        ctx.prec = 30
        return (Decimal(usdc_micro) * unit) / (Decimal(token_units) * 1_000_000)


async def record(
    app: App, actor: Actor, usdc_amount: int, token_amount: int, tx: str
) -> tuple[BuybackRow, int]:
    """Spend ``usdc_amount`` of the reserve (audited); returns the event and the reserve left."""
    require_moderator(app.settings, actor)
    signature = parse_signature(tx, "transaction signature")
    if usdc_amount <= 0 or token_amount <= 0:
        raise InvalidArgument("A buyback spends more than zero USDC for more than zero tokens.")
    price = implied_price(usdc_amount, token_amount, token_currency(app.settings).unit)
    try:
        async with app.uow() as uow:
            conn = uow.conn
            mod = await ensure_player(conn, actor)
            await locks.xact(conn, Lock.BUYBACK)
            reserve = await app.accounts.get(conn, ledger.BUYBACK_RESERVE)
            held = await ledger.balance(conn, reserve)
            if usdc_amount > held:
                raise InsufficientFunds(
                    f"The buyback reserve holds {usdc(held)}; a buyback of {usdc(usdc_amount)} "
                    "is more than that. Nothing was recorded."
                )
            known = (
                await conn.execute(
                    "SELECT id FROM buybacks WHERE tx_signature = :s", {"s": signature}
                )
            ).first()
            if known is not None:
                raise InvalidArgument(
                    f"That transaction is already recorded as buyback #{known.id}."
                )
            label = f"{actor.label} ({mod.display_name})"
            transfer_id = await ledger.transfer(
                conn,
                f"buyback:{signature}",
                "buyback",
                [
                    (reserve, -usdc_amount),
                    (await app.accounts.get(conn, ledger.TREASURY), usdc_amount),
                ],
                memo=f"bought {token_amount} base units",
            )
            row = (
                await conn.execute(
                    (
                        "INSERT INTO buybacks (usdc, tokens, price_usd, tx_signature, moderator_player_id, moderator, "
                        "transfer_id) VALUES (:u, :t, :p, :s, :mp, :m, :tid) "
                        "RETURNING id, usdc, tokens, price_usd, tx_signature, moderator, created_at"
                    ),
                    {
                        "u": usdc_amount,
                        "t": token_amount,
                        "p": price,
                        "s": signature,
                        "mp": mod.id,
                        "m": label,
                        "tid": transfer_id,
                    },
                )
            ).one()
            await audit(
                conn,
                actor=label,
                player_id=mod.id,
                action="buyback",
                target=f"buyback #{row.id}",
                details={
                    "usdc": usdc_amount,
                    "tokens": token_amount,
                    "price_usd": str(price),
                    "tx": signature,
                },
            )
            left = await ledger.balance(conn, reserve)
    except UniqueViolation:
        raise InvalidArgument("That transaction is already recorded as a buyback.") from None
    return BuybackRow(*row), left


@dataclass(frozen=True)
class History:
    events: list[BuybackRow]
    reserve: int
    spent: int
    bought: int


async def history(app: App, limit: int = 25) -> History:
    async with app.uow() as uow:
        conn = uow.conn
        rows = (
            await conn.execute(
                (
                    "SELECT id, usdc, tokens, price_usd, tx_signature, moderator, created_at FROM buybacks "
                    "ORDER BY id DESC LIMIT :n"
                ),
                {"n": limit},
            )
        ).all()
        totals = (
            await conn.execute(
                "SELECT CAST(COALESCE(SUM(usdc), 0) AS bigint) AS u, "
                "CAST(COALESCE(SUM(tokens), 0) AS bigint) AS t FROM buybacks"
            )
        ).one()
        reserve = await ledger.balance(conn, await app.accounts.get(conn, ledger.BUYBACK_RESERVE))
    return History([BuybackRow(*r) for r in rows], reserve, totals.u, totals.t)
