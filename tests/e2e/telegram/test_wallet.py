"""Wallet link through python-telegram-bot: the challenge arrives alone as preformatted text, and
what the player copies from it is exactly what their wallet signs."""

from __future__ import annotations

from solders.keypair import Keypair

from tests.e2e.telegram.conftest import ALICE

MINT = "5ic4A4scnqeAT2XkwvWCUYjZoxjVLvoTz4njbmAhbonk"


async def test_the_challenge_copied_from_telegram_is_what_the_wallet_signs(chain, start_bot, tg):
    run = await start_bot(SOLANA_RPC_URL=chain.url)
    wallet = Keypair()
    chain.add_token_account(str(wallet.pubkey()), MINT, 1_500_000 * 100_000_000)
    chat = tg.private_chat(ALICE)
    mark = tg.mark()
    await run.say(ALICE, chat, f"/wallet link {wallet.pubkey()}")
    head, code = tg.calls_to("sendMessage", after=mark)
    assert head.result["text"].startswith("Sign this message")
    assert code.params["text"].startswith("<pre>") and code.params["parse_mode"] == "HTML"
    copied = code.result["text"]  # what Telegram shows, and the player copies
    assert (
        copied.startswith("Billions Bounty wallet link\nPlayer: #")
        and f"Wallet: {wallet.pubkey()}" in copied
    )
    await run.say(ALICE, chat, f"/wallet verify {wallet.sign_message(copied.encode('utf-8'))}")
    answer = run.last(chat["id"])["text"]
    assert "Wallet linked" in answer and "1,500,000 $100Bs" in answer and "10 %" in answer
    await run.say(ALICE, chat, "/wallet sign /etc/passwd")  # console only: not a Telegram command
    assert "Wallet linked" not in run.last(chat["id"])["text"]
