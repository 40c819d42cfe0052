"""Wallet link by signature: the challenge, ed25519 verification, one use per nonce, one wallet per
player, the 24-hour wait before a wallet changes hands, and holdings read on link."""

from __future__ import annotations

import json

import pytest
from solders.keypair import Keypair
from sqlalchemy import text

from core.base58 import encode_base58
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.services.token import wallets
from tests.helpers import player
from tests.integration.token.conftest import TOKEN, Clock, hold, link


async def _wallet_rows(app) -> list:
    async with app.engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT player_id, address, unlinked_at FROM wallets ORDER BY id")
            )
        ).all()


async def test_a_signed_challenge_links_the_wallet_and_reads_its_holdings(token_app, chain):
    app = await token_app()
    me = player("alice")
    kp = Keypair()
    hold(chain, kp, 1_234_567, accounts=3)  # summed over every token account of the mint
    chain.add_token_account(
        str(kp.pubkey()), "So11111111111111111111111111111111111111112", 5 * TOKEN
    )  # another mint
    challenge = await wallets.start_link(app, me, str(kp.pubkey()))
    lines = challenge.message.split("\n")
    assert lines[0] == "Billions Bounty wallet link"
    assert lines[1].startswith("Player: #") and lines[2] == f"Wallet: {kp.pubkey()}"
    assert lines[3] == f"Nonce: {challenge.nonce}" and len(challenge.nonce) == 32
    assert lines[4] == f"Expires: {challenge.expires_at:%Y-%m-%dT%H:%M:%SZ}"
    assert (challenge.expires_at - app.clock()).total_seconds() == pytest.approx(600, abs=1)
    linked = await wallets.verify(app, me, str(kp.sign_message(challenge.message.encode("utf-8"))))
    assert linked.address == str(kp.pubkey())
    assert linked.holdings.amount == 1_234_567 * TOKEN and linked.holdings.accounts == 3
    (row,) = await _wallet_rows(app)
    assert row.address == str(kp.pubkey()) and row.unlinked_at is None


async def test_a_nonce_works_once_and_a_wrong_signature_changes_nothing(token_app):
    app = await token_app()
    me = player("bob")
    kp = Keypair()
    challenge = await wallets.start_link(app, me, str(kp.pubkey()))
    wrong_key = str(Keypair().sign_message(challenge.message.encode()))
    with pytest.raises(InvalidArgument, match="does not match"):
        await wallets.verify(app, me, wrong_key)
    tampered = str(kp.sign_message((challenge.message + " ").encode()))
    with pytest.raises(InvalidArgument, match="does not match"):
        await wallets.verify(app, me, tampered)
    assert await _wallet_rows(app) == []
    good = str(kp.sign_message(challenge.message.encode()))
    await wallets.verify(app, me, good)
    await wallets.unlink(app, me)
    with pytest.raises(NotFound, match="No wallet link is waiting"):
        await wallets.verify(app, me, good)  # the same signature again: its nonce is spent
    assert len(await _wallet_rows(app)) == 1


async def test_a_new_challenge_replaces_the_old_and_challenges_expire(token_app):
    clock = Clock()
    app = await token_app()
    app.clock = clock
    me = player("carol")
    kp = Keypair()
    first = await wallets.start_link(app, me, str(kp.pubkey()))
    second = await wallets.start_link(app, me, str(kp.pubkey()))
    assert first.nonce != second.nonce
    with pytest.raises(InvalidArgument, match="does not match"):  # the old message no longer counts
        await wallets.verify(app, me, str(kp.sign_message(first.message.encode())))
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(InvalidArgument, match="expired"):
        await wallets.verify(app, me, str(kp.sign_message(second.message.encode())))
    assert await _wallet_rows(app) == []


async def test_one_wallet_per_player_and_one_player_per_wallet(token_app):
    app = await token_app()
    alice, bob = player("a1"), player("b1")
    kp = await link(app, alice)
    with pytest.raises(InvalidArgument, match="already linked to you"):
        await wallets.start_link(app, alice, str(kp.pubkey()))
    with pytest.raises(InvalidArgument, match="One wallet per player"):
        await wallets.start_link(app, alice, str(Keypair().pubkey()))
    with pytest.raises(NotPermitted, match="another player"):
        await wallets.start_link(app, bob, str(kp.pubkey()))


async def test_an_unlinked_wallet_goes_to_another_player_only_after_24_hours(token_app):
    clock = Clock()
    app = await token_app()
    app.clock = clock
    alice, bob = player("a2"), player("b2")
    kp = await link(app, alice)
    # unlinked from alice: bob must wait 24 hours
    await wallets.unlink(app, alice)
    with pytest.raises(NotPermitted, match="recently"):
        await wallets.start_link(app, bob, str(kp.pubkey()))
    await link(app, alice, kp)  # its own player may take it back at once
    await wallets.unlink(app, alice)
    clock.advance(hours=23, minutes=59)
    with pytest.raises(NotPermitted, match="recently"):
        await wallets.start_link(app, bob, str(kp.pubkey()))
    clock.advance(minutes=2)
    await link(app, bob, kp)
    rows = await _wallet_rows(app)
    assert [r.unlinked_at is None for r in rows] == [False, False, True]


async def test_the_relink_wait_is_checked_again_when_the_signature_arrives(token_app):
    app = await token_app()
    alice, bob = player("a3"), player("b3")
    kp = Keypair()
    challenge = await wallets.start_link(app, bob, str(kp.pubkey()))
    await link(app, alice, kp)  # alice linked it meanwhile
    with pytest.raises(NotPermitted, match="another player"):
        await wallets.verify(app, bob, str(kp.sign_message(challenge.message.encode())))


@pytest.mark.parametrize(
    ("address", "needle"),
    [
        ("0OIl" * 11, "not a base58 character"),
        ("abc", "decodes to 3 bytes"),
        ("1" * 44, "decodes to 44 bytes"),
        ("x" * 500, "too long"),
        ("", "missing"),
    ],
)
async def test_bad_addresses_are_refused(token_app, address, needle):
    app = await token_app()
    with pytest.raises(InvalidArgument, match=needle):
        await wallets.start_link(app, player("bad"), address)


async def test_a_program_address_cannot_be_linked(token_app):
    from solders.pubkey import Pubkey

    app = await token_app()
    pda, _ = Pubkey.find_program_address(
        [b"vault"], Pubkey.from_string("11111111111111111111111111111111")
    )
    with pytest.raises(InvalidArgument, match="program-derived"):
        await wallets.start_link(app, player("pda"), str(pda))


@pytest.mark.parametrize(
    ("signature", "needle"),
    [
        ("not-base58!", "not a base58 character"),
        (encode_base58(bytes(range(1, 33))), "decodes to 32 bytes"),
        ("", "missing"),
    ],
)
async def test_bad_signatures_are_refused_and_change_nothing(token_app, signature, needle):
    app = await token_app()
    me = player("sig")
    await wallets.start_link(app, me, str(Keypair().pubkey()))
    with pytest.raises(InvalidArgument, match=needle):
        await wallets.verify(app, me, signature)
    assert await _wallet_rows(app) == []


async def test_console_signs_with_a_local_keypair_file(token_app, chain, tmp_path):
    from tests.integration.test_console import run

    app = await token_app()
    me = player("console")
    kp = Keypair()
    hold(chain, kp, 2_000_000)
    keyfile = tmp_path / "id.json"
    keyfile.write_text(json.dumps(list(bytes(kp))))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(list(bytes(Keypair()))))
    (tmp_path / "junk.json").write_text('{"not": "a keypair"}')

    shown = await run(app, me, f"/wallet link {kp.pubkey()}")
    challenge = shown.split("\n\n", 1)[1].strip()  # the message, alone on its lines
    assert challenge.startswith("Billions Bounty wallet link\n") and challenge.endswith(
        "costs nothing."
    )
    assert "No file" in await run(app, me, f"/wallet sign {tmp_path / 'missing.json'}")
    assert "not a keypair file" in await run(app, me, f"/wallet sign {tmp_path / 'junk.json'}")
    assert "not of the wallet being linked" in await run(app, me, f"/wallet sign {other}")
    done = await run(app, me, f"/wallet sign {keyfile}")
    assert "Wallet linked" in done and "2,000,000 $100Bs" in done and "10 %" in done
    assert str(kp.pubkey()) in await run(app, me, "/wallet")


async def test_wallet_sign_is_offered_only_on_the_console():
    from core.commands import commands_for
    from core.commands.registry import find

    sign = find("wallet sign")
    assert sign in commands_for("console")
    assert sign not in commands_for("discord") and sign not in commands_for("telegram")
