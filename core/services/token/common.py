"""What the token's services share: the currency, the holder tiers, months, the audit trail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

from core.errors import BountyError, InvalidArgument, NotConfigured
from core.money import TOKEN, Currency, format_amount
from core.settings import Settings

# SPEC §6: holders' discounts on the attempt fee, by whole tokens held (highest first).
TIERS: tuple[tuple[int, int], ...] = ((100_000_000, 5_000), (10_000_000, 2_500), (1_000_000, 1_000))


class ChainUnavailable(BountyError):
    """Solana (or the price source) did not answer: nothing was changed, try again shortly."""


def token_currency(settings: Settings) -> Currency:
    if settings.TOKEN_DECIMALS == TOKEN.decimals:
        return TOKEN
    return Currency(TOKEN.code, settings.TOKEN_DECIMALS, TOKEN.max_units)


def tokens(amount: int, settings: Settings) -> str:
    """``12,500,000 $100Bs``."""
    return format_amount(amount, token_currency(settings))


def tier_bps(holdings: int | None, settings: Settings) -> int:
    """The discount in basis points for holdings in base units (0 below the first tier or unknown)."""
    if not holdings:
        return 0
    unit = token_currency(settings).unit
    for whole, bps in TIERS:
        if holdings >= whole * unit:
            return bps
    return 0


def next_tier(holdings: int | None, settings: Settings) -> tuple[int, int] | None:
    """(discount bps, base units still needed) of the next tier up, or None at the top."""
    unit = token_currency(settings).unit
    held = holdings or 0
    for whole, bps in reversed(TIERS):
        if held < whole * unit:
            return bps, whole * unit - held
    return None


def percent(bps: int) -> str:
    return f"{bps / 100:g} %"


def usd(micro_usd: int) -> str:
    """Micro-dollars, shown to the cent (floored)."""
    cents = micro_usd // 10_000
    return f"${cents // 100:,}.{cents % 100:02d}"


def usd_value(amount: int, price: Decimal, settings: Settings) -> int:
    """Holdings × price, in micro-dollars, floored; exact decimal arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 60
        value = Decimal(amount) * price * 1_000_000 / Decimal(token_currency(settings).unit)
        return int(value.to_integral_value(rounding=ROUND_DOWN))


def price_text(price: Decimal) -> str:
    """A price with its significant digits, never in exponent form: ``$0.00004217``."""
    shown = f"{price:f}"
    if "." in shown:
        shown = shown.rstrip("0").rstrip(".")
    return f"${shown}"


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "never"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86_400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86_400} days ago"


def when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


# --- months (UTC) ---

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month."""
        return self.next().start

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def end_day(self) -> date:
        return self.end.date()

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), 12 if self.month == 1 else self.month - 1)

    @classmethod
    def of(cls, moment: datetime) -> Month:
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)


def parse_month(raw: str | None) -> Month:
    """``2026-03``: a calendar month, UTC."""
    value = (raw or "").strip()
    match = _MONTH.match(value)
    if not match:
        raise InvalidArgument(f"{value[:20]!r} is not a month: write it as YYYY-MM, like 2026-03.")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise InvalidArgument(f"{value!r} is not a month: the month is 01 to 12.")
    if year < 2000:
        raise InvalidArgument(f"{value!r} is before the game existed.")
    return Month(year, month)


def overlap_days(started_at: datetime, unlocks_at: datetime, month: Month) -> int:
    """Days of the month a position is staked: from its start day (counted) to its unlock day (not)."""
    first = max(started_at.astimezone(UTC).date(), month.first_day)
    last = min(unlocks_at.astimezone(UTC).date(), month.end_day)
    return max(0, (last - first).days)


# --- the audit trail ---


def treasury_usdc_account(settings: Settings) -> str:
    """Where deposits must go and payouts come from."""
    if settings.TREASURY_USDC_ACCOUNT:
        return settings.TREASURY_USDC_ACCOUNT
    if settings.TREASURY_WALLET:
        return associated_account(settings.TREASURY_WALLET, settings.USDC_MINT)
    raise NotConfigured(
        "Deposits are not open yet: the treasury's USDC account is not configured "
        "(TREASURY_USDC_ACCOUNT or TREASURY_WALLET)."
    )


def associated_account(owner: str, mint: str) -> str:
    from solders.pubkey import Pubkey
    from spl.token.instructions import get_associated_token_address

    return str(get_associated_token_address(Pubkey.from_string(owner), Pubkey.from_string(mint)))


def later(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
