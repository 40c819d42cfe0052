"""The treasury's keypair and the USDC transfer a payout sends."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from core.errors import NotConfigured
from core.services.token.common import associated_account, treasury_usdc_account
from core.services.token.payouts.common import USDC_DECIMALS

if TYPE_CHECKING:
    from core.app import App


def load_treasury_keypair(app: App) -> Any:
    from solders.keypair import Keypair

    path = app.settings.TREASURY_KEYPAIR_PATH
    if path is None:
        raise NotConfigured(
            "No treasury keypair (TREASURY_KEYPAIR_PATH): moderators mark payouts paid."
        )
    try:
        numbers = json.loads(path.read_text("utf-8"))
        keypair = Keypair.from_bytes(bytes(numbers))
    except (OSError, ValueError, TypeError):
        # Never the file's content: it is the treasury's secret key.
        raise NotConfigured(
            f"TREASURY_KEYPAIR_PATH {path} is not a readable Solana keypair file."
        ) from None
    wallet = app.settings.TREASURY_WALLET
    if wallet is not None and str(keypair.pubkey()) != wallet:
        raise NotConfigured(
            "TREASURY_KEYPAIR_PATH holds another wallet's key than TREASURY_WALLET."
        )
    return keypair


def build_transfer(
    app: App, keypair: Any, wallet: str, amount: int, blockhash: str
) -> tuple[bytes, str]:
    """A signed USDC transfer from the treasury to the wallet's associated account (created if needed)."""
    from solders.hash import Hash
    from solders.message import MessageV0
    from solders.pubkey import Pubkey
    from solders.transaction import VersionedTransaction
    from spl.token.constants import TOKEN_PROGRAM_ID
    from spl.token.instructions import create_idempotent_associated_token_account, transfer_checked
    from spl.token.models import TransferCheckedParams

    mint = Pubkey.from_string(app.settings.USDC_MINT)
    owner = Pubkey.from_string(wallet)
    treasury = keypair.pubkey()
    source = (
        Pubkey.from_string(treasury_usdc_account(app.settings))
        if app.settings.TREASURY_USDC_ACCOUNT
        else Pubkey.from_string(associated_account(str(treasury), str(mint)))
    )
    dest = Pubkey.from_string(associated_account(wallet, str(mint)))
    instructions = [
        create_idempotent_associated_token_account(treasury, owner, mint),
        transfer_checked(
            TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                source=source,
                mint=mint,
                dest=dest,
                owner=treasury,
                amount=amount,
                decimals=USDC_DECIMALS,
            )
        ),
    ]
    message = MessageV0.try_compile(treasury, instructions, [], Hash.from_string(blockhash))
    tx = VersionedTransaction(message, [keypair])
    return bytes(tx), str(tx.signatures[0])
