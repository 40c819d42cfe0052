"""USDC deposits through getTransaction (finalized, jsonParsed): exactly the amount, once per
signature even when requests race, inner instructions count, and every refusal has its own reason."""

from __future__ import annotations

import asyncio

import pytest
from solders.keypair import Keypair
from sqlalchemy import text

from core import ledger
from core.errors import NotConfigured
from core.services.token import deposits
from core.services.token.common import ChainUnavailable
from tests.helpers import player
from tests.integration.token.conftest import MINT, USDC, USDC_MINT, link, usdc_account
from tests.standins.solana_rpc import Transfer, random_address, random_signature


async def _balance(app, actor) -> int:
    from core.services import views

    return (await views.balance(app, actor))[0]


async def _deposits(app) -> list:
    async with app.engine.connect() as conn:
        return (
            await conn.execute(text("SELECT signature, amount FROM deposits ORDER BY created_at"))
        ).all()


def send(
    wallet: Keypair,
    source: str,
    to: str,
    amount: int,
    *,
    mint: str = USDC_MINT,
    checked: bool = True,
) -> Transfer:
    return Transfer(
        source=source,
        destination=to,
        authority=str(wallet.pubkey()),
        mint=mint,
        amount=amount,
        checked=checked,
    )


async def test_a_finalized_transfer_credits_exactly_its_amount_once(token_app, chain, treasury):
    app = await token_app()
    me = player("dep1")
    kp = await link(app, me)
    src = usdc_account(chain, kp, 500 * USDC)
    sig = chain.add_transfer(send(kp, src, treasury.usdc_account, 123_456_789))
    done = await deposits.deposit(app, me, sig)
    assert (done.amount, done.balance) == (123_456_789, 123_456_789)
    with pytest.raises(deposits.DepositRefused) as again:
        await deposits.deposit(app, me, sig)
    assert again.value.reason == "already_credited" and "123.456789 USDC" in again.value.message
    assert await _balance(app, me) == 123_456_789
    async with app.uow() as uow:
        assert all(c.ok for c in await ledger.check_invariants(uow.conn))


async def test_inner_instructions_and_the_old_transfer_count_like_top_level_ones(
    token_app, chain, treasury
):
    app = await token_app()
    me = player("dep2")
    kp = await link(app, me)
    src = usdc_account(chain, kp, 500 * USDC)
    # routed through an aggregator's instruction, as plain `transfer` (no mint: read from the balances)
    inner = chain.add_transfer(
        send(kp, src, treasury.usdc_account, 5 * USDC, checked=False), inner=True
    )
    assert (await deposits.deposit(app, me, inner)).amount == 5 * USDC
    # two transfers in one transaction: both are credited, and a transfer elsewhere is not
    both = chain.add_transfer(
        send(kp, src, treasury.usdc_account, 1 * USDC),
        send(kp, src, random_address(), 7 * USDC),
        send(kp, src, treasury.usdc_account, 2 * USDC, checked=False),
        inner=True,
    )
    assert (await deposits.deposit(app, me, both)).amount == 3 * USDC
    assert await _balance(app, me) == 8 * USDC


async def test_concurrent_deposits_of_one_signature_credit_once(token_app, chain, treasury):
    app = await token_app()
    me = player("race")
    kp = await link(app, me)
    src = usdc_account(chain, kp, 500 * USDC)
    sig = chain.add_transfer(send(kp, src, treasury.usdc_account, 42 * USDC))
    results = await asyncio.gather(
        *(deposits.deposit(app, me, sig) for _ in range(8)), return_exceptions=True
    )
    credited = [r for r in results if isinstance(r, deposits.Credited)]
    refused = [r for r in results if isinstance(r, deposits.DepositRefused)]
    assert len(credited) == 1 and len(refused) == 7, results
    assert {r.reason for r in refused} == {"already_credited"}
    assert await _balance(app, me) == 42 * USDC
    assert [d.amount for d in await _deposits(app)] == [42 * USDC]
    async with app.engine.connect() as conn:
        keys = (
            await conn.execute(
                text("SELECT count(*) FROM transfers WHERE idempotency_key = :k"),
                {"k": f"deposit:{sig}"},
            )
        ).scalar_one()
    assert keys == 1


async def test_a_signature_credited_to_one_player_is_refused_to_another(token_app, chain, treasury):
    app = await token_app()
    alice, bob = player("a"), player("b")
    ka = await link(app, alice)
    await link(app, bob)
    sig = chain.add_transfer(
        send(ka, usdc_account(chain, ka, 9 * USDC), treasury.usdc_account, 9 * USDC)
    )
    with pytest.raises(deposits.DepositRefused) as err:
        await deposits.deposit(app, bob, sig)  # bob's wallet did not send it
    assert err.value.reason == "wrong_sender"
    await deposits.deposit(app, alice, sig)
    with pytest.raises(deposits.DepositRefused) as err:
        await deposits.deposit(app, bob, sig)
    assert err.value.reason == "already_credited" and "another account" in err.value.message


@pytest.mark.parametrize(
    "case",
    [
        "not_found",
        "not_finalized",
        "failed",
        "wrong_mint",
        "wrong_sender",
        "wrong_recipient",
        "no_transfer",
        "no_wallet",
    ],
)
async def test_each_refusal_has_its_reason_and_credits_nothing(token_app, chain, treasury, case):
    app = await token_app()
    me = player(f"r-{case}")
    kp = await link(app, me) if case != "no_wallet" else Keypair()
    src = usdc_account(chain, kp, 100 * USDC)
    good = send(kp, src, treasury.usdc_account, 10 * USDC)
    stranger = Keypair()
    sig = {
        "not_found": lambda: random_signature(),
        "not_finalized": lambda: chain.add_transfer(good, confirmation="confirmed"),
        "failed": lambda: chain.add_transfer(good, err={"InstructionError": [1, {"Custom": 1}]}),
        "wrong_mint": lambda: chain.add_transfer(
            send(kp, src, treasury.usdc_account, 10 * USDC, mint=MINT)
        ),
        "wrong_sender": lambda: chain.add_transfer(
            send(
                stranger, usdc_account(chain, stranger, 50 * USDC), treasury.usdc_account, 10 * USDC
            )
        ),
        "wrong_recipient": lambda: chain.add_transfer(send(kp, src, random_address(), 10 * USDC)),
        "no_transfer": lambda: _no_transfer(chain, kp),
        "no_wallet": lambda: chain.add_transfer(good),
    }[case]()
    with pytest.raises(deposits.DepositRefused) as err:
        await deposits.deposit(app, me, sig)
    expected = "none" if case == "no_transfer" else case
    assert err.value.reason == expected
    assert await _balance(app, me) == 0 and await _deposits(app) == []


def _no_transfer(chain, kp) -> str:
    """A transaction with no token transfer at all (only a compute-budget instruction)."""
    sig = chain.add_transfer(
        Transfer(random_address(), random_address(), str(kp.pubkey()), USDC_MINT, 1)
    )
    result = chain.transactions[sig].result
    message = result["transaction"]["message"]
    message["instructions"] = [
        ix for ix in message["instructions"] if ix.get("program") != "spl-token"
    ]
    return sig


@pytest.mark.parametrize(
    ("raw", "needle"), [("0xdeadbeef", "base58"), ("abc", "decodes to 3 bytes"), ("", "missing")]
)
async def test_a_malformed_signature_is_refused_before_anything(token_app, chain, raw, needle):
    from core.errors import InvalidArgument

    app = await token_app()
    me = player("mal")
    await link(app, me)
    calls = len(chain.calls)
    with pytest.raises(InvalidArgument, match=needle):
        await deposits.deposit(app, me, raw)
    assert len(chain.calls) == calls


@pytest.mark.parametrize("fault", ["500", "hang", "malformed", "garbage"])
async def test_an_rpc_fault_credits_nothing_and_a_retry_credits_once(
    token_app, chain, treasury, fault
):
    app = await token_app()
    me = player(f"f-{fault}")
    kp = await link(app, me)
    sig = chain.add_transfer(
        send(kp, usdc_account(chain, kp, 50 * USDC), treasury.usdc_account, 50 * USDC)
    )
    chain.fail(fault, method="getTransaction", times=3)  # the client retries a transport error once
    with pytest.raises(ChainUnavailable):
        await deposits.deposit(app, me, sig)
    assert await _balance(app, me) == 0
    chain.faults.clear()
    assert (await deposits.deposit(app, me, sig)).amount == 50 * USDC


async def test_deposits_need_the_treasury_configured(app_factory, chain):
    app = await app_factory(SOLANA_RPC_URL=chain.url)
    try:
        with pytest.raises(NotConfigured, match="treasury"):
            await deposits.deposit(app, player("x"), random_signature())
    finally:
        await app.aclose()


async def test_a_demo_game_takes_no_real_deposit(token_app, chain, treasury):
    app = await token_app()
    me = player("demo")
    kp = await link(app, me)
    sig = chain.add_transfer(
        send(kp, usdc_account(chain, kp, 5 * USDC), treasury.usdc_account, 5 * USDC)
    )
    async with app.engine.begin() as conn:
        await conn.execute(text("INSERT INTO game_meta (key, value) VALUES ('demo', 'true')"))
    with pytest.raises(deposits.DepositRefused) as err:
        await deposits.deposit(app, me, sig)
    assert err.value.reason == "demo" and await _balance(app, me) == 0
