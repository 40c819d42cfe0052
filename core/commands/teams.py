"""Team commands (SPEC §7)."""

from __future__ import annotations

from core.commands.base import Command

COMMANDS: list[Command] = []
CONFIRMATIONS: dict = {}
