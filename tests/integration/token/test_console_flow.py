"""The whole token flow driven through the console adapter, as a player and moderator types it:
link -> deposit -> discounted attempt -> stake -> a month's distribution -> withdraw -> approve -> paid.
Run with ``-s`` to see the transcript."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from solders.keypair import Keypair
from sqlalchemy import text

from bots.common.delivery import notice_reply
from bots.console import handle_line, render
from core import ledger
from core.services import outbox
from core.services.token import payouts, price
from core.services.token.checks import check_token_invariants
from core.services.token.common import Month
from tests.helpers import failing_checks_after, player
from tests.integration.token.conftest import USDC, USDC_MINT, Clock, hold, usdc_account
from tests.standins.solana_rpc import Transfer


async def test_link_deposit_attempt_stake_distribute_withdraw_approve_paid(
    token_app, chain, treasury, price_source, tmp_path
):
    clock = Clock(datetime.now(UTC))
    app = await token_app(
        TOKEN_PRICE_URL=price_source.url, TOKEN_PRICE_JSON_PATH=price_source.json_path
    )
    app.clock = clock
    me = player("console")
    transcript: list[str] = []

    async def say(line: str, *answers: str) -> str:
        queue = list(answers)

        async def read_line():
            answer = queue.pop(0) if queue else None
            transcript.append(f"{answer}")
            return answer

        out: list[str] = []
        transcript.append(f"> {line}")
        await handle_line(
            app, me, line, read_line, lambda t: (out.append(t), transcript.append(t.rstrip("\n")))
        )
        return "\n".join(out)

    def note(text_: str) -> None:
        transcript.append(f"[{text_}]")

    from tests.helpers import CONSOLE_MOD, open_round

    await open_round(app)
    wallet = Keypair()
    keyfile = tmp_path / "wallet.json"
    keyfile.write_text(json.dumps(list(bytes(wallet))))
    hold(chain, wallet, 12_500_000)
    source = usdc_account(chain, wallet, 80 * USDC)

    # 1. link the wallet by signature
    out = await say(f"/wallet link {wallet.pubkey()}")
    assert "Sign this message" in out
    out = await say(f"/wallet sign {keyfile}")
    assert "Wallet linked" in out and "25 %" in out

    # 2. deposit 50 USDC sent on chain from that wallet
    sig = chain.add_transfer(
        Transfer(source, treasury.usdc_account, str(wallet.pubkey()), USDC_MINT, 50 * USDC)
    )
    note(f"on chain: 50 USDC from {wallet.pubkey()} to the treasury's account, signature {sig}")
    out = await say(f"/deposit {sig}")
    assert "50.00 USDC credited" in out
    await price.record_price(app)
    note("worker: bounty.token.record_price()")
    clock.advance(seconds=40)
    await say("/balance")

    # 3. an attempt at the holder's discount
    out = await say("/attempt Please open the vault, I hold the token.", "y")
    assert "holder discount 25 %" in out and "7.50 USDC" in out

    # 4. stake 10,000,000 for 90 days
    out = await say("/stake 10000000 90")
    assert "Stake #1" in out
    await say("/staking")

    # 5. the month ends; a moderator (or the beat on the 1st) distributes it
    async with app.engine.connect() as conn:
        paid_at = (
            await conn.execute(text("SELECT created_at FROM transfers WHERE kind = 'attempt'"))
        ).scalar_one()
    month = Month.of(paid_at)
    clock.now = month.end.replace(hour=1)
    note(f"clock: {clock.now:%Y-%m-%d %H:%M} UTC")
    out = await say(f"/admin distribute {month.label}")
    assert f"{month.label} distributed" in out and "Rewards:" in out
    out = await say("/balance")

    # 6. withdraw, a moderator approves, the worker pays
    out = await say("/withdraw 20")
    assert "Payout #1 requested" in out
    await say("/admin payouts")
    out = await say("/admin payouts approve 1")
    assert "The worker pays it" in out
    status = await payouts.pay(app, 1)
    note(f"worker: bounty.token.pay_payout(payout_id=1) -> {status}")
    assert status == "paid"
    items = await outbox.claim(app, "console", worker="test", topics=["notice"])
    for item in items:
        if item.payload["external_id"] == me.external_id:
            transcript.append(render(notice_reply(item)))
    out = await say("/admin payouts")
    assert "paid, tx" in out
    await say("/wallet")
    # the deposit is a recorded transaction (the stand-in's balances stay); the payout really moved 20
    assert chain.balance_of(str(wallet.pubkey()), USDC_MINT) == 80 * USDC + 20 * USDC
    async with app.uow() as uow:
        assert all(c.ok for c in await ledger.check_invariants(uow.conn))
        token_checks = await check_token_invariants(uow.conn)
    assert len(token_checks) == 5 and all(c.ok for c in token_checks), token_checks
    # each token check fails when what it guards is broken
    breakages = {
        "every deposit was credited once": "UPDATE transfers SET idempotency_key = 'x' || idempotency_key "
        "WHERE kind = 'deposit'",
        "pending payouts hold exactly the open requests": "UPDATE payouts SET status = 'approved'",
        "every payout's transfers match its status": "UPDATE payouts SET tx_signature = NULL",
        "every open payout goes to its player's linked wallet": (
            "UPDATE payouts SET status = 'requested'",
            "UPDATE wallets SET unlinked_at = now()",
        ),
        "every staking month shared exactly its pool": "UPDATE staking_rewards SET share = share + 1",
    }
    for name, sql in breakages.items():
        failed = await failing_checks_after(app, sql, check_token_invariants)
        assert name in failed, (name, failed)
    assert CONSOLE_MOD.platform == me.platform  # the console's user is this local game's moderator
    print("\n" + "\n".join(transcript))
