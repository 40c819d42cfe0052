"""One player on several platforms (SPEC §8): linking accounts."""

from __future__ import annotations

from core.commands.base import Command

COMMANDS: list[Command] = []
CONFIRMATIONS: dict = {}
