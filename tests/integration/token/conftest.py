"""Token tests: the game on real PostgreSQL, Solana through solana-py's real client against the local
JSON-RPC stand-in, and the price source stand-in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from solders.keypair import Keypair

from core.actors import Actor
from core.app import App
from core.services.token import wallets
from core.services.token.common import associated_account
from tests.standins.price_server import PriceStandIn
from tests.standins.solana_rpc import SolanaStandIn

MINT = "5ic4A4scnqeAT2XkwvWCUYjZoxjVLvoTz4njbmAhbonk"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
TOKEN = 100_000_000  # one whole $100Bs in base units
USDC = 1_000_000


@dataclass
class Treasury:
    keypair: Keypair
    usdc_account: str
    keypair_path: Path

    @property
    def wallet(self) -> str:
        return str(self.keypair.pubkey())


@pytest.fixture
async def price_source() -> AsyncIterator[PriceStandIn]:
    standin = PriceStandIn(MINT)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
def treasury(chain: SolanaStandIn, tmp_path: Path) -> Treasury:
    keypair = Keypair()
    path = tmp_path / "treasury.json"
    path.write_text(json.dumps(list(bytes(keypair))))
    account = associated_account(str(keypair.pubkey()), USDC_MINT)
    chain.add_token_account(
        str(keypair.pubkey()), USDC_MINT, 1_000_000 * USDC, decimals=6, pubkey=account
    )
    return Treasury(keypair, account, path)


@pytest.fixture
async def token_app(app_factory, chain: SolanaStandIn, treasury: Treasury):
    """``await token_app(**settings)``: an App on the stand-in chain (the treasury keypair is set)."""

    made: list[App] = []

    async def make(**overrides: object) -> App:
        base: dict[str, object] = {
            "SOLANA_RPC_URL": chain.url,
            "SOLANA_RPC_TIMEOUT_SECONDS": 1.0,
            "SOLANA_POLL_SECONDS": 0.01,
            "SOLANA_CONFIRM_SECONDS": 5.0,
            "TREASURY_WALLET": treasury.wallet,
            "TREASURY_KEYPAIR_PATH": str(treasury.keypair_path),
        }
        base.update(overrides)
        made.append(await app_factory(**base))
        return made[-1]

    yield make
    for app in made:  # before the stand-in stops, so no client socket to it is left open
        await app.aclose()


async def link(app: App, actor: Actor, keypair: Keypair | None = None) -> Keypair:
    """Link a wallet for ``actor`` the way a wallet app does: sign the challenge's UTF-8 bytes."""
    keypair = keypair or Keypair()
    challenge = await wallets.start_link(app, actor, str(keypair.pubkey()))
    await wallets.verify(app, actor, str(keypair.sign_message(challenge.message.encode())))
    return keypair


def hold(
    chain: SolanaStandIn, keypair: Keypair, whole_tokens: int, *, accounts: int = 1
) -> list[str]:
    """Give the wallet ``whole_tokens`` $100Bs spread over ``accounts`` token accounts."""
    owner = str(keypair.pubkey())
    total = whole_tokens * TOKEN
    parts = [total // accounts] * accounts
    parts[0] += total - sum(parts)
    return [chain.add_token_account(owner, MINT, part) for part in parts]


def usdc_account(chain: SolanaStandIn, keypair: Keypair, amount: int) -> str:
    """The wallet's USDC associated account holding ``amount`` micro-USDC."""
    owner = str(keypair.pubkey())
    return chain.add_token_account(
        owner, USDC_MINT, amount, decimals=6, pubkey=associated_account(owner, USDC_MINT)
    )


class Clock:
    """A settable clock for ``app.clock``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
