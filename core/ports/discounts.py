"""Holder discounts on the attempt fee. The token feature supplies one reading wallet holdings."""

from __future__ import annotations

import abc

from sqlalchemy.ext.asyncio import AsyncConnection


class DiscountPolicy(abc.ABC):
    @abc.abstractmethod
    async def discount_bps(self, conn: AsyncConnection, player_id: int) -> int:
        """The player's discount on the attempt fee in basis points (0..10000)."""

    async def record_use(self, conn: AsyncConnection, attempt_id: int, player_id: int, discount_bps: int) -> None:  # noqa: B027
        """Called in the payment's transaction for every discounted attempt (the discount usage record)."""


class NoDiscounts(DiscountPolicy):
    async def discount_bps(self, conn: AsyncConnection, player_id: int) -> int:
        return 0
