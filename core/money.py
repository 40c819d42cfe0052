"""Exact parsing and formatting of amounts: integers in minor units, never floats."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidArgument


@dataclass(frozen=True)
class Currency:
    code: str
    decimals: int
    max_units: int  # the largest whole-unit amount anyone may type

    @property
    def unit(self) -> int:
        return 10**self.decimals


BIGINT_MAX = 2**63 - 1  # what the database stores an amount in
USDC = Currency("USDC", 6, 1_000_000_000)  # 1e9 USDC = 1e15 micro-units, far inside BIGINT
# The supply is 100 billion, but 1e11 × 1e8 base units would not fit in a BIGINT: the largest amount
# anyone may type is what does (92,233,720,368 tokens, 92 % of the supply).
TOKEN = Currency("$100Bs", 8, BIGINT_MAX // 10**8)

_AMOUNT = re.compile(r"^(?P<int>\d+)(?:\.(?P<frac>\d*))?$|^\.(?P<frac2>\d+)$")
# Digits grouped by thousands: 1,000 or 1,000,000.5 (commas or underscores, every group of three).
_GROUPED = re.compile(r"^\d{1,3}(?:[,_]\d{3})+(?:\.\d*)?$")


def parse_amount(text: str | None, currency: Currency = USDC, *, allow_zero: bool = False) -> int:
    """Parse a typed amount like ``12.5`` into minor units exactly; refuse rather than round."""
    if text is None or not str(text).strip():
        raise InvalidArgument(f"Amount is missing: give it in {currency.code}, like 12.5.")
    raw = str(text).strip()
    if raw.startswith("-"):
        raise InvalidArgument(f"Amount must be positive, not {text.strip()[:20]!r}.")
    raw = raw.removeprefix("+")
    if len(raw) > 40:
        raise InvalidArgument(f"Amount is too long to be a {currency.code} amount.")
    if "," in raw or "_" in raw:
        # A comma is a thousands separator only where it groups by three: "5,5" could mean five and
        # a half or fifty-five, so it is refused rather than guessed.
        if not _GROUPED.match(raw):
            shown = text.strip()[:20]
            raise InvalidArgument(
                f"{shown!r} is ambiguous: write decimals with a point ({shown.replace(',', '.').replace('_', '.')!r} "
                "for a decimal comma), and group thousands by three (1,000 or 1000)."
            )
        raw = raw.replace(",", "").replace("_", "")
    match = _AMOUNT.match(raw)
    if not match:
        raise InvalidArgument(f"{text.strip()[:20]!r} is not an amount: use digits like 12.5.")
    whole = match.group("int") or "0"
    frac = match.group("frac") or match.group("frac2") or ""
    if len(frac) > currency.decimals:
        raise InvalidArgument(
            f"{currency.code} amounts have at most {currency.decimals} decimals; {text.strip()[:20]!r} has {len(frac)}."
        )
    if int(whole) > currency.max_units:
        raise InvalidArgument(
            f"Amount is too large: at most {currency.max_units:,} {currency.code}."
        )
    minor = int(whole) * currency.unit + int(frac.ljust(currency.decimals, "0") or "0")
    if minor > currency.max_units * currency.unit:
        raise InvalidArgument(
            f"Amount is too large: at most {currency.max_units:,} {currency.code}."
        )
    if minor == 0 and not allow_zero:
        raise InvalidArgument("Amount must be more than zero.")
    return minor


def format_amount(minor: int, currency: Currency = USDC, *, demo: bool = False) -> str:
    """Render minor units as whole units with the needed decimals (at least 2 for USDC)."""
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), currency.unit)
    digits = f"{frac:0{currency.decimals}d}".rstrip("0")
    if currency is USDC and len(digits) < 2:
        digits = digits.ljust(2, "0")
    body = f"{sign}{whole:,}" + (f".{digits}" if digits else "")
    label = f"demo {currency.code}" if demo else currency.code
    return f"{body} {label}"


def usdc(minor: int, *, demo: bool = False) -> str:
    return format_amount(minor, USDC, demo=demo)
