"""Who is in a team: create, invite codes, invitations, join, accept, leave, kick, the captain,
disband, and the captain's settings. Every change locks the team row, so two changes to one team
(two joins racing for the last place, a leave and a kick) happen one after the other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.db import Conn, UniqueViolation
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.money import usdc
from core.services import notices
from core.services.meta import is_demo_install
from core.services.players import PlayerRef, find_player, hold, resolve_player
from core.services.teams.bridge import recent_messages
from core.services.teams.common import (
    TeamRow,
    clean_team_name,
    current_team_id,
    linked_chats,
    members,
    my_team,
    name_key,
    new_invite_code,
    normalize_code,
    require_captain,
    team_by_id,
    team_from,
    tell_platforms,
)
from core.services.teams.pool import no_pending_attempts, return_pool, share_out

if TYPE_CHECKING:
    from core.app import App

_COLS = "id, name, private, captain_player_id, invite_code, split_mode, spend_mode, created_at, disbanded_at"


async def create_team(app: App, actor: Actor, name: str, private: bool) -> TeamRow:
    """A new team with the caller as captain and only member; its pool starts empty."""
    clean = clean_team_name(name)
    async with app.uow() as uow:
        conn = uow.conn
        player = await hold(conn, await resolve_player(app, conn, actor))
        await _not_in_a_team(conn, player)
        row = (
            await conn.execute(
                (
                    "INSERT INTO teams (name, name_key, private, captain_player_id, invite_code) "
                    "VALUES (:n, :k, :p, :c, :code) ON CONFLICT (name_key) WHERE disbanded_at IS NULL DO NOTHING "
                    f"RETURNING {_COLS}"
                ),
                {
                    "n": clean,
                    "k": name_key(clean),
                    "p": private,
                    "c": player.id,
                    "code": new_invite_code(),
                },
            )
        ).first()
        if row is None:
            raise InvalidArgument(f"A team called {clean!r} exists already: pick another name.")
        team = team_from(row)
        await _insert_member(conn, team, player)
        await app.accounts.get(conn, ledger.TEAM_POOL, team.id)
        await tell_platforms(conn, team.id, "created", players=(player.id,))
    return team


async def _not_in_a_team(conn: Conn, player: PlayerRef, *, joining: TeamRow | None = None) -> None:
    team_id = await current_team_id(conn, player.id)
    if team_id is None:
        return
    team = await team_by_id(conn, team_id)
    if joining is not None and team.id == joining.id:
        raise InvalidArgument(f"You are already in {team.name}.")
    raise NotPermitted(
        f"You are in {team.name}: a player is in one team at a time. /team leave first."
    )


async def _insert_member(conn: Conn, team: TeamRow, player: PlayerRef) -> None:
    try:
        await conn.execute(
            "INSERT INTO team_members (team_id, player_id) VALUES (:t, :p)",
            {"t": team.id, "p": player.id},
        )
    except UniqueViolation:
        raise NotPermitted(
            "You joined another team meanwhile: a player is in one team at a time."
        ) from None


async def _add_member(app: App, conn: Conn, team_id: int, player: PlayerRef) -> TeamRow:
    player = await hold(
        conn, player
    )  # a concurrent /link sees the place, or the place goes to the joined player
    team = await team_by_id(conn, team_id, lock=True)
    if not team.active:
        raise NotFound(f"{team.name} was disbanded.")
    await _not_in_a_team(conn, player, joining=team)
    limit = app.settings.TEAM_MAX_MEMBERS
    if len(await members(conn, team.id)) >= limit:
        raise NotPermitted(f"{team.name} is full: a team has at most {limit} members.")
    await _insert_member(conn, team, player)
    await conn.execute(
        "UPDATE team_invitations SET status = 'accepted' WHERE team_id = :t AND player_id = :p AND status = 'open'",
        {"t": team.id, "p": player.id},
    )
    await tell_platforms(conn, team.id, "joined", players=(player.id,))
    return team


async def join_team(app: App, actor: Actor, reference: str) -> TeamRow:
    """Join by invite code, or a public team by its name."""
    ref = " ".join((reference or "").split())
    if not ref:
        raise InvalidArgument("Give the team's invite code (or a public team's name).")
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        row = (
            await conn.execute(
                f"SELECT {_COLS} FROM teams WHERE invite_code = :c AND disbanded_at IS NULL",
                {"c": normalize_code(ref)},
            )
        ).first()
        if row is None:
            row = (
                await conn.execute(
                    f"SELECT {_COLS} FROM teams WHERE name_key = :k AND disbanded_at IS NULL",
                    {"k": name_key(ref)},
                )
            ).first()
            if row is not None and row.private:
                raise NotPermitted(
                    f"{row.name} is private: join it with the invite code its captain gives you."
                )
        if row is None:
            raise NotFound(
                "No team has that invite code or name. A code stops working when the captain rotates it."
            )
        return await _add_member(app, conn, row.id, player)


@dataclass(frozen=True)
class Invitation:
    team: TeamRow
    invitee: PlayerRef
    expires_at: datetime


async def invite(app: App, actor: Actor, reference: str) -> Invitation:
    """Invite a player into the caller's team; they are told privately and accept within the expiry."""
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player, lock=True)
        invitee = await find_player(conn, reference)
        if invitee.id == player.id:
            raise InvalidArgument("You are in your team already.")
        other = await current_team_id(conn, invitee.id)
        if other == team.id:
            raise InvalidArgument(f"{invitee.display_name} is already in {team.name}.")
        if other is not None:
            raise NotPermitted(
                f"{invitee.display_name} is in another team; a player is in one team at a time."
            )
        limit = app.settings.TEAM_MAX_MEMBERS
        if len(await members(conn, team.id)) >= limit:
            raise NotPermitted(f"{team.name} is full: a team has at most {limit} members.")
        expires = now + timedelta(days=app.settings.TEAM_INVITATION_DAYS)
        row = (
            await conn.execute(
                (
                    "INSERT INTO team_invitations (team_id, player_id, invited_by, expires_at, created_at) "
                    "VALUES (:t, :p, :by, :e, :now) ON CONFLICT (team_id, player_id) WHERE status = 'open' "
                    "DO UPDATE SET expires_at = EXCLUDED.expires_at, invited_by = EXCLUDED.invited_by, "
                    "created_at = EXCLUDED.created_at RETURNING id"
                ),
                {"t": team.id, "p": invitee.id, "by": player.id, "e": expires, "now": now},
            )
        ).one()
        await notices.notify(
            conn,
            invitee.id,
            f"Invitation to team {team.name}",
            f"{player.display_name} invites you to join team {team.name}. Send /team accept to join "
            f"(until {expires:%Y-%m-%d %H:%M} UTC).",
            key=f"team-invite:{row.id}:{expires.isoformat()}",
        )
    return Invitation(team, invitee, expires)


async def accept(app: App, actor: Actor, team_name: str | None = None) -> TeamRow:
    """Accept an open invitation (the only one, or the one to ``team_name``)."""
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        rows = (
            await conn.execute(
                (
                    "SELECT i.id, i.team_id, i.expires_at, t.name, t.disbanded_at FROM team_invitations i "
                    "JOIN teams t ON t.id = i.team_id WHERE i.player_id = :p AND i.status = 'open' "
                    "ORDER BY i.created_at DESC"
                ),
                {"p": player.id},
            )
        ).all()
        if team_name:
            rows = [r for r in rows if name_key(r.name) == name_key(team_name)]
        live = [r for r in rows if r.expires_at > now and r.disbanded_at is None]
        if not live:
            if rows and all(r.disbanded_at is None for r in rows):
                raise NotFound(
                    f"Your invitation to {rows[0].name} expired on {rows[0].expires_at:%Y-%m-%d %H:%M} "
                    "UTC: ask for a new one."
                )
            which = f" to {team_name}" if team_name else ""
            raise NotFound(
                f"You have no open team invitation{which}. Invitations expire after "
                f"{app.settings.TEAM_INVITATION_DAYS} days."
            )
        if len(live) > 1:
            raise InvalidArgument(
                "You are invited to several teams: /team accept <team name> with one of "
                + ", ".join(r.name for r in live)
                + "."
            )
        return await _add_member(app, conn, live[0].team_id, player)


@dataclass(frozen=True)
class Departure:
    team: TeamRow
    new_captain: PlayerRef | None = None
    disbanded: bool = False
    refunds: tuple[tuple[PlayerRef, int], ...] = ()
    demo: bool = False  # a demo game's credits
    share: int = 0  # what the leaver took of the pool


async def leave(app: App, actor: Actor) -> Departure:
    """Leave the team with your share of its pool; a captain hands over to the longest-standing
    member, or disbands a team of one."""
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player, lock=True)
        current = await members(conn, team.id)
        others = [m for m in current if m.player_id != player.id]
        demo = await is_demo_install(conn)
        if not others:
            refunds = await _disband(app, conn, team, reason="its last member left")
            return Departure(team, disbanded=True, refunds=refunds, demo=demo)
        await no_pending_attempts(conn, team, "leave it")
        me = next(m for m in current if m.player_id == player.id)
        share = await share_out(app, conn, team, me, current)
        await _end_membership(conn, team, player.id, "left", app.clock())
        new_captain = None
        if team.captain_player_id == player.id:
            heir = others[0]
            new_captain = PlayerRef(heir.player_id, heir.display_name)
            await _set_captain(conn, team, new_captain)
            await notices.notify(
                conn,
                heir.player_id,
                f"You are the captain of {team.name}",
                f"{player.display_name} left the team and you have been in it longest.",
            )
        await tell_platforms(conn, team.id, "left", players=(player.id,))
    return Departure(team, new_captain, demo=demo, share=share)


async def _end_membership(
    conn: Conn, team: TeamRow, player_id: int, how: str, now: datetime
) -> None:
    await conn.execute(
        (
            "UPDATE team_members SET left_at = :now, left_how = :how WHERE team_id = :t AND player_id = :p "
            "AND left_at IS NULL"
        ),
        {"now": now, "how": how, "t": team.id, "p": player_id},
    )


async def _set_captain(conn: Conn, team: TeamRow, captain: PlayerRef) -> None:
    await conn.execute(
        "UPDATE teams SET captain_player_id = :c WHERE id = :t", {"c": captain.id, "t": team.id}
    )


async def _target_member(conn: Conn, team: TeamRow, reference: str, player: PlayerRef) -> PlayerRef:
    target = await find_player(conn, reference)
    if await current_team_id(conn, target.id) != team.id:
        raise NotFound(f"{target.display_name} is not in {team.name}.")
    if target.id == player.id:
        raise InvalidArgument("That is you.")
    return target


async def kick(app: App, actor: Actor, reference: str) -> tuple[TeamRow, PlayerRef, int]:
    """The captain removes a member, who takes their share of the pool with them."""
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player, lock=True)
        require_captain(team, player)
        target = await _target_member(conn, team, reference, player)
        await no_pending_attempts(conn, team, "kick")
        current = await members(conn, team.id)
        leaver = next(m for m in current if m.player_id == target.id)
        share = await share_out(app, conn, team, leaver, current)
        await _end_membership(conn, team, target.id, "kicked", app.clock())
        demo = await is_demo_install(conn)
        took = (
            f" Your share of its pool, {usdc(share, demo=demo)}, is in your balance."
            if share
            else ""
        )
        await notices.notify(
            conn,
            target.id,
            f"Removed from team {team.name}",
            f"The captain removed you from {team.name}.{took}",
        )
        await tell_platforms(conn, team.id, "kicked", players=(target.id,))
    return team, target, share


async def make_captain(app: App, actor: Actor, reference: str) -> tuple[TeamRow, PlayerRef]:
    """The captain hands the captaincy to another member."""
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player, lock=True)
        require_captain(team, player)
        target = await _target_member(conn, team, reference, player)
        await _set_captain(conn, team, target)
        await notices.notify(
            conn,
            target.id,
            f"You are the captain of {team.name}",
            f"{player.display_name} handed you the captaincy.",
        )
        await tell_platforms(conn, team.id, "captain", players=(target.id, player.id))
    return team, target


async def disband(app: App, actor: Actor) -> Departure:
    """The captain ends the team; what is left in its pool goes back to the members by contribution."""
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player, lock=True)
        require_captain(team, player)
        refunds = await _disband(app, conn, team, reason=f"{player.display_name} disbanded it")
        demo = await is_demo_install(conn)
    return Departure(team, disbanded=True, refunds=refunds, demo=demo)


async def _disband(
    app: App, conn: Conn, team: TeamRow, *, reason: str
) -> tuple[tuple[PlayerRef, int], ...]:
    current = await members(conn, team.id)
    refunds = await return_pool(app, conn, team, current)
    now = app.clock()
    await conn.execute(
        "UPDATE team_members SET left_at = :now, left_how = 'disbanded' WHERE team_id = :t AND left_at IS NULL",
        {"now": now, "t": team.id},
    )
    await conn.execute(
        "UPDATE teams SET disbanded_at = :now WHERE id = :t", {"now": now, "t": team.id}
    )
    await conn.execute(
        "UPDATE team_invitations SET status = 'cancelled' WHERE team_id = :t AND status = 'open'",
        {"t": team.id},
    )
    ids = tuple(m.player_id for m in current)
    # Telegram: the group is unlinked now (another team may link it); the bot says goodbye there.
    chat = (
        await conn.execute(
            (
                "UPDATE team_chats SET unlinked_at = :now WHERE team_id = :t AND platform = 'telegram' "
                "AND unlinked_at IS NULL RETURNING chat_id"
            ),
            {"now": now, "t": team.id},
        )
    ).first()
    await tell_platforms(conn, team.id, "disbanded", players=ids, platforms=("discord",))
    if chat is not None:
        await tell_platforms(
            conn,
            team.id,
            "disbanded",
            players=ids,
            platforms=("telegram",),
            extra={"chat_id": chat.chat_id, "reason": reason},
        )
    by_id = {ref.id: amount for ref, amount in refunds}
    demo = await is_demo_install(conn)
    for m in current:
        body = f"Team {team.name} was disbanded ({reason})."
        if by_id.get(m.player_id):
            body += (
                f" Your share of what was left in its pool, {usdc(by_id[m.player_id], demo=demo)}, "
                "is in your balance."
            )
        await notices.notify(
            conn, m.player_id, f"Team {team.name} disbanded", body, key=f"team-disband:{team.id}"
        )
    return refunds


async def set_split(app: App, actor: Actor, mode: str) -> TeamRow:
    """The captain chooses how a prize is split: proportional to contributions, or equal."""
    return await _set_mode(app, actor, "split_mode", mode, ("proportional", "equal"))


async def set_spend(app: App, actor: Actor, mode: str) -> TeamRow:
    """The captain chooses who may spend the pool on team attempts: every member, or the captain."""
    return await _set_mode(app, actor, "spend_mode", mode, ("members", "captain"))


async def _set_mode(
    app: App, actor: Actor, column: str, mode: str, allowed: tuple[str, ...]
) -> TeamRow:
    if mode not in allowed:
        raise InvalidArgument(f"Choose one of: {', '.join(allowed)}.")
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player, lock=True)
        require_captain(team, player)
        await conn.execute(
            f"UPDATE teams SET {column} = :m WHERE id = :t", {"m": mode, "t": team.id}
        )
        return await team_by_id(conn, team.id)


async def invite_code(app: App, actor: Actor, rotate: bool) -> TeamRow:
    """The captain's invite code; rotating it makes the old one stop working at once."""
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player, lock=rotate)
        require_captain(team, player)
        if rotate:
            await conn.execute(
                "UPDATE teams SET invite_code = :c WHERE id = :t",
                {"c": new_invite_code(), "t": team.id},
            )
            team = await team_by_id(conn, team.id)
        return team


@dataclass(frozen=True)
class TeamInfo:
    team: TeamRow
    members: tuple  # of common.Member, longest-standing first
    captain_name: str
    pool: int
    chats: dict
    recent: tuple  # team chat lines, for members only
    is_member: bool
    is_captain: bool
    demo: bool


async def info(app: App, actor: Actor, name: str | None = None) -> TeamInfo:
    """The caller's team, or a public team by name (no chat, no code, for those outside it)."""

    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        if name:
            row = (
                await conn.execute(
                    f"SELECT {_COLS} FROM teams WHERE name_key = :k AND disbanded_at IS NULL",
                    {"k": name_key(name)},
                )
            ).first()
            if row is None or (row.private and await current_team_id(conn, player.id) != row.id):
                raise NotFound(f"No public team called {' '.join(name.split())[:40]!r}.")
            team = team_from(row)
        else:
            team = await my_team(conn, player)
        current = await members(conn, team.id)
        is_member = any(m.player_id == player.id for m in current)
        pool = await ledger.balance(conn, await app.accounts.get(conn, ledger.TEAM_POOL, team.id))
        captain = next(
            (m.display_name for m in current if m.player_id == team.captain_player_id), "?"
        )
        return TeamInfo(
            team=team,
            members=tuple(current),
            captain_name=captain,
            pool=pool,
            chats=await linked_chats(conn, team.id) if is_member else {},
            recent=tuple(await recent_messages(conn, team.id)) if is_member else (),
            is_member=is_member,
            is_captain=team.captain_player_id == player.id,
            demo=await is_demo_install(conn),
        )
