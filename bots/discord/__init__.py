"""The Discord adapter: core's commands as slash commands, confirmations as buttons, replies as
embeds, announcements to a channel. ``run_discord`` is what ``bounty run`` starts;
``BountyDiscordBot`` (start/stop) is what tests and the benchmark start against a stand-in."""

from bots.discord.bot import BountyClient, BountyDiscordBot, run_discord
from bots.discord.commands import build_app_commands, slash_commands
from bots.discord.handlers import actor_for

__all__ = [
    "BountyClient",
    "BountyDiscordBot",
    "actor_for",
    "build_app_commands",
    "run_discord",
    "slash_commands",
]
