"""The one error policy of every adapter: a core error is answered with its message; anything else
is logged with an error id and answered with a short apology carrying that id."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from core.errors import BountyError

log = logging.getLogger("bounty.bots")


@dataclass(frozen=True)
class ErrorAnswer:
    message: str
    error_id: str | None  # set when the error was unexpected (and logged)


def answer_for(exc: BaseException, *, where: str) -> ErrorAnswer:
    if isinstance(exc, BountyError):
        return ErrorAnswer(exc.message, None)
    error_id = secrets.token_hex(4)
    log.error("unexpected error %s in %s", error_id, where, exc_info=exc)
    return ErrorAnswer(
        f"Sorry, something went wrong on our side (error id {error_id}). Nothing was charged twice; /history shows your attempts.",
        error_id,
    )
