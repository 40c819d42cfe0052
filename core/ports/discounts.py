"""Holder discounts on the attempt fee. The token feature supplies one reading wallet holdings."""

from __future__ import annotations

import abc

from core.db import Conn


class DiscountPolicy(abc.ABC):
    def quote_sql(self, player_id: str) -> str | None:
        """A scalar SQL expression of the SQL expression ``player_id`` that the quote reads in its own
        statement (one round trip fewer per attempt); ``from_quote`` turns its value into the discount.
        None: the quote asks ``discount_bps`` instead."""
        return None

    @abc.abstractmethod
    async def discount_bps(self, conn: Conn, player_id: int) -> int:
        """The player's discount on the attempt fee in basis points (0..10000)."""

    def from_quote(self, value: object) -> int | None:
        """The discount from the value of ``quote_sql`` read with the quote; None without ``quote_sql``."""
        return None

    async def record_use(  # noqa: B027
        self, conn: Conn, attempt_id: int, player_id: int, discount_bps: int
    ) -> None:
        """Called in the payment's transaction for every discounted attempt (the discount usage record)."""


class NoDiscounts(DiscountPolicy):
    def quote_sql(self, player_id: str) -> str:
        return "0"

    def from_quote(self, value: object) -> int:
        return 0

    async def discount_bps(self, conn: Conn, player_id: int) -> int:
        return 0
