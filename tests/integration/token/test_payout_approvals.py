"""No moderator pays money out alone (SPEC §10.6): every payout needs PAYOUT_APPROVALS distinct
moderators, never the payee; a moderator who grants a balance to an accomplice cannot also approve
its withdrawal by themselves; `/admin audit` shows who asked for and who approved each grant and
payout."""

from __future__ import annotations

import pytest

from core.actors import Actor
from core.errors import InvalidArgument, NotPermitted
from core.services import admin, moderation, views
from core.services.players import ensure_player
from core.services.token import payouts
from tests.helpers import USDC, fund, player
from tests.integration.token.conftest import link

MONA = Actor("telegram", "4242", "Mona", username="mona_mod")
OTTO = Actor("telegram", "4343", "Otto", username="otto_mod")
IDA = Actor("telegram", "4444", "Ida", username="ida_mod")


async def pid(app, actor) -> int:
    async with app.uow() as uow:
        return (await ensure_player(uow.conn, actor)).id


@pytest.fixture
async def mods(token_app):
    return await token_app(MODERATOR_TELEGRAM_USER_IDS="4242,4343,4444", PAYOUT_APPROVALS=2)


async def test_a_payout_needs_two_moderators_none_of_them_the_payee(mods, chain):
    app = mods
    # A moderator's own withdrawal: they cannot approve it, the two others can.
    await fund(app, MONA, 40 * USDC)
    await link(app, MONA)
    own, _ = await payouts.request(app, MONA, 40 * USDC)
    with pytest.raises(NotPermitted, match="for themselves"):
        await payouts.approve(app, MONA, own.id)

    # An accomplice's withdrawal: one approval is not enough, and approving twice counts once.
    accomplice = player("acc", "telegram")
    await fund(app, accomplice, 30 * USDC)
    await link(app, accomplice)
    theirs, _ = await payouts.request(app, accomplice, 30 * USDC)
    first = await payouts.approve(app, OTTO, theirs.id)
    assert (first.approved, first.approvals, first.needed) == (False, 1, 2)
    with pytest.raises(InvalidArgument, match="approved payout #\\d+ already"):
        await payouts.approve(app, OTTO, theirs.id)
    async with app.uow() as uow:
        assert (await payouts.get(uow.conn, theirs.id)).status == "requested"
    second = await payouts.approve(app, IDA, theirs.id)
    assert second.approved and second.approvals == 2

    # The audit names both approvers, and who turned a payout down.
    await payouts.reject(app, OTTO, own.id, "not today")
    ref = f"#{await pid(app, accomplice)}"
    lines = "\n".join((await moderation.player_audit(app, MONA, ref)).entries)
    print(lines)
    assert f"payout #{theirs.id} of 30.00 USDC" in lines
    assert "approved by telegram:4343 (Otto), telegram:4444 (Ida)" in lines
    mine = "\n".join((await moderation.player_audit(app, OTTO, f"#{await pid(app, MONA)}")).entries)
    assert (
        f"payout #{own.id}" in mine
        and "rejected; turned down by telegram:4343 (Otto) — not today" in mine
    )
    assert (await views.balance(app, MONA))[0] == 40 * USDC  # the rejected payout came back


async def test_the_audit_shows_who_asked_for_a_grant_and_who_approved_it(mods):
    app = mods
    alice = player("alice", "telegram")
    await views.balance(app, alice)
    ref = f"#{await pid(app, alice)}"
    big = await admin.grant(app, MONA, ref, 500 * USDC, "prize")
    await admin.decide_grant(app, OTTO, big.request_id, True)
    lines = (await moderation.player_audit(app, IDA, ref)).entries
    print("\n".join(lines))
    assert any(
        "grant by telegram:4343 (Otto): 500.00 USDC (asked for by telegram:4242 (Mona))" in line
        for line in lines
    )
    assert any(
        "grant asked for (waits for a second moderator) by telegram:4242 (Mona)" in x for x in lines
    )
