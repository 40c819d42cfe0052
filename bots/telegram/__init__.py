"""The Telegram adapter: core's commands as Telegram commands, confirmations as inline keyboards,
announcements to a chat. ``run_telegram`` is what ``bounty run`` starts."""

from bots.telegram.routing import DeepLinks
from bots.telegram.runner import TelegramBot, build_application, run_telegram

__all__ = ["DeepLinks", "TelegramBot", "build_application", "run_telegram"]
