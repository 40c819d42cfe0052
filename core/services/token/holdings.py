"""Holdings: the $100Bs a verified wallet holds, read from the chain by a worker and cached.

The attempt's hot path reads only the cached row (one indexed query), never the RPC. A failed read
keeps the last value and its time and records the failure beside it: holdings never drop to zero,
and never rise above what was last read, because the node did not answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from core.db import Conn
from core.ports.discounts import DiscountPolicy
from core.ports.solana import SolanaUnavailable
from core.services import outbox
from core.services.token.common import tier_bps
from core.settings import Settings

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)

REFRESH_JOB = "bounty.token.refresh_holdings"


@dataclass(frozen=True)
class Holdings:
    address: str | None  # the linked wallet (None: no wallet)
    amount: int | None  # base units; None: never read
    accounts: int
    checked_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    def fresh(self, now: datetime, settings: Settings) -> bool:
        return (
            self.checked_at is not None
            and (now - self.checked_at).total_seconds() <= settings.HOLDINGS_CACHE_SECONDS
        )

    @property
    def failing(self) -> bool:
        """The last read failed (after the last success)."""
        return self.last_error_at is not None and (
            self.checked_at is None or self.last_error_at > self.checked_at
        )


NO_WALLET = Holdings(None, None, 0, None, None, None)

_CACHED = (
    "SELECT w.address, h.amount, COALESCE(h.accounts, 0) AS accounts, h.checked_at, h.last_error, h.last_error_at "
    "FROM wallets w LEFT JOIN token_holdings h ON h.address = w.address "
    "WHERE w.player_id = :p AND w.unlinked_at IS NULL"
)


async def cached(conn: Conn, player_id: int) -> Holdings:
    """The player's linked wallet and its last known holdings."""
    row = (await conn.execute(_CACHED, {"p": player_id})).first()
    if row is None:
        return NO_WALLET
    return Holdings(
        row.address, row.amount, row.accounts, row.checked_at, row.last_error, row.last_error_at
    )


async def of_address(conn: Conn, address: str) -> Holdings:
    row = (
        await conn.execute(
            (
                "SELECT address, amount, accounts, checked_at, last_error, last_error_at FROM token_holdings "
                "WHERE address = :a"
            ),
            {"a": address},
        )
    ).first()
    if row is None:
        return Holdings(address, None, 0, None, None, None)
    return Holdings(
        row.address, row.amount, row.accounts, row.checked_at, row.last_error, row.last_error_at
    )


async def refresh(app: App, address: str) -> Holdings:
    """Read the wallet's holdings from the chain now and cache them. On an RPC failure the failure is
    recorded beside the last value, and SolanaUnavailable is raised."""
    settings = app.settings
    now = app.clock()
    try:
        balance = await app.solana.token_balance(address, settings.TOKEN_MINT)
        if balance.accounts and balance.decimals != settings.TOKEN_DECIMALS:
            raise SolanaUnavailable(
                f"the mint reports {balance.decimals} decimals, the settings say {settings.TOKEN_DECIMALS}"
            )
    except SolanaUnavailable as exc:
        log.warning("holdings of %s not refreshed: %s", address, exc)
        async with app.uow() as uow:
            await uow.conn.execute(
                (
                    "INSERT INTO token_holdings (address, last_error, last_error_at) VALUES (:a, :e, :t) "
                    "ON CONFLICT (address) DO UPDATE SET last_error = EXCLUDED.last_error, "
                    "last_error_at = EXCLUDED.last_error_at"
                ),
                {"a": address, "e": str(exc)[:300], "t": now},
            )
        raise
    async with app.uow() as uow:
        await uow.conn.execute(
            (
                "INSERT INTO token_holdings (address, amount, accounts, checked_at) VALUES (:a, :m, :n, :t) "
                "ON CONFLICT (address) DO UPDATE SET amount = EXCLUDED.amount, accounts = EXCLUDED.accounts, "
                "checked_at = EXCLUDED.checked_at, last_error = NULL, last_error_at = NULL "
                "WHERE token_holdings.checked_at IS NULL OR token_holdings.checked_at <= EXCLUDED.checked_at"
            ),
            {"a": address, "m": balance.amount, "n": balance.accounts, "t": now},
        )
        # The day's lowest reading: a stake earns for a day only if its wallet held it all day long,
        # as far as the reads of that day saw (core/services/token/staking.py).
        await uow.conn.execute(
            "INSERT INTO holding_days (address, day, low, samples, first_at, last_at) "
            "VALUES (:a, :d, :m, 1, :t, :t) ON CONFLICT (address, day) DO UPDATE SET "
            "low = LEAST(holding_days.low, EXCLUDED.low), samples = holding_days.samples + 1, "
            "last_at = GREATEST(holding_days.last_at, EXCLUDED.last_at)",
            {"a": address, "d": now.astimezone(UTC).date(), "m": balance.amount, "t": now},
        )
        return await of_address(uow.conn, address)


async def refresh_or_known(app: App, address: str) -> Holdings:
    """Holdings read now when the chain answers, else the last known ones (with the failure noted)."""
    try:
        return await refresh(app, address)
    except SolanaUnavailable:
        async with app.uow() as uow:
            return await of_address(uow.conn, address)


async def refresh_stale(app: App, *, limit: int = 500) -> int:
    """The worker's job: refresh every linked wallet whose holdings are older than the cache time.
    Returns how many were read successfully."""
    cutoff = app.clock() - timedelta(seconds=app.settings.HOLDINGS_CACHE_SECONDS)
    async with app.uow() as uow:
        addresses = (
            (
                await uow.conn.execute(
                    (
                        "SELECT w.address FROM wallets w LEFT JOIN token_holdings h ON h.address = w.address "
                        "WHERE w.unlinked_at IS NULL AND (h.checked_at IS NULL OR h.checked_at < :c) "
                        # random among equals: nobody can time a move between two wallets' reads
                        "ORDER BY h.checked_at NULLS FIRST, random() LIMIT :n"
                    ),
                    {"c": cutoff, "n": limit},
                )
            )
            .scalars()
            .all()
        )
    done = 0
    for address in addresses:
        try:
            await refresh(app, address)
            done += 1
        except SolanaUnavailable:
            continue
    return done


async def ask_refresh(conn: Conn, app: App, address: str) -> None:
    """Queue a refresh (once per cache period and wallet), in the caller's transaction."""
    period = int(app.clock().timestamp()) // max(60, app.settings.HOLDINGS_CACHE_SECONDS)
    await outbox.enqueue_job(conn, REFRESH_JOB, key=f"holdings:{address}:{period}", address=address)


class HoldingsDiscounts(DiscountPolicy):
    """SPEC §6 tiers from the cached holdings of the player's linked wallet."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._held = f"SELECT {self.quote_sql(':player')}"

    def quote_sql(self, player_id: str) -> str:
        return (
            "(SELECT h.amount FROM wallets w JOIN token_holdings h ON h.address = w.address "
            f"WHERE w.player_id = {player_id} AND w.unlinked_at IS NULL)"
        )

    async def discount_bps(self, conn: Conn, player_id: int) -> int:
        return self.from_quote(
            (await conn.execute(self._held, {"player": player_id})).scalar_one_or_none()
        )

    def from_quote(self, value: object) -> int:
        return tier_bps(value, self.settings)  # type: ignore[arg-type]

    async def record_use(
        self, conn: Conn, attempt_id: int, player_id: int, discount_bps: int
    ) -> None:
        await conn.execute(
            (
                "INSERT INTO discount_uses (attempt_id, player_id, discount_bps, holdings) VALUES (:a, :p, :d, "
                "(SELECT h.amount FROM wallets w JOIN token_holdings h ON h.address = w.address "
                " WHERE w.player_id = :p AND w.unlinked_at IS NULL)) ON CONFLICT (attempt_id) DO NOTHING"
            ),
            {"a": attempt_id, "p": player_id, "d": discount_bps},
        )
