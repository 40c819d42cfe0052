"""USDC deposits: a finalized on-chain transfer from the player's verified wallet to the treasury's
USDC account credits exactly its amount, once per transaction signature (a unique deposit row and a
unique ledger key, so two requests racing on one signature credit it once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import ledger
from core.actors import Actor
from core.base58 import parse_signature
from core.db import UniqueViolation
from core.errors import InvalidArgument
from core.money import usdc
from core.ports.solana import SolanaUnavailable
from core.services import maintenance
from core.services.meta import is_demo_install
from core.services.players import ensure_player
from core.services.token.common import ChainUnavailable, treasury_usdc_account

if TYPE_CHECKING:
    from core.app import App

TOKEN_PROGRAMS = ("spl-token", "spl-token-2022")


class DepositRefused(InvalidArgument):
    """A deposit that cannot be credited, with why (``reason``: a short code tests and logs use)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TokenMove:
    """One SPL transfer found in a transaction, with the owner and mint its accounts show."""

    source: str
    destination: str
    authority: str | None
    mint: str | None
    source_owner: str | None
    amount: int


@dataclass(frozen=True)
class Credited:
    signature: str
    amount: int
    balance: int
    transfers: int


def token_moves(tx: dict[str, Any]) -> list[TokenMove]:
    """Every SPL transfer / transferChecked of a jsonParsed transaction, top-level or inner."""
    message = tx["transaction"]["message"]
    meta = tx.get("meta") or {}
    keys = [k["pubkey"] if isinstance(k, dict) else k for k in message["accountKeys"]]
    accounts: dict[str, tuple[str | None, str | None]] = {}
    for balance in [*(meta.get("preTokenBalances") or []), *(meta.get("postTokenBalances") or [])]:
        accounts[keys[balance["accountIndex"]]] = (balance.get("mint"), balance.get("owner"))
    instructions = list(message["instructions"])
    for group in meta.get("innerInstructions") or []:
        instructions += group["instructions"]
    moves = []
    for ix in instructions:
        parsed = ix.get("parsed")
        if ix.get("program") not in TOKEN_PROGRAMS or not isinstance(parsed, dict):
            continue
        kind, info = parsed.get("type"), parsed.get("info") or {}
        if kind == "transfer":
            raw = info["amount"]
        elif kind == "transferChecked":
            raw = info["tokenAmount"]["amount"]
        else:
            continue
        if not isinstance(raw, str) or not raw.isdigit():
            raise ValueError("malformed token amount")
        source, destination = info["source"], info["destination"]
        mint = (
            info.get("mint")
            or accounts.get(source, (None, None))[0]
            or accounts.get(destination, (None, None))[0]
        )
        authority = info.get("authority") or info.get("multisigAuthority")
        owner = accounts.get(source, (None, None))[1] or authority
        moves.append(TokenMove(source, destination, authority, mint, owner, int(raw)))
    return moves


def judge(moves: list[TokenMove], *, usdc_mint: str, treasury: str, wallet: str) -> int:
    """The USDC the wallet sent the treasury in these moves; refuses with the closest miss otherwise."""
    good = 0
    closest = "none"
    rank = {"none": 0, "wrong_mint": 1, "wrong_recipient": 2, "wrong_sender": 3}
    for move in moves:
        if move.mint != usdc_mint:
            miss = "wrong_mint"
        elif move.destination != treasury:
            miss = "wrong_recipient"
        elif move.source_owner != wallet:
            miss = "wrong_sender"
        else:
            good += move.amount
            continue
        if rank[miss] > rank[closest]:
            closest = miss
    if good > 0:
        return good
    raise DepositRefused(
        closest,
        {
            "none": "That transaction moves no tokens: it is not a USDC transfer to the treasury.",
            "wrong_mint": "That transaction moves another token, not USDC. Only USDC deposits are credited.",
            "wrong_recipient": f"That USDC did not go to the treasury's account ({treasury}). Nothing was credited.",
            "wrong_sender": f"That USDC came from another wallet, not your verified wallet ({wallet}). "
            "Deposits are credited only from the wallet linked to you.",
        }[closest],
    )


async def deposit(app: App, actor: Actor, signature_text: str) -> Credited:
    """Credit a finalized USDC transfer from the player's verified wallet to the treasury."""
    signature = parse_signature(signature_text, "transaction signature")
    settings = app.settings
    treasury = treasury_usdc_account(settings)
    async with app.uow() as uow:
        conn = uow.conn

        if await is_demo_install(conn):
            raise DepositRefused(
                "demo",
                "This is a demo game with demo credits: real USDC deposits are not "
                "accepted here, and could never be withdrawn.",
            )
        await maintenance.refuse_money_in(conn, "deposits")
        player = await ensure_player(conn, actor)
        wallet = (
            await conn.execute(
                "SELECT address FROM wallets WHERE player_id = :p AND unlinked_at IS NULL",
                {"p": player.id},
            )
        ).scalar_one_or_none()
        if wallet is None:
            raise DepositRefused(
                "no_wallet",
                "Link your wallet first (/wallet link <address>): deposits are "
                "credited only from your verified wallet.",
            )
        await _refuse_if_credited(conn, signature, player.id)
    try:
        status = await app.solana.signature_status(signature)
        if status is None:
            raise DepositRefused(
                "not_found",
                "No transaction with that signature is known on Solana. Check it, "
                "or wait a few seconds if you just sent it.",
            )
        if status.err is not None:
            raise DepositRefused(
                "failed",
                "That transaction failed on chain, so it moved nothing. Nothing was credited.",
            )
        if not status.finalized:
            raise DepositRefused(
                "not_finalized",
                f"That transaction is {status.confirmation or 'processed'}, not "
                "finalized yet. Try again in a minute.",
            )
        tx = await app.solana.transaction(signature)
    except SolanaUnavailable:
        raise ChainUnavailable(
            "Solana is not answering right now; nothing was credited. Try again shortly."
        ) from None
    if tx is None:
        raise DepositRefused(
            "not_finalized", "That transaction is not finalized yet. Try again in a minute."
        )
    meta = tx.get("meta") or {}
    if meta.get("err") is not None:
        raise DepositRefused(
            "failed", "That transaction failed on chain, so it moved nothing. Nothing was credited."
        )
    try:
        moves = token_moves(tx)
    except (KeyError, TypeError, ValueError, IndexError):
        raise ChainUnavailable(
            "Solana answered a transaction this game cannot read; nothing was credited."
        ) from None
    amount = judge(moves, usdc_mint=settings.USDC_MINT, treasury=treasury, wallet=wallet)
    block_time = datetime.fromtimestamp(tx["blockTime"], UTC) if tx.get("blockTime") else None
    try:
        async with app.uow() as uow:
            conn = uow.conn
            row = (
                await conn.execute(
                    (
                        "INSERT INTO deposits (signature, player_id, wallet_address, amount, slot, block_time) "
                        "VALUES (:s, :p, :w, :m, :slot, :bt) ON CONFLICT (signature) DO NOTHING RETURNING signature"
                    ),
                    {
                        "s": signature,
                        "p": player.id,
                        "w": wallet,
                        "m": amount,
                        "slot": tx.get("slot"),
                        "bt": block_time,
                    },
                )
            ).first()
            if row is None:
                await _refuse_if_credited(conn, signature, player.id)
            source = await app.accounts.get(conn, ledger.TREASURY)
            dest = await app.accounts.get(conn, ledger.PLAYER, player.id)
            transfer_id = await ledger.transfer(
                conn,
                f"deposit:{signature}",
                "deposit",
                [(source, -amount), (dest, amount)],
                memo=f"wallet {wallet}",
            )
            if transfer_id is None:
                raise DepositRefused("already_credited", "That deposit was already credited.")
            await conn.execute(
                "UPDATE deposits SET transfer_id = :t WHERE signature = :s",
                {"t": transfer_id, "s": signature},
            )
            balance = await ledger.balance(conn, dest)
    except UniqueViolation:
        raise DepositRefused("already_credited", "That deposit was already credited.") from None
    return Credited(signature, amount, balance, len(moves))


async def _refuse_if_credited(conn, signature: str, player_id: int) -> None:
    row = (
        await conn.execute(
            "SELECT player_id, amount FROM deposits WHERE signature = :s", {"s": signature}
        )
    ).first()
    if row is None:
        return

    if row.player_id == player_id:
        raise DepositRefused(
            "already_credited", f"That deposit was already credited to you ({usdc(row.amount)})."
        )
    raise DepositRefused(
        "already_credited", "That transaction was already credited to another account."
    )
