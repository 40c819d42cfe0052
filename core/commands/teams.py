"""Team commands (SPEC §7): forming a team, its pool and team attempts, the captain's settings,
and the team's chats."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from core.actors import Actor
from core.commands import previews
from core.commands.attempt_replies import confirmed, quote_reply
from core.commands.base import Arg, Command, CommandContext, Confirm, Field, Reply, command
from core.commands.consent import TTL as QUESTION_TTL
from core.commands.consent import pressed, question_token
from core.errors import NotPermitted
from core.logs import bind
from core.money import usdc
from core.services import attempts, teams
from core.services.players import require_not_banned

DISBAND = "teamdisband"

TEAM_REF = "the team's invite code, or a public team's name"


def _split_visibility(raw: str) -> tuple[str, bool]:
    words = raw.split()
    if len(words) > 1 and words[-1].lower() in ("private", "public"):
        return " ".join(words[:-1]), words[-1].lower() == "private"
    return raw, False


async def team_create(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Start a team with you as captain; end the name with the word private to make it joinable by code only."""
    name, private = _split_visibility(args["name"])
    team = await teams.create_team(ctx.app, ctx.actor, name, private)
    how = (
        "by its invite code only"
        if private
        else f"with its invite code, or by name: /team join {team.name}"
    )
    return Reply(
        title=f"Team {team.name} created",
        tone="success",
        private=True,
        text=f"You are its captain. Others join {how}. /team invite <player> invites someone; "
        "/team fund <amount> puts money in the team pool. The invite code:",
        code=team.invite_code,
    )


async def team_join(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Join a team with its invite code (a public team also by its name)."""
    team = await teams.join_team(ctx.app, ctx.actor, args["code"])
    return Reply(
        title=f"You joined {team.name}",
        tone="success",
        private=True,
        text="/team info shows your team; /team fund <amount> adds to its pool.",
    )


async def team_invite(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Invite a player into your team; they accept with /team accept."""
    inv = await teams.invite(ctx.app, ctx.actor, args["player"])
    return Reply(
        title="Invitation sent",
        private=True,
        text=f"{inv.invitee.display_name} is invited to {inv.team.name} until "
        f"{inv.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC and was told privately.",
    )


async def team_accept(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Accept your invitation to a team (name it if you have several)."""
    team = await teams.accept(ctx.app, ctx.actor, args.get("team"))
    return Reply(
        title=f"You joined {team.name}",
        tone="success",
        private=True,
        text="/team info shows your team; /team fund <amount> adds to its pool.",
    )


async def team_leave(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Leave your team with your share of its pool."""
    d = await teams.leave(ctx.app, ctx.actor)
    if d.disbanded:
        back = "".join(
            f" {usdc(a, demo=d.demo)} from its pool is back in your balance." for _, a in d.refunds
        )
        return Reply(
            title=f"You left {d.team.name}",
            private=True,
            text=f"You were its last member, so the team is disbanded.{back}",
        )
    text = (
        f"Your share of its pool, {usdc(d.share, demo=d.demo)}, is back in your balance."
        if d.share
        else "You had no share in its pool."
    )
    if d.new_captain is not None:
        text += f" {d.new_captain.display_name}, the longest-standing member, is its captain now."
    return Reply(title=f"You left {d.team.name}", text=text, private=True)


async def team_kick(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Captain: remove a member from the team; they take their share of the pool with them."""
    team, target, share = await teams.kick(ctx.app, ctx.actor, args["player"])
    took = f" and took their share of the pool, {usdc(share)}" if share else ""
    return Reply(
        title=f"{target.display_name} removed",
        private=True,
        text=f"{target.display_name} is no longer in {team.name}{took}.",
    )


async def team_captain(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Captain: hand the captaincy to another member."""
    team, target = await teams.make_captain(ctx.app, ctx.actor, args["player"])
    return Reply(
        title="New captain",
        private=True,
        text=f"{target.display_name} is the captain of {team.name} now.",
    )


async def team_info(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Your team: members, contributions, the pool, settings, chats and the latest team chat."""
    i = await teams.info(ctx.app, ctx.actor, args.get("team"))
    t = i.team
    lines = ["Members (longest-standing first):"]
    for m in i.members:
        mark = " (captain)" if m.player_id == t.captain_player_id else ""
        lines.append(
            f"  {m.display_name}{mark}: contributed {usdc(m.contributed, demo=i.demo)}, "
            f"joined {m.joined_at.astimezone(UTC):%Y-%m-%d}"
        )
    fields = [
        Field("Pool", usdc(i.pool, demo=i.demo)),
        Field("Members", f"{len(i.members)}/{ctx.app.settings.TEAM_MAX_MEMBERS}"),
        Field("Captain", i.captain_name),
        Field("Prize split", t.split_mode),
        Field(
            "Who spends the pool", "every member" if t.spend_mode == "members" else "the captain"
        ),
        Field("Joining", "private: invite code only" if t.private else "public: by name or code"),
    ]
    if i.is_member:
        discord = i.chats.get("discord")
        telegram = i.chats.get("telegram")
        fields.append(
            Field(
                "Discord",
                (f"<#{discord.chat_id}>" if discord.kind == "channel" else "private thread")
                if discord
                else "no channel yet",
            )
        )
        fields.append(
            Field(
                "Telegram", "group linked" if telegram else "no group (captain: /team link in one)"
            )
        )
    if i.recent:
        lines.append("Latest team chat:")
        lines += [
            f"  {c.at.astimezone(UTC):%m-%d %H:%M} {c.author} ({c.origin}): {c.body[:300]}"
            for c in i.recent
        ]
    return Reply(
        title=f"Team {t.name}",
        fields=tuple(fields),
        lines=tuple(lines),
        private=True,
        footer=f"Invite code: {t.invite_code}" if i.is_captain else None,
    )


async def team_fund(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Put money from your balance into your team's pool (recorded as your contribution)."""
    f = await teams.fund(ctx.app, ctx.actor, args["amount"])
    return Reply(
        title="Team pool funded",
        tone="success",
        private=True,
        text=f"You put {usdc(f.amount, demo=f.demo)} into the pool of {f.team.name}.",
        fields=(
            Field("Pool", usdc(f.pool, demo=f.demo)),
            Field("Your contributions", usdc(f.contributed, demo=f.demo)),
        ),
    )


async def team_attempt(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Send a message to the guardian paid from your team's pool; you confirm the exact fee first."""
    quote = await attempts.quote_team_attempt(ctx.app, ctx.actor, args["message"])
    bind(round_id=quote.bounty_id, team_id=quote.team_id)
    team = await teams.info(ctx.app, ctx.actor)
    return quote_reply(quote, team.team.name)


async def team_split(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Captain: split a prize in proportion to contributions (the default) or equally."""
    team = await teams.set_split(ctx.app, ctx.actor, args["mode"])
    how = (
        "equally among the members"
        if team.split_mode == "equal"
        else "in proportion to contributions"
    )
    return Reply(
        title="Prize split set", private=True, text=f"A prize {team.name} wins is split {how}."
    )


async def team_spend(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Captain: choose who may spend the pool on team attempts (members or captain)."""
    team = await teams.set_spend(ctx.app, ctx.actor, args["who"])
    who = "every member" if team.spend_mode == "members" else "only the captain"
    return Reply(
        title="Pool spending set", private=True, text=f"In {team.name}, {who} may spend the pool."
    )


async def team_code(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Captain: show the team's invite code, or rotate it (the old code stops working)."""
    rotate = args.get("action") == "rotate"
    team = await teams.invite_code(ctx.app, ctx.actor, rotate)
    text = (
        "A new invite code; the old one no longer works:"
        if rotate
        else "Give this code to the players you want in the team (/team code rotate makes a new one):"
    )
    return Reply(
        title=f"Invite code of {team.name}", text=text, code=team.invite_code, private=True
    )


async def team_disband(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Captain: end the team; what is left in the pool goes back to the members by contribution."""
    i = await teams.info(ctx.app, ctx.actor)
    if not i.is_captain:
        raise teams_not_captain(i.team.name)
    return _disband_question(ctx.app, ctx.actor, i)


def _disband_text(i: teams.TeamInfo) -> str:
    if len(i.members) > 1:
        return (
            f"The {len(i.members)} members leave the team and the pool of {usdc(i.pool, demo=i.demo)} "
            "is shared back among them in proportion to their contributions."
        )
    return f"You leave the team and the pool of {usdc(i.pool, demo=i.demo)} comes back to you."


def _disband_question(app, actor: Actor, i: teams.TeamInfo, title: str | None = None) -> Reply:
    """The question, bound to its words: a press disbands only a team that still reads this way
    (the same members and pool), from the captain it was shown to, before it expires."""
    text = _disband_text(i)
    expires_at = app.clock() + QUESTION_TTL
    return Reply(
        title=title or f"Disband {i.team.name}?",
        tone="danger",
        private=True,
        text=text,
        confirm=Confirm(
            token=question_token(actor, DISBAND, str(i.team.id), expires_at, text),
            prompt=f"Disband {i.team.name} for good?",
            accept_label="Disband",
            cancel_label="Keep the team",
            expires_at=expires_at,
        ),
    )


def teams_not_captain(name: str) -> Exception:

    return NotPermitted(f"Only the captain of {name} can do that.")


async def team_link(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Captain, in your team's Telegram group (with me as admin): link it; in a private chat: get an invite link."""
    team = await teams.request_link(ctx.app, ctx.actor)
    if ctx.actor.private_chat:
        return Reply(
            title="Invite link on its way",
            private=True,
            text=f"I am sending you a single-use invite link to {team.name}'s group.",
        )
    return Reply(
        title=f"Linking this group to {team.name}",
        text="Checking my administrator rights here; I will say in a moment whether the group is linked.",
    )


async def team_chat(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Write to your team's chats (its Discord channel and Telegram group) from anywhere."""
    team, where = await teams.post_chat(ctx.app, ctx.actor, args["text"])
    shown = " and ".join(p.capitalize() for p in where) or "nowhere yet (no team channel or group)"
    return Reply(
        title=f"Sent to {team.name}",
        text=f"Shown on {shown}; /team info shows the latest team chat.",
        private=True,
    )


COMMANDS: list[Command] = [
    command(
        "team create",
        team_create,
        Arg(
            "name",
            "text",
            "the team's name, 3-32 letters or digits; add the word private at the end for code-only",
            max_length=60,
        ),
        refuses_banned=True,
        private=True,
    ),
    command(
        "team join",
        team_join,
        Arg("code", "text", TEAM_REF, max_length=60),
        refuses_banned=True,
        private=True,
    ),
    command(
        "team invite",
        team_invite,
        Arg("player", "player", "the player to invite"),
        refuses_banned=True,
        private=True,
    ),
    command(
        "team accept",
        team_accept,
        Arg("team", "text", "which team, if several invited you", required=False, max_length=60),
        refuses_banned=True,
        private=True,
        preview=previews.team_accept,
    ),
    command(
        "team leave", team_leave, refuses_banned=True, private=True, preview=previews.team_leave
    ),
    command(
        "team kick",
        team_kick,
        Arg("player", "player", "the member to remove"),
        refuses_banned=True,
        private=True,
    ),
    command(
        "team captain",
        team_captain,
        Arg("player", "player", "the member who becomes captain"),
        refuses_banned=True,
        private=True,
    ),
    command(
        "team info",
        team_info,
        Arg("team", "text", "a public team's name (default: yours)", required=False, max_length=60),
        private=True,
    ),
    command(
        "team fund",
        team_fund,
        Arg("amount", "amount", "how much of your balance goes into the pool, in USDC"),
        refuses_banned=True,
        private=True,
        effect="money",
    ),
    command(
        "team attempt",
        team_attempt,
        Arg("message", "text", "what you say to the guardian", max_length=4_000),
        refuses_banned=True,
        private=True,
        slow=True,
        effect="money",
        confirms=True,
    ),
    command(
        "team split",
        team_split,
        Arg("mode", "choice", "how a prize is split", choices=("proportional", "equal")),
        refuses_banned=True,
        private=True,
    ),
    command(
        "team spend",
        team_spend,
        Arg("who", "choice", "who may spend the pool", choices=("members", "captain")),
        refuses_banned=True,
        private=True,
    ),
    command(
        "team code",
        team_code,
        Arg(
            "action", "choice", "show it, or rotate it", required=False, choices=("show", "rotate")
        ),
        refuses_banned=True,
        private=True,
        preview=previews.team_code,
    ),
    # slow: answered after a deferral, like /attempt. (A private first answer carrying buttons makes
    # discord.py keep a 15-minute timer for the view, which outlives a bot that stops sooner.)
    command(
        "team disband",
        team_disband,
        refuses_banned=True,
        private=True,
        slow=True,
        effect="money",
        confirms=True,
    ),
    command("team link", team_link, refuses_banned=True, preview=previews.team_link),
    command(
        "team chat",
        team_chat,
        Arg("text", "text", "what to tell your team", max_length=2_000),
        refuses_banned=True,
        private=True,
    ),
]


async def _confirm_team_attempt(app, actor: Actor, quote_id: str, accept: bool) -> Reply:
    if not accept:
        await attempts.cancel_quote(app, actor, quote_id)
        return Reply(title="Cancelled", text="Nothing was charged.", private=True)

    await require_not_banned(app, actor)
    team = await teams.info(app, actor)
    return await confirmed(app, actor, quote_id, team_name=team.team.name)


async def _confirm_disband(app, actor: Actor, ref: str, accept: bool) -> Reply:
    press = pressed(app, actor, DISBAND, ref, again="send /team disband again.")
    if not accept:
        return Reply(title="Kept", text="The team stays as it is.", private=True)

    await require_not_banned(app, actor)
    i = await teams.info(app, actor)
    if str(i.team.id) != press.ref or not i.is_captain:
        raise teams_not_captain(i.team.name)
    if not press.still_reads(actor, _disband_text(i)):
        return _disband_question(app, actor, i, "The team changed since you were asked")
    d = await teams.disband(app, actor)
    shares = (
        ", ".join(f"{p.display_name} {usdc(a, demo=i.demo)}" for p, a in d.refunds)
        or "the pool was empty"
    )
    return Reply(
        title=f"{d.team.name} is disbanded",
        text=f"The pool went back to the members: {shares}.",
        private=True,
    )


CONFIRMATIONS = {"teamattempt": _confirm_team_attempt, DISBAND: _confirm_disband}
