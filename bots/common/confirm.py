"""The wire form of a confirmation answer on buttons: ``cf:<token>:y|n``, one format for every
platform (Discord custom_id, Telegram callback_data)."""

from __future__ import annotations

PREFIX = "cf"
# For platforms that route by pattern (discord.py's DynamicItem template).
PATTERN = PREFIX + r":(?P<token>.{1,90}):(?P<answer>[yn])"


def encode(token: str, accept: bool, *, max_bytes: int, where: str) -> str:
    value = f"{PREFIX}:{token}:{'y' if accept else 'n'}"
    if len(value.encode("utf-8")) > max_bytes:
        raise ValueError(
            f"confirmation token too long for {where} ({len(value.encode('utf-8'))} bytes, at most {max_bytes})"
        )
    return value


def decode(value: str | None) -> tuple[str, bool] | None:
    """``cf:<token>:y|n`` -> (token, accept); anything else -> None."""
    if not value or not value.startswith(PREFIX + ":"):
        return None
    token, _, answer = value[len(PREFIX) + 1 :].rpartition(":")
    if not token or answer not in ("y", "n"):
        return None
    return token, answer == "y"
