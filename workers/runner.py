"""Run a core coroutine from a (synchronous) Celery task with a short-lived App."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from core.app import App, bootstrap
from core.settings import load_settings

T = TypeVar("T")


def run_with_app(fn: Callable[[App], Awaitable[T]]) -> T:
    async def go() -> T:
        settings = load_settings()
        app = bootstrap(settings, os.environ["DATABASE_URL"], pool_size=2)
        try:
            return await fn(app)
        finally:
            await app.aclose()

    return asyncio.run(go())
