"""Errors a player, team or moderator can cause: answered with their message, never logged as crashes."""

from __future__ import annotations


class BountyError(Exception):
    """Base of every error whose message is safe and useful to show to the person who caused it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(BountyError):
    """An argument is missing, malformed, out of range or too long."""


class NotFound(BountyError):
    """The thing named does not exist (or is not visible to this person)."""


class NotPermitted(BountyError):
    """The person may not do this (not a moderator, not the owner of a button, banned...)."""


class SecretInPublic(NotPermitted):
    """A command carrying a secret was typed where others see it (a group chat): refused unread."""


class InsufficientFunds(BountyError):
    """A player or team balance would go below zero."""


class RoundNotActive(BountyError):
    """There is no active round, or the round is paused or over."""


class CooldownActive(BountyError):
    """The player attempted too recently."""


class LimitReached(BountyError):
    """A responsible-play limit (daily cap, self-exclusion) stops this payment."""


class ConfirmationExpired(BountyError):
    """A confirmation button or prompt is too old, or was already used."""


class FeeChanged(BountyError):
    """Others' attempts raised the fee above what the player confirmed; the player is asked again."""

    def __init__(self, message: str, quote: object, *, shown_before: bool = False) -> None:
        super().__init__(message)
        self.quote = quote
        # Another tap on the same confirmation already showed this new quote: the message shows it.
        self.shown_before = shown_before


class NotConfigured(BountyError):
    """A feature needs a setting that is not set on this deployment."""
