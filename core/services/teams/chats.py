"""A team's chats on the platforms, as the bots need them: who should be able to read a team's
Discord channel, which Telegram group a team linked, and whether someone may join it. The bots do
the platform work (channels, overwrites, invite links, removals) and report back here."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.actors import Actor
from core.db import Conn, UniqueViolation, locks
from core.db.locks import Lock
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.services import notices
from core.services.players import resolve_player
from core.services.teams.common import TeamRow, my_team, require_captain, team_by_id, tell_platforms

if TYPE_CHECKING:
    from core.app import App


@dataclass(frozen=True)
class ChatRow:
    id: int
    team_id: int
    platform: str
    chat_id: str
    kind: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class ChatState:
    """What a team's chat on one platform should look like now."""

    team: TeamRow
    member_accounts: tuple[str, ...]  # the members' account ids on this platform
    captain_accounts: tuple[str, ...]
    chat: ChatRow | None  # linked now
    last_chat: ChatRow | None = (
        None  # the latest one, linked or not (what to archive after a disband)
    )
    names: dict[str, str] = field(default_factory=dict)  # account id -> display name


def _chat(row: Any) -> ChatRow | None:
    if row is None:
        return None
    return ChatRow(row.id, row.team_id, row.platform, row.chat_id, row.kind, dict(row.meta or {}))


async def _state(conn: Conn, team: TeamRow, platform: str) -> ChatState:
    rows = (
        await conn.execute(
            (
                "SELECT i.external_id, m.player_id, p.display_name FROM team_members m "
                "JOIN player_identities i ON i.player_id = m.player_id AND i.platform = :pl "
                "JOIN players p ON p.id = m.player_id "
                "WHERE m.team_id = :t AND m.left_at IS NULL ORDER BY m.joined_at, m.id, i.id"
            ),
            {"t": team.id, "pl": platform},
        )
    ).all()
    chats = (
        await conn.execute(
            (
                "SELECT id, team_id, platform, chat_id, kind, meta, unlinked_at FROM team_chats "
                "WHERE team_id = :t AND platform = :pl ORDER BY id DESC"
            ),
            {"t": team.id, "pl": platform},
        )
    ).all()
    linked = next((c for c in chats if c.unlinked_at is None), None)
    return ChatState(
        team=team,
        member_accounts=tuple(r.external_id for r in rows),
        captain_accounts=tuple(
            r.external_id for r in rows if r.player_id == team.captain_player_id
        ),
        chat=_chat(linked),
        last_chat=_chat(chats[0]) if chats else None,
        names={r.external_id: r.display_name for r in rows},
    )


async def chat_state(app: App, team_id: int, platform: str) -> ChatState:
    async with app.uow() as uow:
        team = await team_by_id(uow.conn, team_id)
        return await _state(uow.conn, team, platform)


async def active_chat_states(app: App, platform: str) -> list[ChatState]:
    """Every live team's desired state on ``platform`` (the Discord bot's periodic check)."""
    async with app.uow() as uow:
        ids = (
            (await uow.conn.execute("SELECT id FROM teams WHERE disbanded_at IS NULL ORDER BY id"))
            .scalars()
            .all()
        )
        return [await _state(uow.conn, await team_by_id(uow.conn, i), platform) for i in ids]


async def record_chat(
    app: App,
    team_id: int,
    platform: str,
    chat_id: str,
    kind: str,
    meta: dict[str, Any] | None = None,
) -> ChatRow:
    """The bot made (or found) the team's chat: it replaces whatever was linked before."""
    async with app.uow() as uow:
        conn = uow.conn
        await conn.execute(
            (
                "UPDATE team_chats SET unlinked_at = now() WHERE team_id = :t AND platform = :p "
                "AND unlinked_at IS NULL AND chat_id <> :c"
            ),
            {"t": team_id, "p": platform, "c": chat_id},
        )
        row = (
            await conn.execute(
                (
                    "SELECT id, team_id, platform, chat_id, kind, meta FROM team_chats WHERE team_id = :t "
                    "AND platform = :p AND chat_id = :c AND unlinked_at IS NULL"
                ),
                {"t": team_id, "p": platform, "c": chat_id},
            )
        ).first()
        if row is not None:
            return _chat(row)  # type: ignore[return-value]
        row = (
            await conn.execute(
                (
                    "INSERT INTO team_chats (team_id, platform, chat_id, kind, meta) VALUES (:t, :p, :c, :k, :m) "
                    "RETURNING id, team_id, platform, chat_id, kind, meta"
                ),
                {"t": team_id, "p": platform, "c": chat_id, "k": kind, "m": meta or {}},
            )
        ).one()
        return _chat(row)  # type: ignore[return-value]


async def update_chat_meta(app: App, chat_row_id: int, meta: dict[str, Any]) -> None:
    async with app.uow() as uow:
        await uow.conn.execute(
            "UPDATE team_chats SET meta = meta || CAST(:m AS jsonb) WHERE id = :id",
            {"m": meta, "id": chat_row_id},
        )


async def unlink_chat(app: App, chat_row_id: int) -> None:
    async with app.uow() as uow:
        await uow.conn.execute(
            "UPDATE team_chats SET unlinked_at = now() WHERE id = :id AND unlinked_at IS NULL",
            {"id": chat_row_id},
        )


async def tell_captain(app: App, team_id: int, platform: str, problem: str) -> None:
    """The bot cannot do its part on a platform (missing rights): the captain hears it once."""
    digest = hashlib.sha256(problem.encode()).hexdigest()[:16]
    async with app.uow() as uow:
        team = await team_by_id(uow.conn, team_id)
        await notices.notify(
            uow.conn,
            team.captain_player_id,
            f"Team {team.name}: the {platform} chat needs attention",
            problem,
            key=f"team-chat-problem:{team_id}:{platform}:{digest}",
            tone="warning",
        )


async def team_for_chat(app: App, platform: str, chat_id: str) -> int | None:
    async with app.uow() as uow:
        return (
            await uow.conn.execute(
                "SELECT team_id FROM team_chats WHERE platform = :p AND chat_id = :c AND unlinked_at IS NULL",
                {"p": platform, "c": str(chat_id)},
            )
        ).scalar_one_or_none()


async def may_join_chat(
    app: App, platform: str, chat_id: str, external_id: str
) -> tuple[int | None, bool]:
    """(the team linked to the chat, whether this account belongs to one of its members)."""
    async with app.uow() as uow:
        row = (
            await uow.conn.execute(
                (
                    "SELECT c.team_id, EXISTS (SELECT 1 FROM team_members m JOIN player_identities i "
                    "  ON i.player_id = m.player_id WHERE m.team_id = c.team_id AND m.left_at IS NULL "
                    "  AND i.platform = :p AND i.external_id = :e) AS member "
                    "FROM team_chats c WHERE c.platform = :p AND c.chat_id = :c AND c.unlinked_at IS NULL"
                ),
                {"p": platform, "c": str(chat_id), "e": str(external_id)},
            )
        ).first()
    return (None, False) if row is None else (row.team_id, bool(row.member))


# --- Telegram groups: /team link --------------------------------------------------------------


async def request_link(app: App, actor: Actor) -> TeamRow:
    """/team link in a Telegram group: the captain asks; the bot checks its rights there, then links."""
    if actor.platform != "telegram":
        raise InvalidArgument(
            "/team link links a Telegram group: add the bot to your group as an administrator and send "
            "/team link there. On Discord the bot makes your team's private channel by itself."
        )
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player, lock=True)
        if actor.private_chat or actor.chat_id is None:
            # In the private chat, a member asks for a fresh invite link to the team's group.
            linked = (
                await conn.execute(
                    "SELECT 1 FROM team_chats WHERE team_id = :t AND platform = 'telegram' AND unlinked_at IS NULL",
                    {"t": team.id},
                )
            ).first()
            if linked is None:
                raise NotFound(
                    f"{team.name} has no Telegram group yet: the captain adds me to one as an "
                    "administrator and sends /team link there."
                )
            await tell_platforms(
                conn, team.id, "invite", players=(player.id,), platforms=("telegram",)
            )
            return team
        require_captain(team, player)
        owner = (
            await conn.execute(
                (
                    "SELECT c.team_id, t.name FROM team_chats c JOIN teams t ON t.id = c.team_id "
                    "WHERE c.platform = 'telegram' AND c.chat_id = :c AND c.unlinked_at IS NULL"
                ),
                {"c": actor.chat_id},
            )
        ).first()
        if owner is not None:
            which = "your team" if owner.team_id == team.id else f"team {owner.name}"
            raise NotPermitted(f"This group is already linked to {which}.")
        await tell_platforms(
            conn,
            team.id,
            "link",
            players=(player.id,),
            platforms=("telegram",),
            extra={"chat_id": actor.chat_id, "by": actor.external_id},
        )
    return team


async def link_checked(app: App, team_id: int, chat_id: str, by_player: int) -> TeamRow:
    """The Telegram bot found its rights in the group sufficient: link it (replacing an older group),
    and have the bot send the members their invite links."""
    async with app.uow() as uow:
        conn = uow.conn
        team = await team_by_id(conn, team_id, lock=True)
        if not team.active:
            raise NotFound(f"{team.name} was disbanded.")
        if team.captain_player_id != by_player:
            raise NotPermitted(f"Only the captain of {team.name} links its group.")
        await conn.execute(
            (
                "UPDATE team_chats SET unlinked_at = now() WHERE team_id = :t AND platform = 'telegram' "
                "AND unlinked_at IS NULL"
            ),
            {"t": team.id},
        )
        try:
            await conn.execute(
                "INSERT INTO team_chats (team_id, platform, chat_id, kind) VALUES (:t, 'telegram', :c, 'group')",
                {"t": team.id, "c": str(chat_id)},
            )
        except UniqueViolation:
            raise NotPermitted("This group was linked to another team meanwhile.") from None
        ids = (
            (
                await conn.execute(
                    "SELECT player_id FROM team_members WHERE team_id = :t AND left_at IS NULL",
                    {"t": team.id},
                )
            )
            .scalars()
            .all()
        )
        await tell_platforms(conn, team.id, "linked", players=tuple(ids), platforms=("telegram",))
        return team


async def request_sync(app: App, team_ids: list[int], platform: str, reason: str) -> None:
    """A bot saw its team chat drift from what it should be (deleted, edited by hand): fix it."""
    async with app.uow() as uow:
        for team_id in team_ids:
            await tell_platforms(
                uow.conn, team_id, "repair", platforms=(platform,), extra={"reason": reason}
            )


@asynccontextmanager
async def chat_lock(app: App, team_id: int | None) -> AsyncIterator[None]:
    """Held while a bot reshapes a team's chat (``team_id``), or places new channels (None), so two
    bot processes never make two channels for one team nor overfill one category."""
    if team_id is None:
        held = locks.session(app.db, Lock.TEAM_CHANNEL_PLACEMENT)
    else:
        held = locks.session(app.db, Lock.TEAM_CHAT, team_id)
    async with held:
        yield
