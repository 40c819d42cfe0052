"""A local stand-in for a DEX aggregator's price API (HTTP JSON), with faults: HTTP 500, a hang,
a body that is not JSON, and JSON without the price."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.standins.local import serve_local


@dataclass
class PriceStandIn:
    """Answers ``GET /price/v3?ids=<mint>`` like Jupiter's price API: ``{"<mint>": {"usdPrice": …}}``."""

    mint: str
    price: str = "0.00004217"  # written into the JSON verbatim (a JSON number, not a string)
    port: int = 0
    faults: list[str] = field(default_factory=list)  # "500", "hang", "garbage", "missing"
    requests: int = 0
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/price/v3?ids={self.mint}"

    @property
    def json_path(self) -> str:
        return f"{self.mint}.usdPrice"

    async def start(self) -> PriceStandIn:
        app = web.Application()
        app.router.add_get("/price/v3", self._handle)
        self._runner, self.port = await serve_local(app)
        return self

    async def stop(self) -> None:
        self._release.set()  # hanging handlers finish, so the shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        fault = self.faults.pop(0) if self.faults else None
        if fault == "500":
            return web.Response(status=500, text="upstream error")
        if fault == "hang":
            await self._release.wait()
            return web.Response(status=503)
        if fault == "garbage":
            return web.Response(text="<html>rate limited</html>", content_type="application/json")
        ids = request.query.get("ids", "")
        body: dict[str, Any] = {}
        if fault != "missing" and ids == self.mint:
            body = {self.mint: {"blockId": 348_004_000, "decimals": 8, "priceChange24h": -1.5}}
        text = (
            "{"
            + ", ".join(
                f'"{mint}": {{"usdPrice": {self.price}, "blockId": {v["blockId"]}, "decimals": {v["decimals"]}, '
                f'"priceChange24h": {v["priceChange24h"]}}}'
                for mint, v in body.items()
            )
            + "}"
        )
        return web.Response(text=text, content_type="application/json")
