"""The composition root of the core: the concrete ports chosen for this process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from core.cache import BoundedCache
from core.db.batch import Batches
from core.db.engine import Database, UnitOfWork, make_engine
from core.errors import NotConfigured
from core.guardian.measured import MeasuredGuardian
from core.ledger import AccountBook
from core.ports.discounts import DiscountPolicy, NoDiscounts
from core.ports.embeddings import Embedder
from core.ports.guardian import Guardian
from core.ports.prices import HttpJsonPriceSource, NoPriceSource, PriceSource
from core.ports.solana import RpcSolana, Solana
from core.services.attempts.pace import AttemptPace
from core.services.attempts.quotes import Terms
from core.services.players import PlayerRef
from core.settings import Settings

if TYPE_CHECKING:
    from core.memory.service import Memory


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine  # SQLAlchemy: migrations, and tests that look at the database independently
    db: Database  # asyncpg: everything the game does
    guardian: Guardian
    discounts: DiscountPolicy = field(default_factory=NoDiscounts)
    solana: Solana | None = None  # the $100Bs token's chain (bootstrap sets the RPC client)
    prices: PriceSource = field(default_factory=NoPriceSource)
    clock: Callable[[], datetime] = utcnow
    accounts: AccountBook = field(default_factory=AccountBook)
    # (platform, external id) -> the player; what a quote's payment needs; the names last stored
    player_cache: BoundedCache[tuple[str, str], PlayerRef] = field(
        default_factory=lambda: BoundedCache(100_000)
    )
    quote_terms: BoundedCache[str, Terms] = field(default_factory=lambda: BoundedCache(50_000))
    seen_identities: BoundedCache[tuple[str, str], tuple] = field(
        default_factory=lambda: BoundedCache(100_000)
    )
    pace: AttemptPace = field(default_factory=AttemptPace)
    memory: Memory | None = (
        None  # the guardian's memory on the attempt path (ENABLE_ENHANCED_CONTEXT)
    )
    batches: Batches = field(default_factory=Batches)  # shared statements on this process's pool

    def forget_cached(self) -> None:
        """Drop per-process caches (after account links, rule changes, or a wiped database)."""
        self.accounts.forget()
        self.player_cache.clear()
        self.quote_terms.clear()
        self.seen_identities.clear()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db)

    async def aclose(self) -> None:
        await self.guardian.aclose()
        if self.solana is not None:
            await self.solana.aclose()
        await self.prices.aclose()
        if self.memory is not None:
            await self.memory.embedder.aclose()
        await self.batches.aclose()
        await self.db.close()
        await self.engine.dispose()


def make_guardian(settings: Settings) -> Guardian:
    """The guardian the settings name; a missing key is a clear settings error, not a crash later."""

    provider = settings.GUARDIAN_PROVIDER
    if provider == "offline":
        from core.guardian.offline import OfflineGuardian

        phrase = settings.OFFLINE_GUARDIAN_PASSPHRASE
        return OfflineGuardian(phrase.get_secret_value() if phrase else None)
    if provider == "anthropic":
        if settings.ANTHROPIC_API_KEY is None:
            raise NotConfigured("GUARDIAN_PROVIDER=anthropic needs ANTHROPIC_API_KEY.")
        from core.guardian.anthropic import AnthropicGuardian

        return AnthropicGuardian(
            api_key=settings.ANTHROPIC_API_KEY.get_secret_value(),
            base_url=settings.ANTHROPIC_BASE_URL,
            model=settings.ANTHROPIC_MODEL,
            timeout=settings.GUARDIAN_TIMEOUT_SECONDS,
        )
    if provider == "openai":
        if settings.OPENAI_API_KEY is None:
            raise NotConfigured("GUARDIAN_PROVIDER=openai needs OPENAI_API_KEY.")
        from core.guardian.openai import OpenAIGuardian

        return OpenAIGuardian(
            api_key=settings.OPENAI_API_KEY.get_secret_value(),
            base_url=settings.OPENAI_BASE_URL,
            model=settings.OPENAI_MODEL,
            timeout=settings.GUARDIAN_TIMEOUT_SECONDS,
        )
    raise NotConfigured(f"Unknown GUARDIAN_PROVIDER {provider!r}.")


def bootstrap(
    settings: Settings,
    database_url: str,
    *,
    guardian: Guardian | None = None,
    embedder: Embedder | None = None,
    discounts: DiscountPolicy | None = None,
    clock: Callable[[], datetime] | None = None,
    pool_size: int | None = None,
    solana: Solana | None = None,
    prices: PriceSource | None = None,
) -> App:
    """Wire an App: real ports from the settings unless a caller (a test, the bench) passes its own.
    The memory (and its embedding model) exists only with ENABLE_ENHANCED_CONTEXT; the model itself
    is loaded on first use or by ``app.memory.warm_up()``, so building an App never imports torch.
    ``pool_size``: the game's connections (default DATABASE_POOL_SIZE; workers' short-lived Apps ask
    for fewer)."""
    memory = None
    if settings.ENABLE_ENHANCED_CONTEXT:
        from core.memory.embedders import make_embedder
        from core.memory.service import Memory

        memory = Memory(settings, embedder or make_embedder(settings))
    return App(
        settings=settings,
        engine=make_engine(database_url),
        db=Database(database_url, max_size=pool_size or settings.DATABASE_POOL_SIZE),
        guardian=MeasuredGuardian(guardian or make_guardian(settings)),
        discounts=discounts or _holder_discounts(settings),
        solana=solana
        or RpcSolana(settings.SOLANA_RPC_URL, timeout=settings.SOLANA_RPC_TIMEOUT_SECONDS),
        prices=prices or _price_source(settings),
        memory=memory,
        clock=clock or utcnow,
    )


def _holder_discounts(settings: Settings) -> DiscountPolicy:
    from core.services.token.holdings import HoldingsDiscounts

    return HoldingsDiscounts(settings)


def _price_source(settings: Settings) -> PriceSource:
    if settings.TOKEN_PRICE_URL is None:
        return NoPriceSource()
    return HttpJsonPriceSource(
        settings.TOKEN_PRICE_URL,
        settings.TOKEN_PRICE_JSON_PATH,
        timeout=settings.SOLANA_RPC_TIMEOUT_SECONDS,
    )
