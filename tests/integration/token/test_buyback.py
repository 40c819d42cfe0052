"""Buybacks: the reserve spent by moderators, recorded with the implied price; /buyback shows them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from core import ledger
from core.errors import InsufficientFunds, InvalidArgument, NotPermitted
from core.services import attempts
from core.services.token import buyback
from tests.helpers import CONSOLE_MOD, USDC, fund, open_round, player
from tests.integration.test_console import run
from tests.integration.token.conftest import TOKEN
from tests.standins.solana_rpc import random_signature


async def _reserve(app) -> int:
    async with app.uow() as uow:
        return await ledger.balance(
            uow.conn, await app.accounts.get(uow.conn, ledger.BUYBACK_RESERVE)
        )


async def _fill_reserve(app, attempts_made: int = 10) -> None:
    await open_round(app)
    me = player("payer")
    await fund(app, me, 1_000 * USDC)
    for i in range(attempts_made):
        q = await attempts.quote_attempt(app, me, f"try {i}")
        await attempts.confirm_attempt(app, me, q.id)


async def test_a_buyback_spends_the_reserve_with_its_implied_price(token_app):
    app = await token_app()
    await _fill_reserve(app)
    reserve = await _reserve(app)
    assert reserve > 1 * USDC
    tx = random_signature()
    row, left = await buyback.record(app, CONSOLE_MOD, 1_500_000, 35_571 * TOKEN + 12_345_678, tx)
    assert left == reserve - 1_500_000 and await _reserve(app) == left
    # 1.5 USDC / 35,571.12345678 tokens = 0.0000421690364045584827649601122411... (30 significant digits)
    assert row.price_usd == Decimal("0.0000421690364045584827649601122411")
    with pytest.raises(InvalidArgument, match="already recorded"):
        await buyback.record(app, CONSOLE_MOD, 1_000, TOKEN, tx)
    with pytest.raises(InsufficientFunds, match="reserve holds"):
        await buyback.record(app, CONSOLE_MOD, left + 1, TOKEN, random_signature())
    with pytest.raises(NotPermitted):
        await buyback.record(app, player("x", "telegram"), 1_000, TOKEN, random_signature())
    assert await _reserve(app) == left
    async with app.engine.connect() as conn:
        audit = (
            await conn.execute(
                text("SELECT action, details FROM audit_log WHERE action = 'buyback'")
            )
        ).one()
    assert audit.details["tx"] == tx and audit.details["usdc"] == 1_500_000


async def test_buyback_commands_and_their_bad_input(token_app):
    app = await token_app()
    await _fill_reserve(app)
    mod = player("mod")
    tx = random_signature()
    out = " ".join((await run(app, mod, f"/admin buyback 1 25000 {tx}")).split())
    assert "Buyback #1 recorded" in out and "1.00 USDC for 25,000 $100Bs: $0.00004 per token" in out
    shown = " ".join((await run(app, player("anyone", "telegram"), "/buyback")).split())
    assert (
        "#1" in shown
        and "$0.00004 per token" in shown
        and tx in shown
        and "Spent: 1.00 USDC" in shown
    )
    for line, needle in [
        (f"/admin buyback 0 100 {random_signature()}", "more than zero"),
        (f"/admin buyback 1 0 {random_signature()}", "more than zero"),
        (f"/admin buyback 1 1.000000001 {random_signature()}", "at most 8 decimals"),
        ("/admin buyback 1 100 notasignature0", "base58"),
        (f"/admin buyback 1000000 100 {random_signature()}", "reserve holds"),
    ]:
        assert needle in await run(app, mod, line), line
    async with app.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM buybacks"))).scalar_one() == 1
