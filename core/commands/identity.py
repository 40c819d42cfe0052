"""One player on several platforms (SPEC §8): linking accounts with a one-time code."""

from __future__ import annotations

from typing import Any

from core.commands.base import Arg, Command, CommandContext, Field, Reply, command
from core.money import usdc
from core.services import identity


async def link(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Play as one player on Discord and Telegram: /link gives a code, /link <code> on the other joins."""
    if args.get("code"):
        joined = await identity.join(ctx.app, ctx.actor, args["code"])
        return Reply(
            title="Accounts linked",
            text="These accounts are one player now: one balance, one history, the same limits and standing.",
            fields=(
                Field("Accounts", ", ".join(i.label() for i in joined.identities), inline=False),
                Field("Balance", usdc(joined.balance, demo=joined.is_demo)),
            ),
            private=True,
            tone="success",
        )
    made = await identity.new_code(ctx.app, ctx.actor)
    return Reply(
        title="Link your accounts",
        text=(
            "On your other platform (Discord or Telegram), send /link with this code within 10 minutes. "
            "It works once.\nWhoever enters it joins their account with yours and shares your balance: "
            "never give it to anyone else."
        ),
        code=made.code,
        footer=f"Valid until {made.expires_at:%H:%M} UTC.",
        private=True,
    )


COMMANDS: list[Command] = [
    command(
        "link",
        link,
        Arg(
            "code",
            "word",
            "the code /link gave you on your other platform",
            required=False,
            max_length=20,
        ),
        private=True,
    ),
]
CONFIRMATIONS: dict = {}
