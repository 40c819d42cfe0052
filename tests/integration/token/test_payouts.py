"""Payouts: requested, approved or rejected by a moderator, paid by the worker with the treasury
keypair (a signed SPL transfer sent by RPC, finalized before it is marked paid, never sent twice,
also when the worker dies between sending and marking) or marked paid with a checked signature."""

from __future__ import annotations

import asyncio
import json

import pytest
from solders.keypair import Keypair
from sqlalchemy import text

from core import ledger
from core.errors import InsufficientFunds, InvalidArgument, NotFound, NotPermitted
from core.ports.solana import RpcSolana
from core.services.token import payouts, wallets
from core.services.token.common import associated_account
from tests.helpers import CONSOLE_MOD, USDC, fund, paused, player
from tests.integration.test_console import run
from tests.integration.token.conftest import USDC_MINT, link
from tests.standins.solana_rpc import Transfer


class WorkerDied(BaseException):
    """The worker process is killed: nothing after this point of the job runs."""


class DiesAfterSending(RpcSolana):
    """The real RPC client; the process dies right after the node accepted the transaction."""

    async def send_transaction(self, wire: bytes) -> str:
        await super().send_transaction(wire)
        raise WorkerDied()


class DiesBeforeSending(RpcSolana):
    """The process dies after the signed transaction was stored, before it reached the node."""

    async def send_transaction(self, wire: bytes) -> str:
        raise WorkerDied()


async def _state(app, payout_id: int):
    async with app.engine.connect() as conn:
        return (
            await conn.execute(text("SELECT * FROM payouts WHERE id = :id"), {"id": payout_id})
        ).one()


async def _audit(app, payout_id: int) -> list[str]:
    async with app.engine.connect() as conn:
        return (
            (
                await conn.execute(
                    text("SELECT action FROM audit_log WHERE target = :t ORDER BY id"),
                    {"t": f"payout #{payout_id}"},
                )
            )
            .scalars()
            .all()
        )


async def _accounts(app, actor) -> tuple[int, int, int]:
    """(player, pending payouts, treasury) balances."""
    from core.services.players import ensure_player

    async with app.uow() as uow:
        conn = uow.conn
        p = await ensure_player(conn, actor)
        return (
            await ledger.balance(conn, await app.accounts.get(conn, ledger.PLAYER, p.id)),
            await ledger.balance(conn, await app.accounts.get(conn, ledger.PENDING_PAYOUTS)),
            await ledger.balance(conn, await app.accounts.get(conn, ledger.TREASURY)),
        )


def on_chain(chain, wallet: Keypair) -> int:
    return chain.balance_of(str(wallet.pubkey()), USDC_MINT)


async def requested(app, name: str, amount: int = 40 * USDC, funds: int = 100 * USDC):
    me = player(name)
    await fund(app, me, funds)
    kp = await link(app, me)
    row, _ = await payouts.request(app, me, amount)
    return me, kp, row


async def test_request_approve_and_the_worker_pays_once(token_app, chain):
    app = await token_app()
    me, kp, row = await requested(app, "w1")
    assert await _accounts(app, me) == (
        60 * USDC,
        40 * USDC,
        0,
    )  # held aside, still on the platform
    assert await payouts.pay(app, row.id) == "requested"  # never paid without approval
    assert chain.sent == []
    approval = await payouts.approve(app, CONSOLE_MOD, row.id)
    assert approval.worker_pays and approval.payout.status == "approved" and approval.exempt
    async with app.engine.connect() as conn:
        job = (
            await conn.execute(text("SELECT payload FROM outbox WHERE topic = 'job'"))
        ).scalar_one()
    assert job == {"name": "bounty.token.pay_payout", "kwargs": {"payout_id": row.id}}
    assert await payouts.pay(app, row.id) == "paid"
    state = await _state(app, row.id)
    assert (
        state.status == "paid"
        and state.paid_by == "worker"
        and chain.sends_of(state.tx_signature) == 1
    )
    assert on_chain(chain, kp) == 40 * USDC  # the wallet's USDC account was created and credited
    assert (
        await payouts.pay(app, row.id) == "paid" and len(chain.sent) == 1
    )  # a second job sends nothing
    assert await _accounts(app, me) == (60 * USDC, 0, 40 * USDC)  # left for the outside world
    assert await _audit(app, row.id) == [
        "payout.request",
        "payout.approve",
        "payout.signed",
        "payout.sent",
        "payout.paid",
    ]
    async with app.uow() as uow:
        assert all(c.ok for c in await ledger.check_invariants(uow.conn))


async def test_the_worker_dies_between_sending_and_marking_and_it_is_not_sent_twice(
    token_app, chain
):
    app = await token_app()
    me, kp, row = await requested(app, "w2")
    await payouts.approve(app, CONSOLE_MOD, row.id)
    app.solana = DiesAfterSending(chain.url, timeout=1.0)
    with pytest.raises(WorkerDied):
        await payouts.pay(app, row.id)
    await app.solana.aclose()
    state = await _state(app, row.id)
    assert state.status == "sending" and chain.sends_of(state.tx_signature) == 1
    # the job runs again (a new worker): it finds the signature on chain and only marks it paid
    again = await token_app(reset=False)
    assert await payouts.pay(again, row.id) == "paid"
    assert chain.sent == [state.tx_signature]
    assert on_chain(chain, kp) == 40 * USDC
    assert (await _state(again, row.id)).status == "paid"
    assert await _audit(app, row.id) == [
        "payout.request",
        "payout.approve",
        "payout.signed",
        "payout.paid",
    ]


async def test_the_worker_dies_before_sending_and_the_same_transaction_is_sent_later(
    token_app, chain
):
    app = await token_app()
    me, kp, row = await requested(app, "w3")
    await payouts.approve(app, CONSOLE_MOD, row.id)
    app.solana = DiesBeforeSending(chain.url, timeout=1.0)
    with pytest.raises(WorkerDied):
        await payouts.pay(app, row.id)
    stored = await _state(app, row.id)
    assert stored.status == "sending" and stored.signed_tx and chain.sent == []
    again = await token_app(reset=False)
    assert await payouts.pay(again, row.id) == "paid"
    assert chain.sent == [stored.tx_signature]  # the stored bytes, not a new transaction
    assert on_chain(chain, kp) == 40 * USDC


async def test_a_dropped_transaction_is_resent_as_is_while_its_blockhash_is_valid(token_app, chain):
    app = await token_app(SOLANA_CONFIRM_SECONDS=0.05)
    me, kp, row = await requested(app, "w4")
    await payouts.approve(app, CONSOLE_MOD, row.id)
    chain.drop_sends = 1
    assert await payouts.pay(app, row.id) == "sending"  # never seen on chain: not final in time
    sig = (await _state(app, row.id)).tx_signature
    assert await payouts.pay(app, row.id) == "paid"
    assert chain.sent == [sig, sig] and chain.landed == [sig]
    assert on_chain(chain, kp) == 40 * USDC


async def test_only_an_expired_blockhash_lets_a_new_transaction_replace_the_old(token_app, chain):
    app = await token_app(SOLANA_CONFIRM_SECONDS=0.05)
    me, kp, row = await requested(app, "w5")
    await payouts.approve(app, CONSOLE_MOD, row.id)
    chain.drop_sends = 1
    assert await payouts.pay(app, row.id) == "sending"
    old = (await _state(app, row.id)).tx_signature
    chain.advance(151)  # past the old transaction's last valid block height: it can never land
    assert await payouts.pay(app, row.id) == "paid"
    new = (await _state(app, row.id)).tx_signature
    assert new != old and chain.landed == [new]
    assert on_chain(chain, kp) == 40 * USDC  # paid once
    assert "payout.expired" in await _audit(app, row.id)


async def test_finality_is_awaited_and_a_slow_one_is_picked_up_by_the_beat(token_app, chain):
    clock_app = await token_app(SOLANA_CONFIRM_SECONDS=0.05)
    me, kp, row = await requested(clock_app, "w6")
    await payouts.approve(clock_app, CONSOLE_MOD, row.id)
    chain.finality_lag = 10_000
    assert await payouts.pay(clock_app, row.id) == "sending"
    state = await _state(clock_app, row.id)
    assert state.next_try_at is not None and "not finalized" in state.last_error
    assert await payouts.resume(clock_app) == {}  # not due yet
    chain.transactions[state.tx_signature].finalize_after = 2
    from datetime import timedelta

    later = state.next_try_at + timedelta(seconds=1)
    clock_app.clock = lambda: later
    assert await payouts.resume(clock_app) == {row.id: "paid"}
    assert chain.sends_of(state.tx_signature) == 1


async def test_two_workers_at_once_send_once(token_app, chain):
    app = await token_app()
    me, kp, row = await requested(app, "w7")
    await payouts.approve(app, CONSOLE_MOD, row.id)
    other = await token_app(reset=False)
    results = await asyncio.gather(payouts.pay(app, row.id), payouts.pay(other, row.id))
    assert "paid" in results and set(results) <= {"paid", "busy"}
    assert len(chain.sent) == 1 and on_chain(chain, kp) == 40 * USDC


async def test_a_refused_send_keeps_the_transaction_until_its_blockhash_expires(
    token_app, chain, treasury
):
    app = await token_app(SOLANA_CONFIRM_SECONDS=0.05)
    me, kp, row = await requested(app, "w8")
    await payouts.approve(app, CONSOLE_MOD, row.id)
    chain.set_balance(treasury.usdc_account, 1 * USDC)  # the treasury cannot pay: preflight refuses
    assert await payouts.pay(app, row.id) == "sending"
    state = await _state(app, row.id)
    assert "insufficient" in state.last_error or "0x1" in state.last_error
    assert "payout.send_refused" in await _audit(app, row.id)
    chain.set_balance(treasury.usdc_account, 1_000 * USDC)
    chain.advance(151)
    assert await payouts.pay(app, row.id) == "paid"
    assert on_chain(chain, kp) == 40 * USDC and len(chain.landed) == 1


async def test_reject_returns_the_funds_and_is_refused_once_the_worker_sends(token_app, chain):
    app = await token_app()
    me, kp, row = await requested(app, "r1")
    with pytest.raises(InvalidArgument, match="needs a reason"):
        await payouts.reject(app, CONSOLE_MOD, row.id, "  ")
    rejected = await payouts.reject(app, CONSOLE_MOD, row.id, "looks like a stolen account")
    assert rejected.status == "rejected"
    assert await _accounts(app, me) == (100 * USDC, 0, 0)
    with pytest.raises(InvalidArgument, match="is rejected"):
        await payouts.approve(app, CONSOLE_MOD, row.id)
    assert await payouts.pay(app, row.id) == "rejected" and chain.sent == []
    _, _, second = await requested(app, "r2")
    await payouts.approve(app, CONSOLE_MOD, second.id)
    app.solana = DiesAfterSending(chain.url, timeout=1.0)
    with pytest.raises(WorkerDied):
        await payouts.pay(app, second.id)
    with pytest.raises(InvalidArgument, match="may already be on chain"):
        await payouts.reject(app, CONSOLE_MOD, second.id, "too late")


async def test_a_moderator_marks_an_approved_payout_paid_by_a_checked_transaction(
    token_app, chain, treasury
):
    app = await token_app(TREASURY_KEYPAIR_PATH="")
    me, kp, row = await requested(app, "m1")
    sig_bad = chain.add_transfer(
        Transfer(
            treasury.usdc_account,
            associated_account(str(kp.pubkey()), USDC_MINT),
            treasury.wallet,
            USDC_MINT,
            39 * USDC,
            destination_owner=str(kp.pubkey()),
        )
    )
    sig = chain.add_transfer(
        Transfer(
            treasury.usdc_account,
            associated_account(str(kp.pubkey()), USDC_MINT),
            treasury.wallet,
            USDC_MINT,
            40 * USDC,
            destination_owner=str(kp.pubkey()),
        )
    )
    # the player paying themselves (or anyone but the treasury) does not pay a payout
    sig_self = chain.add_transfer(
        Transfer(
            associated_account(str(kp.pubkey()), USDC_MINT),
            associated_account(str(kp.pubkey()), USDC_MINT),
            str(kp.pubkey()),
            USDC_MINT,
            40 * USDC,
            destination_owner=str(kp.pubkey()),
        )
    )
    with pytest.raises(InvalidArgument, match="approve it first"):
        await payouts.mark_paid(app, CONSOLE_MOD, row.id, sig)
    approval = await payouts.approve(app, CONSOLE_MOD, row.id)
    assert not approval.worker_pays  # no keypair: no job
    with pytest.raises(InvalidArgument, match="sends 0.00 USDC from the treasury"):
        await payouts.mark_paid(app, CONSOLE_MOD, row.id, sig_self)
    with pytest.raises(InvalidArgument, match="sends 39.00 USDC"):
        await payouts.mark_paid(app, CONSOLE_MOD, row.id, sig_bad)
    paid = await payouts.mark_paid(app, CONSOLE_MOD, row.id, sig)
    assert (
        paid.status == "paid"
        and paid.tx_signature == sig
        and paid.paid_by.startswith("console:operator")
    )
    assert await _accounts(app, me) == (60 * USDC, 0, 40 * USDC)
    _, _, other = await requested(app, "m2")
    await payouts.approve(app, CONSOLE_MOD, other.id)
    with pytest.raises(InvalidArgument, match="already paid payout"):
        await payouts.mark_paid(app, CONSOLE_MOD, other.id, sig)
    assert chain.sent == []  # nothing was sent by the game


async def test_withdraw_bad_input_is_answered_and_changes_nothing(token_app, chain):
    app = await token_app()
    me = player("bad")
    await fund(app, me, 10 * USDC)
    assert "Link your wallet first" in await run(app, me, "/withdraw 5")
    await link(app, me)
    for line, needle in [
        ("/withdraw 0", "more than zero"),
        ("/withdraw -1", "positive"),
        ("/withdraw 10.0000001", "at most 6 decimals"),
        ("/withdraw 11", "cannot withdraw 11.00 USDC"),
        ("/withdraw ten", "not an amount"),
    ]:
        assert needle in await run(app, me, line), line
    assert await _accounts(app, me) == (10 * USDC, 0, 0)
    with pytest.raises(NotFound):
        await payouts.approve(app, CONSOLE_MOD, 999)
    with pytest.raises(NotPermitted):
        await payouts.approve(app, player("notmod", "telegram"), 1)
    with pytest.raises(InsufficientFunds):
        await payouts.request(app, me, 10 * USDC + 1)


async def test_a_banned_player_cannot_withdraw_and_a_demo_game_pays_nothing(token_app, chain):
    app = await token_app()
    me = player("ban")
    await fund(app, me, 10 * USDC)
    await link(app, me)
    async with app.engine.begin() as conn:
        await conn.execute(
            text("UPDATE players SET banned_until = now() + interval '1 day', ban_reason = 'spam'")
        )
    assert "banned" in await run(app, me, "/withdraw 5")
    async with app.engine.begin() as conn:
        await conn.execute(text("UPDATE players SET banned_until = NULL"))
        await conn.execute(text("INSERT INTO game_meta (key, value) VALUES ('demo', 'true')"))
    assert "demo credits are not money" in await run(app, me, "/withdraw 5")
    assert await _accounts(app, me) == (10 * USDC, 0, 0)


async def test_a_pending_payout_keeps_the_wallet_linked(token_app, chain):
    app = await token_app()
    me, kp, row = await requested(app, "keep")
    assert "stays linked" in await run(app, me, "/wallet unlink")
    await payouts.reject(app, CONSOLE_MOD, row.id, "testing")
    assert "no longer linked" in await run(app, me, "/wallet unlink")


async def test_a_bad_treasury_keypair_is_reported_by_its_path_only(token_app, chain, tmp_path):
    from core.errors import NotConfigured

    secret = tmp_path / "treasury.json"
    secret.write_text('[1, 2, "SECRET-KEY-MATERIAL"]')
    app = await token_app(TREASURY_KEYPAIR_PATH=str(secret))
    _, _, row = await requested(app, "k1")
    await payouts.approve(app, CONSOLE_MOD, row.id)
    with pytest.raises(NotConfigured) as err:
        await payouts.pay(app, row.id)
    assert str(secret) in err.value.message and "SECRET" not in err.value.message
    other = await token_app(
        reset=False, TREASURY_KEYPAIR_PATH=str(tmp_path / "treasury-other.json")
    )
    (tmp_path / "treasury-other.json").write_text(json.dumps(list(bytes(Keypair()))))
    with pytest.raises(NotConfigured, match="another wallet"):
        await payouts.pay(other, row.id)
    assert chain.sent == []


async def test_a_payout_requested_while_the_wallet_is_unlinked_keeps_it_linked(
    token_app, chain, monkeypatch
):
    """The race: a withdrawal has read the wallet and is writing its request while the same player
    (or their other linked account) unlinks that wallet. One of them waits for the other: the
    payout never ends up pending towards a wallet that is no longer linked."""
    app = await token_app()
    me = player("race")
    await fund(app, me, 20 * USDC)
    await link(app, me)
    async with paused(monkeypatch, ledger, "transfer") as (reached, release):
        withdrawal = asyncio.create_task(payouts.request(app, me, 5 * USDC))
        await reached.wait()  # the request holds its wallet; its transfer is written
        unlinking = asyncio.create_task(wallets.unlink(app, me))
        await asyncio.sleep(0.3)
        assert not unlinking.done()  # it waits for the withdrawal
        release.set()
        row, _ = await withdrawal
    with pytest.raises(InvalidArgument, match="stays linked"):
        await unlinking
    async with app.engine.connect() as conn:
        linked = (
            await conn.execute(
                text("SELECT count(*) FROM wallets WHERE address = :w AND unlinked_at IS NULL"),
                {"w": row.wallet_address},
            )
        ).scalar_one()
    assert linked == 1
