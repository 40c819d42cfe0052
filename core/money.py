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


USDC = Currency("USDC", 6, 1_000_000_000)  # 1e9 USDC = 1e15 micro-units, far inside BIGINT
TOKEN = Currency("$100Bs", 8, 100_000_000_000)  # the whole supply is 100 billion

_AMOUNT = re.compile(r"^(?P<int>\d+)(?:\.(?P<frac>\d*))?$|^\.(?P<frac2>\d+)$")


def parse_amount(text: str | None, currency: Currency = USDC, *, allow_zero: bool = False) -> int:
    """Parse a typed amount like ``12.5`` into minor units exactly; refuse rather than round."""
    if text is None or not str(text).strip():
        raise InvalidArgument(f"Amount is missing: give it in {currency.code}, like 12.5.")
    raw = str(text).strip().replace("_", "").replace(",", "")
    if raw.startswith("-"):
        raise InvalidArgument(f"Amount must be positive, not {text.strip()[:20]!r}.")
    raw = raw.removeprefix("+")
    if len(raw) > 40:
        raise InvalidArgument(f"Amount is too long to be a {currency.code} amount.")
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
