"""What a command that changes something would do now, in the words of the question asked when
its owner did not type it (a deep link, a forwarded button; ``core/commands/consent.py``).

Each names exactly what moves and what leaves. The rule a command follows is said once, in its help
text, and quoted here; the figures are read as they stand."""

from __future__ import annotations

from typing import Any

from core.commands.base import DEFINED, CommandContext
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.money import usdc
from core.services import previews, teams
from core.services.players import ensure_player


def _help(name: str) -> str:
    return DEFINED[name].help


async def team_leave(ctx: CommandContext, _: dict[str, Any]) -> str:
    i = await teams.info(ctx.app, ctx.actor)
    t, demo = i.team, i.demo
    me = await _me(ctx, i)
    mine = me.contributed if me is not None else 0
    others = [m for m in i.members if me is None or m.player_id != me.player_id]
    if not others:
        return (
            f"You leave team {t.name}. You are its last member: the team is disbanded and what is "
            f"left of its pool, {usdc(i.pool, demo=demo)}, comes back to your balance."
        )
    share = teams.leaver_share(i.pool, me, list(i.members)) if me is not None else 0
    text = (
        f"You leave team {t.name} ({len(i.members)} members, captain {i.captain_name}). Its pool "
        f"holds {usdc(i.pool, demo=demo)}, of which you contributed {usdc(mine, demo=demo)}: your "
        f"share, {usdc(share, demo=demo)}, comes back to your balance. {_help('team leave')}"
    )
    if i.is_captain:
        text += f" You are its captain: {others[0].display_name}, the longest-standing member, takes over."
    return text


async def _me(ctx: CommandContext, i: teams.TeamInfo):
    async with ctx.app.uow() as uow:
        player = await ensure_player(uow.conn, ctx.actor)
    return next((m for m in i.members if m.player_id == player.id), None)


async def team_accept(ctx: CommandContext, args: dict[str, Any]) -> str:
    found = await previews.open_invitations(ctx.app, ctx.actor, args.get("team"))
    if not found:
        which = f" to {args['team']}" if args.get("team") else ""
        raise NotFound(f"You have no open team invitation{which}.")
    if len(found) > 1:
        raise InvalidArgument(
            "You are invited to several teams: /team accept <team name> with one of "
            + ", ".join(f.team for f in found)
            + "."
        )
    f = found[0]
    return (
        f"You join team {f.team} (captain {f.captain}, {f.members} of "
        f"{ctx.app.settings.TEAM_MAX_MEMBERS} members, a pool of {usdc(f.pool)}). No money moves "
        "now: only /team fund puts your money in its pool, and its members spend the pool as its "
        "captain decides (/team info shows how)."
    )


async def team_code(ctx: CommandContext, args: dict[str, Any]) -> str:
    i = await teams.info(ctx.app, ctx.actor)
    if not i.is_captain:
        raise NotPermitted(f"Only the captain of {i.team.name} can do that.")
    if args.get("action") == "rotate":
        return (
            f"The invite code of {i.team.name} changes: the old one stops working at once, and "
            "you are shown the new one."
        )
    return f"You are shown the invite code of {i.team.name}; nothing changes."


async def team_link(ctx: CommandContext, _: dict[str, Any]) -> str:
    i = await teams.info(ctx.app, ctx.actor)
    if ctx.actor.private_chat:
        return (
            f"I send you a new single-use invite link to the Telegram group of {i.team.name} "
            "(if it has one)."
        )
    return (
        f"This group becomes the team chat of {i.team.name}: I admit only its members (join "
        "requests from anyone else are declined), remove players who leave the team, and share "
        "messages with the team's Discord channel."
    )


async def wallet_unlink(ctx: CommandContext, _: dict[str, Any]) -> str:
    w = await previews.linked_wallet(ctx.app, ctx.actor)
    if w.address is None:
        raise NotFound("You have no wallet linked.")
    hours = ctx.app.settings.WALLET_RELINK_SECONDS // 3600
    text = (
        f"Your wallet {w.address} is unlinked from you: deposits from it are no longer credited to "
        f"you, payouts cannot go to it, and another player may link it after {hours} hours."
    )
    if w.active_stakes:
        text += (
            f" Your {w.active_stakes} active stake{'s' if w.active_stakes != 1 else ''} earn "
            "nothing until it is linked again."
        )
    return text
