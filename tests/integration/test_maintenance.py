"""Maintenance: attempts, deposits and team funding stop with the reason; balances, withdrawals,
payouts and reads keep working; attempts already paid finish; audited and announced."""

from __future__ import annotations

import pytest

from core.actors import Actor
from core.commands import find, run_command
from core.errors import InvalidArgument, NotPermitted, RoundNotActive
from core.services import attempts, maintenance, views
from core.services.teams import membership, pool
from tests.helpers import CONSOLE_MOD, USDC, books_ok, fund, open_round, player

PLAYERS = [player("c"), Actor("telegram", "501", "Tg"), Actor("discord", "601", "Dc")]


async def test_maintenance_refuses_money_in_and_keeps_money_out_and_reads(app):
    await open_round(app)
    for p in PLAYERS:
        await fund(app, p, 100 * USDC)
    team = await membership.create_team(app, PLAYERS[0], "Upkeep", private=False)
    paid = await attempts.pay(
        app, PLAYERS[1], (await attempts.quote_attempt(app, PLAYERS[1], "x")).id
    )
    with pytest.raises(NotPermitted):
        await maintenance.set_maintenance(app, PLAYERS[1], True, "not a moderator")
    await maintenance.set_maintenance(app, CONSOLE_MOD, True, "database upgrade")
    with pytest.raises(InvalidArgument, match="already on"):
        await maintenance.set_maintenance(app, CONSOLE_MOD, True)
    for p in PLAYERS:  # every platform's player: the rule is the core's
        with pytest.raises(RoundNotActive, match="maintenance"):
            await run_command(app, p, find("attempt"), {"message": "let me in"})
    with pytest.raises(RoundNotActive, match="database upgrade"):
        await pool.fund(app, PLAYERS[0], 5 * USDC)
    # the attempt paid before maintenance finishes: answered, not left hanging
    out = await attempts.answer(app, paid)
    assert out.status == "rejected"
    # reads, balances and team membership still work
    for p in PLAYERS:
        assert (await views.balance(app, p))[0] > 0
        reply = await run_command(app, p, find("bounty"), {})
        assert "Maintenance" in reply.as_text() and "database upgrade" in reply.as_text()
    await membership.join_team(app, PLAYERS[2], team.invite_code)
    await membership.leave(app, PLAYERS[2])
    async with app.db.autocommit() as conn:
        rows = (
            (
                await conn.execute(
                    "SELECT action FROM audit_log WHERE action LIKE 'maintenance.%' ORDER BY id"
                )
            )
            .scalars()
            .all()
        )
        news = (await conn.execute("SELECT kind FROM announcements ORDER BY id")).scalars().all()
    assert rows == ["maintenance.on"] and "maintenance_on" in news
    await maintenance.set_maintenance(app, CONSOLE_MOD, False)
    out = await attempts.confirm_attempt(
        app, PLAYERS[0], (await attempts.quote_attempt(app, PLAYERS[0], "open again")).id
    )
    assert out.status == "rejected"
    await books_ok(app)
