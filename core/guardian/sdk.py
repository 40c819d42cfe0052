"""What the SDK-backed guardians share: one time limit for the whole answer, and one policy that
turns every SDK failure into GuardianUnavailable (so the core refunds) without leaking secrets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.ports.guardian import GuardianUnavailable

log = logging.getLogger(__name__)


@asynccontextmanager
async def sdk_call(
    *,
    api: str,
    settings_hint: str,
    timeout: float,
    status_error: type[Exception],
    base_error: type[Exception],
) -> AsyncIterator[None]:
    """``async with sdk_call(...): answer = await client...`` — the timeout bounds the whole answer,
    the SDK's retries included, not each try."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except status_error as exc:
        status = getattr(exc, "status_code", "?")
        if status in (401, 403, 404):  # a refused key or an unknown model: not an outage
            log.error("%s guardian: HTTP %s; check %s", api, status, settings_hint)
        else:
            log.warning("%s guardian: HTTP %s (%s)", api, status, type(exc).__name__)
        raise GuardianUnavailable(f"the {api} API answered HTTP {status}") from None
    # ValueError: an answer whose body is not JSON (the SDKs let it through).
    except (base_error, TimeoutError, ValueError) as exc:
        log.warning("%s guardian: %s", api, type(exc).__name__)
        raise GuardianUnavailable(f"the {api} API did not answer ({type(exc).__name__})") from None
