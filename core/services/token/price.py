"""The token's price history: a worker records the source's price at intervals; a failed reading is
recorded too, so the last price stays shown, marked stale."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from core.db import Conn
from core.ports.prices import NoPriceSource, PriceUnavailable

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriceView:
    price: Decimal | None
    observed_at: datetime | None
    stale: bool
    last_error: str | None  # the newest reading failed with this


async def record_price(app: App) -> Decimal | None:
    """Read the price source once and record the reading (or its failure). None: no source, or it failed."""
    if isinstance(app.prices, NoPriceSource):
        return None
    now = app.clock()
    try:
        price = await app.prices.price_usd()
        error = None
    except PriceUnavailable as exc:
        price, error = None, str(exc)[:300]
        log.warning("token price not read: %s", error)
    async with app.uow() as uow:
        await uow.conn.execute(
            "INSERT INTO token_prices (observed_at, price_usd, source, error) VALUES (:t, :p, :s, :e)",
            {"t": now, "p": price, "s": app.prices.name, "e": error},
        )
    return price


async def latest(conn: Conn, app: App) -> PriceView:
    """The last good price, stale when older than TOKEN_PRICE_STALE_SECONDS or when a later reading failed."""
    good = (
        await conn.execute(
            "SELECT price_usd, observed_at FROM token_prices WHERE price_usd IS NOT NULL "
            "ORDER BY observed_at DESC, id DESC LIMIT 1"
        )
    ).first()
    newest = (
        await conn.execute(
            "SELECT price_usd, observed_at, error FROM token_prices ORDER BY observed_at DESC, "
            "id DESC LIMIT 1"
        )
    ).first()
    if good is None:
        return PriceView(None, None, True, newest.error if newest is not None else None)
    failed_since = newest is not None and newest.price_usd is None
    too_old = (
        app.clock() - good.observed_at
    ).total_seconds() > app.settings.TOKEN_PRICE_STALE_SECONDS
    return PriceView(
        good.price_usd,
        good.observed_at,
        failed_since or too_old,
        newest.error if failed_since else None,
    )
