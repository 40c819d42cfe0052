"""Wallet link through discord.py: the challenge comes alone in a code block, and what the player
copies from it is exactly what their wallet signs."""

from __future__ import annotations

from solders.keypair import Keypair

from tests.e2e.discord.conftest import ALICE, GUILD_ID

MINT = "5ic4A4scnqeAT2XkwvWCUYjZoxjVLvoTz4njbmAhbonk"


async def test_the_challenge_copied_from_discord_is_what_the_wallet_signs(chain, start_bot, dc):
    run = await start_bot(SOLANA_RPC_URL=chain.url)
    wallet = Keypair()
    chain.add_token_account(str(wallet.pubkey()), MINT, 10_000_000 * 100_000_000)
    head, code = dc.answers(await run.slash(ALICE, "wallet link", address=str(wallet.pubkey())))
    assert head["embeds"][0]["title"] == "Sign this message with your wallet" and not code["embeds"]
    content = code["content"]
    assert content.startswith("```\n") and content.endswith("\n```")
    copied = content[4:-4]  # what Discord shows inside the block, and the player copies
    assert copied.startswith("Billions Bounty wallet link\nPlayer: #")
    answer = run.answer(
        await run.slash(ALICE, "wallet verify", signature=str(wallet.sign_message(copied.encode())))
    )
    assert answer["embeds"][0]["title"] == "Wallet linked"
    assert "25 %" in str(answer["embeds"][0]["fields"])
    assert ("wallet", "sign") not in dc.command_paths(GUILD_ID)  # console only
