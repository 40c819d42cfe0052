"""Wallet link by signature: a challenge naming the player, a nonce and its expiry, signed by the
wallet (ed25519, as Phantom's and Solflare's "sign message" do over the UTF-8 text)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from core.actors import Actor
from core.base58 import parse_address, parse_signature
from core.db import Conn, UniqueViolation
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.ports.solana import SolanaUnavailable
from core.services.audit import audit_line as audit
from core.services.players import PlayerRef, ensure_player, hold
from core.services.token import holdings as holdings_
from core.services.token.common import when

if TYPE_CHECKING:
    from core.app import App

MAX_KEYPAIR_FILE = 4_096


@dataclass(frozen=True)
class Challenge:
    nonce: str
    address: str
    message: str
    expires_at: datetime


@dataclass(frozen=True)
class Linked:
    address: str
    verified_at: datetime
    holdings: holdings_.Holdings
    holdings_error: str | None  # the chain did not answer at link time


def challenge_message(player_id: int, address: str, nonce: str, expires_at: datetime) -> str:
    """Exactly what the wallet signs (ASCII, so no client can re-encode it differently)."""
    return (
        "Billions Bounty wallet link\n"
        f"Player: #{player_id}\n"
        f"Wallet: {address}\n"
        f"Nonce: {nonce}\n"
        f"Expires: {expires_at:%Y-%m-%dT%H:%M:%SZ}\n"
        "Signing this proves you own the wallet. It moves no funds and costs nothing."
    )


def check_signature(address: str, message: str, signature: str) -> bool:
    from solders.pubkey import Pubkey
    from solders.signature import Signature

    return Signature.from_string(signature).verify(
        Pubkey.from_string(address), message.encode("utf-8")
    )


def _can_sign(address: str) -> bool:
    from solders.pubkey import Pubkey

    return Pubkey.from_string(address).is_on_curve()


async def _check_can_link(
    app: App, conn: Conn, player: PlayerRef, address: str, now: datetime
) -> None:
    """One wallet per player, one player per wallet, and 24 hours before a wallet changes hands."""
    mine = (
        await conn.execute(
            "SELECT address FROM wallets WHERE player_id = :p AND unlinked_at IS NULL",
            {"p": player.id},
        )
    ).scalar_one_or_none()
    if mine == address:
        raise InvalidArgument("That wallet is already linked to you. /wallet shows it.")
    if mine is not None:
        raise InvalidArgument(
            f"You already have a wallet linked ({mine}). One wallet per player: "
            "/wallet unlink it first."
        )
    other = (
        await conn.execute(
            "SELECT player_id FROM wallets WHERE address = :a AND unlinked_at IS NULL",
            {"a": address},
        )
    ).scalar_one_or_none()
    if other is not None:
        raise NotPermitted("That wallet is linked to another player.")
    last = (
        await conn.execute(
            (
                "SELECT player_id, unlinked_at FROM wallets WHERE address = :a AND unlinked_at IS NOT NULL "
                "ORDER BY unlinked_at DESC LIMIT 1"
            ),
            {"a": address},
        )
    ).first()
    if last is not None and last.player_id != player.id:
        free_at = last.unlinked_at + timedelta(seconds=app.settings.WALLET_RELINK_SECONDS)
        if free_at > now:
            raise NotPermitted(
                f"That wallet was unlinked from another player recently; it can be linked to "
                f"a new player from {when(free_at)}."
            )


async def start_link(app: App, actor: Actor, address_text: str) -> Challenge:
    """A challenge for the wallet to sign; replaces any earlier one of this player."""
    address = parse_address(address_text)
    if not _can_sign(address):
        raise InvalidArgument(
            "That address is a program-derived address: no wallet can sign for it. "
            "Give your wallet's own address."
        )
    now = app.clock().replace(microsecond=0)
    async with app.uow() as uow:
        conn = uow.conn
        player = await ensure_player(conn, actor)
        await _check_can_link(app, conn, player, address, now)
        await conn.execute(
            (
                "UPDATE wallet_challenges SET expires_at = :now WHERE player_id = :p AND used_at IS NULL "
                "AND expires_at > :now"
            ),
            {"p": player.id, "now": now},
        )
        nonce = secrets.token_hex(16)
        expires = now + timedelta(seconds=app.settings.WALLET_CHALLENGE_SECONDS)
        message = challenge_message(player.id, address, nonce, expires)
        await conn.execute(
            (
                "INSERT INTO wallet_challenges (nonce, player_id, address, message, expires_at, created_at) "
                "VALUES (:n, :p, :a, :m, :e, :now)"
            ),
            {"n": nonce, "p": player.id, "a": address, "m": message, "e": expires, "now": now},
        )
    return Challenge(nonce, address, message, expires)


async def _open_challenge(conn: Conn, player_id: int, now: datetime, *, lock: bool = False):
    row = (
        await conn.execute(
            (
                "SELECT nonce, address, message, expires_at FROM wallet_challenges WHERE player_id = :p "
                "AND used_at IS NULL ORDER BY expires_at DESC, created_at DESC LIMIT 1"
                + (" FOR UPDATE" if lock else "")
            ),
            {"p": player_id},
        )
    ).first()
    if row is None:
        raise NotFound(
            "No wallet link is waiting for a signature: start with /wallet link <address>."
        )
    if row.expires_at <= now:
        raise InvalidArgument(
            f"That challenge expired at {when(row.expires_at)}. Send /wallet link again "
            "for a new one."
        )
    return row


async def verify(app: App, actor: Actor, signature_text: str) -> Linked:
    """Check the wallet's signature of the open challenge and link the wallet (the nonce works once)."""
    signature = parse_signature(signature_text)
    now = app.clock()
    try:
        async with app.uow() as uow:
            conn = uow.conn
            player = await hold(
                conn, await ensure_player(conn, actor)
            )  # a concurrent /link sees the wallet
            challenge = await _open_challenge(conn, player.id, now, lock=True)
            if not check_signature(challenge.address, challenge.message, signature):
                raise InvalidArgument(
                    f"That signature does not match: sign exactly the message /wallet link showed, with the "
                    f"wallet {challenge.address}."
                )
            await _check_can_link(app, conn, player, challenge.address, now)
            used = (
                await conn.execute(
                    (
                        "UPDATE wallet_challenges SET used_at = :now WHERE nonce = :n AND used_at IS NULL "
                        "RETURNING nonce"
                    ),
                    {"now": now, "n": challenge.nonce},
                )
            ).first()
            if used is None:
                raise InvalidArgument("That challenge was already used. Send /wallet link again.")
            await conn.execute(
                (
                    "INSERT INTO wallets (player_id, address, challenge_nonce, signature, verified_at) "
                    "VALUES (:p, :a, :n, :s, :now)"
                ),
                {
                    "p": player.id,
                    "a": challenge.address,
                    "n": challenge.nonce,
                    "s": signature,
                    "now": now,
                },
            )
            await audit(
                conn,
                actor=f"{actor.label} ({player.display_name})",
                player_id=player.id,
                action="wallet.link",
                target=f"#{player.id}",
                details={"address": challenge.address, "nonce": challenge.nonce},
            )
            address = challenge.address
    except UniqueViolation:
        raise NotPermitted(
            "That wallet (or another wallet of yours) was linked meanwhile. /wallet shows yours."
        ) from None
    error = None
    try:
        held = await holdings_.refresh(app, address)
    except SolanaUnavailable as exc:
        error = str(exc)
        async with app.uow() as uow:
            await holdings_.ask_refresh(uow.conn, app, address)
            held = await holdings_.of_address(uow.conn, address)
    return Linked(address, now, held, error)


async def sign_with_keypair_file(app: App, actor: Actor, path_text: str) -> tuple[str, Linked]:
    """Console only: sign the open challenge with a local keypair file (Solana CLI's JSON array of
    64 numbers) and verify it. Returns the signature and the linked wallet."""
    from solders.keypair import Keypair

    path = Path(path_text.strip()).expanduser()
    try:
        if path.stat().st_size > MAX_KEYPAIR_FILE:
            raise InvalidArgument(f"{path} is too large to be a keypair file.")
        numbers = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise NotFound(f"No file {path}.") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument(
            f"{path} is not a keypair file (a JSON array of 64 numbers)."
        ) from None
    if not (
        isinstance(numbers, list)
        and len(numbers) == 64
        and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 255 for n in numbers)
    ):
        raise InvalidArgument(f"{path} is not a keypair file (a JSON array of 64 numbers).")
    try:
        keypair = Keypair.from_bytes(bytes(numbers))
    except ValueError:
        raise InvalidArgument(f"{path} holds 64 numbers that are not an ed25519 keypair.") from None
    async with app.uow() as uow:
        player = await ensure_player(uow.conn, actor)
        challenge = await _open_challenge(uow.conn, player.id, app.clock())
    if str(keypair.pubkey()) != challenge.address:
        raise InvalidArgument(
            f"{path} is the keypair of {keypair.pubkey()}, not of the wallet being linked "
            f"({challenge.address})."
        )
    signature = str(keypair.sign_message(challenge.message.encode("utf-8")))
    return signature, await verify(app, actor, signature)


@dataclass(frozen=True)
class WalletView:
    address: str | None
    verified_at: datetime | None
    holdings: holdings_.Holdings
    pending: Challenge | None  # an open challenge waiting for its signature


async def show(app: App, actor: Actor) -> WalletView:
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        player = await ensure_player(conn, actor)
        row = (
            await conn.execute(
                "SELECT address, verified_at FROM wallets WHERE player_id = :p AND unlinked_at IS NULL",
                {"p": player.id},
            )
        ).first()
        held = await holdings_.cached(conn, player.id)
        pending = None
        if row is None:
            try:
                c = await _open_challenge(conn, player.id, now)
                pending = Challenge(c.nonce, c.address, c.message, c.expires_at)
            except (NotFound, InvalidArgument):
                pending = None
        elif not held.fresh(now, app.settings):
            await holdings_.ask_refresh(conn, app, row.address)
    return WalletView(row.address if row else None, row.verified_at if row else None, held, pending)


async def unlink(app: App, actor: Actor) -> tuple[str, int]:
    """Remove the player's wallet; returns it and how many active stakes it leaves uncovered."""
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        player = await ensure_player(conn, actor)
        row = (
            await conn.execute(
                "SELECT id, address FROM wallets WHERE player_id = :p AND unlinked_at IS NULL FOR UPDATE",
                {"p": player.id},
            )
        ).first()
        if row is None:
            raise NotFound("You have no wallet linked.")
        waiting = (
            await conn.execute(
                "SELECT count(*) FROM payouts WHERE player_id = :p AND status IN ('requested','approved','sending')",
                {"p": player.id},
            )
        ).scalar_one()
        if waiting:
            raise InvalidArgument(
                "A payout to this wallet is on its way; the wallet stays linked until it is "
                "paid or rejected."
            )
        stakes = (
            await conn.execute(
                "SELECT count(*) FROM stakes WHERE player_id = :p AND unstaked_at IS NULL",
                {"p": player.id},
            )
        ).scalar_one()
        await conn.execute(
            "UPDATE wallets SET unlinked_at = :now WHERE id = :id", {"now": now, "id": row.id}
        )
        await audit(
            conn,
            actor=f"{actor.label} ({player.display_name})",
            player_id=player.id,
            action="wallet.unlink",
            target=f"#{player.id}",
            details={"address": row.address, "active_stakes": stakes},
        )
    return row.address, stakes
