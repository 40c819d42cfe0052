"""The token's price source: an HTTP JSON endpoint (a DEX aggregator's price API) and where in its
answer the number is. The number is read as an exact decimal, never a float."""

from __future__ import annotations

import abc
import json
from decimal import Decimal, InvalidOperation
from typing import Any


class PriceUnavailable(Exception):
    """The source is down, slow, or answered without a usable price."""


class PriceSource(abc.ABC):
    name: str = "price source"

    @abc.abstractmethod
    async def price_usd(self) -> Decimal:
        """The token's price in USD."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the HTTP client."""


class NoPriceSource(PriceSource):
    name = "none"

    async def price_usd(self) -> Decimal:
        raise PriceUnavailable("no price source is configured (TOKEN_PRICE_URL)")


def pick(document: Any, path: str) -> Any:
    """``data.<mint>.price`` or ``pairs.0.priceUsd``: dict keys and list indexes, by dots."""
    node = document
    for part in [p for p in path.split(".") if p]:
        if isinstance(node, list) and part.lstrip("-").isdigit():
            try:
                node = node[int(part)]
            except IndexError:
                raise PriceUnavailable(f"no item {part} at {path!r}") from None
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise PriceUnavailable(f"nothing at {path!r} in the answer")
    return node


def to_price(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise PriceUnavailable(f"the price is not a number: {str(value)[:40]!r}")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise PriceUnavailable(f"the price is not a number: {str(value)[:40]!r}") from None
    if not price.is_finite() or price <= 0:
        raise PriceUnavailable(f"the price is not a positive number: {str(value)[:40]!r}")
    return price


class HttpJsonPriceSource(PriceSource):
    def __init__(self, url: str, path: str, *, timeout: float = 10.0) -> None:
        self.url, self.path, self.timeout = url, path, timeout
        self.name = url.split("?", 1)[0]  # query strings may carry keys
        self._client: Any = None

    async def price_usd(self) -> Decimal:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=True)
        try:
            response = await self._client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            # Floats never: the number keeps every digit the source sent.
            document = json.loads(response.text, parse_float=Decimal)
        except httpx.HTTPStatusError as exc:
            raise PriceUnavailable(f"HTTP {exc.response.status_code}") from None
        except httpx.TimeoutException:
            raise PriceUnavailable("the price source did not answer in time") from None
        except httpx.HTTPError as exc:
            raise PriceUnavailable(type(exc).__name__) from None
        except ValueError:
            raise PriceUnavailable("the answer is not JSON") from None
        return to_price(pick(document, self.path))

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
