"""What the bots tell the operator: every call to a platform's API counted by outcome (429s and
5xx apart, core.metrics), and whether the last call got an answer (for /readyz)."""

from __future__ import annotations

import aiohttp

from core import metrics


class PlatformLink:
    """An aiohttp trace for one platform's HTTP calls; ``answering`` is False after a call that got
    no answer until one does."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.answering = True
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_end.append(self._answered)
        self.trace.on_request_exception.append(self._failed)

    async def _answered(self, session, context, params: aiohttp.TraceRequestEndParams) -> None:
        self.answering = True
        metrics.platform_response(self.platform, params.response.status)

    async def _failed(self, session, context, params: aiohttp.TraceRequestExceptionParams) -> None:
        if isinstance(params.exception, aiohttp.ClientResponseError):
            metrics.platform_response(self.platform, params.exception.status)
            return
        self.answering = False
        metrics.platform_unreachable(self.platform)
