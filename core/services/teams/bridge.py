"""Team chat and its bridge: a message written in a team's Discord channel, its Telegram group or
with /team chat is stored once as a team message, then shown on every other chat of that team.

The mapping between a team message and its copies on each platform (the original and the bot's
relays) lives here, so an edit or a reply that arrives after a restart still finds its message. A
relay is an outbox row per platform: a platform that is down delays it, and a copy that exists is
never posted again. Team chat is a table of its own that nothing on the attempt path reads: it never
reaches the guardian, and a message only ever goes to the chats of its own team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.actors import Actor
from core.db import Conn, UniqueViolation
from core.errors import InvalidArgument
from core.services import outbox
from core.services.players import resolve_player
from core.services.teams.common import OUTBOX_TTL, RELAY, TeamRow, linked_chats, my_team

if TYPE_CHECKING:
    from core.app import App

MAX_BODY = 4_000
PLATFORM_LABEL = {"discord": "Discord", "telegram": "Telegram", "console": "console"}


def clean_body(body: str | None) -> str:
    return (body or "").replace("\x00", "").strip()[:MAX_BODY]


async def _author_player(conn: Conn, platform: str, external_id: str) -> int | None:
    return (
        await conn.execute(
            "SELECT player_id FROM player_identities WHERE platform = :p AND external_id = :e",
            {"p": platform, "e": external_id},
        )
    ).scalar_one_or_none()


async def _relay(
    conn: Conn, team_id: int, message_id: int, version: int, skip: str | None
) -> list[str]:
    """Queue the message (at ``version``) for every chat of its team except the one it came from."""
    chats = await linked_chats(conn, team_id)
    queued = []
    for platform in sorted(chats):
        if platform == skip:
            continue
        await outbox.put(
            conn,
            RELAY,
            platform,
            {"message_id": message_id, "version": version},
            key=f"{RELAY}:{message_id}:{platform}:{version}",
            ttl=OUTBOX_TTL,
        )
        queued.append(platform)
    return queued


async def record_message(
    app: App,
    platform: str,
    chat_id: str,
    platform_message_id: str,
    author: Actor,
    body: str,
    *,
    reply_to: str | None = None,
) -> int | None:
    """A message seen in a team chat. Returns its team message id; None when the chat is no team's,
    the message is empty, or it was recorded already (a redelivered event)."""
    body = clean_body(body)
    if not body:
        return None
    try:
        async with app.uow() as uow:
            conn = uow.conn
            team_id = (
                await conn.execute(
                    "SELECT team_id FROM team_chats WHERE platform = :p AND chat_id = :c AND unlinked_at IS NULL",
                    {"p": platform, "c": str(chat_id)},
                )
            ).scalar_one_or_none()
            if team_id is None:
                return None
            seen = (
                await conn.execute(
                    (
                        "SELECT message_id FROM team_message_copies WHERE platform = :p AND chat_id = :c "
                        "AND platform_message_id = :m"
                    ),
                    {"p": platform, "c": str(chat_id), "m": str(platform_message_id)},
                )
            ).first()
            if seen is not None:
                return None
            reply_id = None
            if reply_to is not None:
                reply_id = (
                    await conn.execute(
                        (
                            "SELECT c.message_id FROM team_message_copies c JOIN team_messages m ON m.id = c.message_id "
                            "WHERE c.platform = :p AND c.chat_id = :c AND c.platform_message_id = :m AND m.team_id = :t"
                        ),
                        {"p": platform, "c": str(chat_id), "m": str(reply_to), "t": team_id},
                    )
                ).scalar_one_or_none()
            message_id = await _insert(conn, team_id, platform, author, body, reply_id)
            await conn.execute(
                (
                    "INSERT INTO team_message_copies (message_id, platform, chat_id, platform_message_id, origin) "
                    "VALUES (:id, :p, :c, :m, true)"
                ),
                {"id": message_id, "p": platform, "c": str(chat_id), "m": str(platform_message_id)},
            )
            await _relay(conn, team_id, message_id, 1, platform)
            return message_id
    except UniqueViolation:
        return None  # the same platform message recorded by another process at the same moment


async def _insert(
    conn: Conn, team_id: int, platform: str, author: Actor, body: str, reply_id: int | None
) -> int:
    return (
        await conn.execute(
            (
                "INSERT INTO team_messages (team_id, platform, author_external_id, author_name, author_player_id, "
                "body, reply_to_id) VALUES (:t, :p, :e, :n, :pl, :b, :r) RETURNING id"
            ),
            {
                "t": team_id,
                "p": platform,
                "e": author.external_id,
                "n": " ".join(author.display_name.split())[:64] or author.external_id,
                "pl": await _author_player(conn, author.platform, author.external_id),
                "b": body,
                "r": reply_id,
            },
        )
    ).scalar_one()


async def record_edit(
    app: App, platform: str, chat_id: str, platform_message_id: str, body: str
) -> bool:
    """An original message was edited where it was written: the relayed copies follow."""
    body = clean_body(body)
    async with app.uow() as uow:
        conn = uow.conn
        row = (
            await conn.execute(
                (
                    "SELECT m.id, m.team_id, m.body, m.version FROM team_message_copies c "
                    "JOIN team_messages m ON m.id = c.message_id WHERE c.platform = :p AND c.chat_id = :c "
                    "AND c.platform_message_id = :m AND c.origin FOR UPDATE OF m"
                ),
                {"p": platform, "c": str(chat_id), "m": str(platform_message_id)},
            )
        ).first()
        if row is None or not body or body == row.body:
            return False  # not a team message, or nothing visible changed (Discord re-sends embeds)
        version = row.version + 1
        await conn.execute(
            "UPDATE team_messages SET body = :b, version = :v, edited_at = now() WHERE id = :id",
            {"b": body, "v": version, "id": row.id},
        )
        await conn.execute(
            "UPDATE team_message_copies SET version = :v WHERE message_id = :id AND origin",
            {"v": version, "id": row.id},
        )
        await _relay(conn, row.team_id, row.id, version, platform)
    return True


async def post_chat(app: App, actor: Actor, body: str) -> tuple[TeamRow, list[str]]:
    """/team chat: a member without a team channel (the console) writes to the team's chats."""
    body = clean_body(body)
    if not body:
        raise InvalidArgument("Write something to send to your team.")
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player)
        message_id = await _insert(conn, team.id, actor.platform, actor, body, None)
        return team, await _relay(conn, team.id, message_id, 1, None)


@dataclass(frozen=True)
class RelayView:
    """A team message as one platform's bot must show it."""

    message_id: int
    team_id: int
    author_name: str
    origin: str  # the platform it was written on
    body: str
    version: int
    created_at: datetime
    chat: Any  # the team's chat row on the target platform (None: nowhere to show it)
    copy_id: str | None  # the bot's copy there, if already posted
    copy_version: int
    reply_copy_id: str | None  # the copy there of the message this one answers
    reply_author: str | None
    reply_body: str | None

    @property
    def label(self) -> str:
        return PLATFORM_LABEL.get(self.origin, self.origin)


async def relay_view(app: App, message_id: int, platform: str) -> RelayView | None:
    async with app.uow() as uow:
        conn = uow.conn
        m = (
            await conn.execute(
                (
                    "SELECT m.*, r.author_name AS r_author, r.body AS r_body, "
                    "(SELECT platform_message_id FROM team_message_copies WHERE message_id = m.reply_to_id "
                    "  AND platform = :p) AS r_copy FROM team_messages m LEFT JOIN team_messages r "
                    "ON r.id = m.reply_to_id WHERE m.id = :id"
                ),
                {"id": message_id, "p": platform},
            )
        ).first()
        if m is None:
            return None
        chat = (await linked_chats(conn, m.team_id)).get(platform)
        copy = (
            await conn.execute(
                (
                    "SELECT platform_message_id, version FROM team_message_copies WHERE message_id = :id "
                    "AND platform = :p"
                ),
                {"id": message_id, "p": platform},
            )
        ).first()
    return RelayView(
        message_id=m.id,
        team_id=m.team_id,
        author_name=m.author_name,
        origin=m.platform,
        body=m.body,
        version=m.version,
        created_at=m.created_at,
        chat=chat,
        copy_id=copy.platform_message_id if copy else None,
        copy_version=copy.version if copy else 0,
        reply_copy_id=m.r_copy,
        reply_author=m.r_author,
        reply_body=m.r_body,
    )


async def record_copy(
    app: App, message_id: int, platform: str, chat_id: str, platform_message_id: str, version: int
) -> None:
    """The bot posted (or edited) its copy of a team message on ``platform``."""
    async with app.uow() as uow:
        await uow.conn.execute(
            (
                "INSERT INTO team_message_copies (message_id, platform, chat_id, platform_message_id, origin, version) "
                "VALUES (:id, :p, :c, :m, false, :v) ON CONFLICT (message_id, platform) DO UPDATE "
                "SET version = GREATEST(team_message_copies.version, EXCLUDED.version)"
            ),
            {
                "id": message_id,
                "p": platform,
                "c": str(chat_id),
                "m": str(platform_message_id),
                "v": version,
            },
        )


@dataclass(frozen=True)
class ChatLine:
    author: str
    origin: str
    body: str
    at: datetime


async def recent_messages(conn: Conn, team_id: int, limit: int = 10) -> list[ChatLine]:
    rows = (
        await conn.execute(
            (
                "SELECT author_name, platform, body, created_at FROM team_messages WHERE team_id = :t "
                "ORDER BY id DESC LIMIT :n"
            ),
            {"t": team_id, "n": limit},
        )
    ).all()
    return [
        ChatLine(r.author_name, PLATFORM_LABEL.get(r.platform, r.platform), r.body, r.created_at)
        for r in reversed(rows)
    ]


def payload_message_id(payload: dict[str, Any]) -> int:
    return int(payload["message_id"])
