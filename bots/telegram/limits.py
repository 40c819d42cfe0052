"""Telegram's limits and failures, on every Bot API call the bot makes (sends, edits, answers to
buttons, invite links, group administration).

- ``RetryAfter`` (429, flood control): PTB's ``AIORateLimiter`` waits the time Telegram names and tries
  again, holding every other call meanwhile (a flood limit is the bot's, not one chat's).
- ``TimedOut`` and ``NetworkError`` (no answer in time, a dropped connection, Telegram's 5xx): waited
  out with a doubling pause and tried again, ``retries`` times. The Bot API has no idempotency key:
  when the answer was lost *after* Telegram carried the call out, trying again can repeat it. For an
  edit that repetition is harmless (Telegram says "message is not modified", taken here as success);
  for a new message it would show it twice. We accept that rare duplicate rather than drop an answer
  to a player; what moves money is idempotent in core, so nothing is ever charged twice.
- What still fails after that goes back to the caller: an answer to a player is then kept in the
  outbox and sent later (``handlers.send`` raises ``Unsent`` with what is left to send).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import AIORateLimiter

log = logging.getLogger("bounty.telegram")

TRANSIENT = (
    TimedOut,
    NetworkError,
    RetryAfter,
)  # BadRequest is a NetworkError too: never transient


def transient(exc: BaseException) -> bool:
    """A failure worth trying again later (not a refusal of the call itself)."""
    return isinstance(exc, TRANSIENT) and not isinstance(exc, BadRequest)


class PatientRateLimiter(AIORateLimiter):
    """``AIORateLimiter`` plus retries of calls that timed out or met a network or server error."""

    retries = 5
    first_pause = 0.5  # seconds, doubling: 0.5 + 1 + 2 + 4 + 8, about 15 s in all

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        pause = self.first_pause
        for attempt in range(self.retries + 1):
            try:
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
            except BadRequest as exc:
                if (
                    attempt
                    and endpoint.startswith("edit")
                    and "not modified" in exc.message.lower()
                ):
                    return True  # the try whose answer was lost had made the edit
                raise
            except (TimedOut, NetworkError) as exc:
                if attempt == self.retries:
                    raise
                # The type only: a network error's text can carry the request's URL (and the token).
                log.warning(
                    "Bot API %s failed (%s); trying again in %.1f s",
                    endpoint,
                    type(exc).__name__,
                    pause,
                )
                await asyncio.sleep(pause)
                pause *= 2
        raise AssertionError("unreachable")
