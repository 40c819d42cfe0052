"""$100Bs token commands (SPEC §6): wallet, deposits, staking, buyback, withdrawals, and their
moderator side."""

from __future__ import annotations

from core.commands.base import Command

COMMANDS: list[Command] = []
CONFIRMATIONS: dict = {}
