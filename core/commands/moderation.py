"""Moderators' commands about players (SPEC §8): ban, unban, note, audit, announce, unlink.

On the text platforms ``/admin ban <player> [duration] <reason>`` tells the optional duration from
the reason by its first character: a word starting with a digit or a sign is the duration (and must
be a valid one, like 30m, 12h or 7d); anything else starts the reason (``/admin ban @bob spamming``
bans until unbanned). Discord has an option per field."""

from __future__ import annotations

from typing import Any

from core.commands.base import Arg, Command, CommandContext, Field, Reply, command
from core.money import usdc
from core.services import identity, moderation
from core.services.players import PLATFORMS

PLAYER_HELP = "the player: @username, a mention, their user id, a reply to them, #<player id> or telegram:<id>"


def _who(player) -> str:
    return f"{player.display_name} (#{player.id})"


async def admin_ban(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Ban a player for a while (30m, 12h, 7d) or until unbanned; paid and team commands are refused."""
    banned = await moderation.ban(
        ctx.app, ctx.actor, args["player"], args.get("duration"), args["reason"]
    )
    text = f"{_who(banned.player)} is banned {banned.end_text}. They were told why."
    if banned.replaced is not None:
        text += " This replaces the ban that was in force."
    return Reply(title="Banned", text=text, private=True, tone="warning")


async def admin_unban(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Lift a player's ban now."""
    player = await moderation.unban(ctx.app, ctx.actor, args["player"], args.get("reason"))
    return Reply(
        title="Unbanned", text=f"{_who(player)} can play again.", private=True, tone="success"
    )


async def admin_note(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Keep a note about a player (moderators read it in /admin audit)."""
    player = await moderation.add_note(ctx.app, ctx.actor, args["player"], args["text"])
    return Reply(title="Note kept", text=f"Noted on {_who(player)}.", private=True, tone="success")


async def admin_audit(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """A player's standing and record, newest first: bans, notes, grants, refunds, limits, links."""
    page = args.get("page") or 1
    a = await moderation.player_audit(ctx.app, ctx.actor, args["player"], page)
    s = a.standing
    fields = [
        Field("Accounts", ", ".join(s.identities) or "none", inline=False),
        Field("Balance", usdc(s.balance, demo=s.is_demo)),
        Field("Attempts", f"{s.attempts:,} ({usdc(s.paid, demo=s.is_demo)} paid)"),
        Field("Ban", s.banned or ("none" if not s.bans else f"none now ({s.bans} before)")),
        Field(
            "Self-exclusion",
            f"until {s.excluded_until:%Y-%m-%d %H:%M} UTC" if s.excluded_until else "none",
        ),
        Field(
            "Daily limit",
            usdc(s.daily_limit, demo=s.is_demo) if s.daily_limit is not None else "none",
        ),
        Field("Notes", f"{s.notes:,}"),
    ]
    if s.joined_from:
        fields.append(Field("Joined from", ", ".join(f"#{i}" for i in s.joined_from)))
    if s.is_moderator:
        fields.append(Field("Moderator", "yes"))
    footer = f"Page {a.page} of {a.pages}"
    if a.page < a.pages:
        footer += f"; older: /admin audit #{s.player.id} {a.page + 1}"
    return Reply(
        title=f"Audit of {_who(s.player)}",
        fields=tuple(fields),
        lines=a.entries or ("No record yet.",),
        footer=footer,
        private=True,
    )


async def admin_announce(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Post an announcement to every announcement channel on Discord and Telegram."""
    announcement_id = await moderation.announce(ctx.app, ctx.actor, args["text"])
    return Reply(
        title="Announced",
        text=f"Announcement #{announcement_id} is on its way to every announcement channel.",
        private=True,
        tone="success",
    )


async def admin_unlink(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Take one platform account off a player; it starts over as a new player with nothing."""
    done = await identity.unlink(
        ctx.app, ctx.actor, args["player"], args["platform"], args["reason"]
    )
    return Reply(
        title="Unlinked",
        text=f"{done.identity.label()} is no longer part of {_who(done.player)}: it is player #{done.new_player_id} "
        f"now, with nothing. {done.player.display_name} keeps the balance and history.",
        private=True,
        tone="warning",
    )


COMMANDS: list[Command] = [
    command(
        "admin ban",
        admin_ban,
        Arg("player", "player", PLAYER_HELP),
        Arg(
            "duration",
            "duration",
            "how long: 30m, 12h, 7d (leave out: until unbanned)",
            required=False,
        ),
        Arg("reason", "text", "why (the player is told)", max_length=moderation.MAX_REASON),
        moderator=True,
        private=True,
    ),
    command(
        "admin unban",
        admin_unban,
        Arg("player", "player", PLAYER_HELP),
        Arg(
            "reason",
            "text",
            "why (kept in the audit log)",
            required=False,
            max_length=moderation.MAX_REASON,
        ),
        moderator=True,
        private=True,
    ),
    command(
        "admin note",
        admin_note,
        Arg("player", "player", PLAYER_HELP),
        Arg("text", "text", "the note", max_length=moderation.MAX_NOTE),
        moderator=True,
        private=True,
    ),
    command(
        "admin audit",
        admin_audit,
        Arg("player", "player", PLAYER_HELP),
        Arg(
            "page",
            "int",
            "which page (1 is the newest)",
            required=False,
            min_value=1,
            max_value=10_000,
        ),
        moderator=True,
        private=True,
        slow=True,
    ),
    command(
        "admin announce",
        admin_announce,
        Arg("text", "text", "what to announce", max_length=moderation.MAX_ANNOUNCEMENT),
        moderator=True,
        private=True,
    ),
    command(
        "admin unlink",
        admin_unlink,
        Arg("player", "player", PLAYER_HELP),
        Arg("platform", "choice", "which of the player's accounts to take off", choices=PLATFORMS),
        Arg("reason", "text", "why (kept in the audit log)", max_length=moderation.MAX_REASON),
        moderator=True,
        private=True,
    ),
]
