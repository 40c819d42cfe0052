"""Holder discounts on the attempt fee. The token issue supplies one reading wallet holdings."""

from __future__ import annotations

import abc

from sqlalchemy.ext.asyncio import AsyncConnection


class DiscountPolicy(abc.ABC):
    @abc.abstractmethod
    async def discount_bps(self, conn: AsyncConnection, player_id: int) -> int:
        """The player's discount on the attempt fee in basis points (0..10000)."""


class NoDiscounts(DiscountPolicy):
    async def discount_bps(self, conn: AsyncConnection, player_id: int) -> int:
        return 0
