"""What every part of the teams feature shares: the team row, finding and locking a team, the
rules for names and invite codes, and the outbox rows that tell the bots what changed."""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.db import Conn
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.services import outbox
from core.services.players import PlayerRef

MIN_NAME, MAX_NAME = 3, 32
# Letters and digits of any script, spaces, and - . ' inside: nothing a platform reads as markup,
# a mention (@, <@…>, #channel), a link or a command.
_NAME = re.compile(r"^[^\W_](?:[^\W_]|[ .'-])*$")
CODE_ALPHABET = (
    "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed without doubt
)
CODE_LENGTH = 8

SYNC = "team_sync"  # outbox topic: a team changed, its chats on a platform follow
RELAY = "relay"  # outbox topic: a team message to show on a platform
CHAT_PLATFORMS = ("discord", "telegram")
OUTBOX_TTL = timedelta(
    days=7
)  # past this a bot's periodic check (Discord) repairs from the state anyway


@dataclass(frozen=True)
class TeamRow:
    id: int
    name: str
    private: bool
    captain_player_id: int
    invite_code: str
    split_mode: str
    spend_mode: str
    created_at: datetime
    disbanded_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disbanded_at is None


_COLS = "id, name, private, captain_player_id, invite_code, split_mode, spend_mode, created_at, disbanded_at"


def team_from(row: Any) -> TeamRow:
    return TeamRow(*(row[c] for c in _COLS.split(", ")))


def clean_team_name(raw: str | None) -> str:
    """A team name as it will be shown, or InvalidArgument saying what is wrong with it."""
    name = " ".join(unicodedata.normalize("NFKC", raw or "").split())
    if not name:
        raise InvalidArgument(
            "The team name is empty: give it a name of 3 to 32 letters or digits."
        )
    if len(name) < MIN_NAME or len(name) > MAX_NAME:
        raise InvalidArgument(
            f"A team name has {MIN_NAME} to {MAX_NAME} characters; {name[:40]!r} has {len(name)}."
        )
    if not _NAME.match(name):
        raise InvalidArgument(
            "A team name may use letters, digits, spaces and - . ' only (no @, #, <, >, *, _, ` or links)."
        )
    return name


def name_key(name: str) -> str:
    """Names compare without case and width: "Vault Busters" and "vault  busters" are one name."""
    return unicodedata.normalize("NFKC", " ".join(name.split())).casefold()


def new_invite_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str:
    return re.sub(r"[\s-]", "", raw).upper()


async def team_by_id(conn: Conn, team_id: int, *, lock: bool | str = False) -> TeamRow:
    """The team; ``lock``: True holds it for a change (membership, settings, disband), "share" for an
    operation that must see no change meanwhile (a contribution)."""
    suffix = {True: " FOR UPDATE", "share": " FOR SHARE"}.get(lock, "")
    row = (
        await conn.execute(f"SELECT {_COLS} FROM teams WHERE id = :id{suffix}", {"id": team_id})
    ).first()
    if row is None:
        raise NotFound(f"No team #{team_id}.")
    return team_from(row)


async def current_team_id(conn: Conn, player_id: int) -> int | None:
    return (
        await conn.execute(
            "SELECT team_id FROM team_members WHERE player_id = :p AND left_at IS NULL",
            {"p": player_id},
        )
    ).scalar_one_or_none()


async def my_team(conn: Conn, player: PlayerRef, *, lock: bool | str = False) -> TeamRow:
    """The caller's team (locked as ``team_by_id`` says), or NotFound telling them how to get one."""
    team_id = await current_team_id(conn, player.id)
    if team_id is None:
        raise NotFound(
            "You are not in a team. /team create <name> starts one; /team join <code> joins one."
        )
    team = await team_by_id(conn, team_id, lock=lock)
    if lock and await current_team_id(conn, player.id) != team.id:
        raise NotFound("You are no longer in that team.")  # it changed while we waited for the lock
    if not team.active:
        raise NotFound(f"{team.name} was disbanded.")
    return team


def require_captain(team: TeamRow, player: PlayerRef) -> None:
    if team.captain_player_id != player.id:
        raise NotPermitted(f"Only the captain of {team.name} can do that.")


@dataclass(frozen=True)
class Member:
    player_id: int
    display_name: str
    joined_at: datetime
    contributed: int


async def members(conn: Conn, team_id: int) -> list[Member]:
    """Current members, longest-standing first (the order of captain hand-over and split ties)."""
    rows = (
        await conn.execute(
            (
                "SELECT m.player_id, p.display_name, m.joined_at, "
                "COALESCE((SELECT SUM(c.amount) FROM team_contributions c WHERE c.team_id = m.team_id "
                "  AND c.player_id = m.player_id), 0) AS contributed "
                "FROM team_members m JOIN players p ON p.id = m.player_id "
                "WHERE m.team_id = :t AND m.left_at IS NULL ORDER BY m.joined_at, m.id"
            ),
            {"t": team_id},
        )
    ).all()
    return [Member(r.player_id, r.display_name, r.joined_at, int(r.contributed)) for r in rows]


async def linked_chats(conn: Conn, team_id: int) -> dict[str, Any]:
    """platform -> its chat row, for the team's chats that are linked now."""
    rows = (
        await conn.execute(
            (
                "SELECT id, platform, chat_id, kind, meta, problem FROM team_chats "
                "WHERE team_id = :t AND unlinked_at IS NULL"
            ),
            {"t": team_id},
        )
    ).all()
    return {r.platform: r for r in rows}


async def tell_platforms(
    conn: Conn,
    team_id: int,
    event: str,
    *,
    players: tuple[int, ...] = (),
    platforms: tuple[str, ...] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Queue a team change for the bots, in the caller's transaction. Discord always follows (each
    team has a channel); Telegram only when the team has a group linked, or when told to."""
    chats = await linked_chats(conn, team_id)
    targets = (
        platforms
        if platforms is not None
        else tuple(p for p in CHAT_PLATFORMS if p == "discord" or p in chats)
    )
    ids = list(players)
    identities: dict[str, dict[str, list[str]]] = {}
    if ids:
        rows = (
            await conn.execute(
                "SELECT player_id, platform, external_id FROM player_identities WHERE player_id = ANY(:ids)",
                {"ids": ids},
            )
        ).all()
        for r in rows:
            identities.setdefault(r.platform, {}).setdefault(str(r.player_id), []).append(
                r.external_id
            )
    for platform in targets:
        payload: dict[str, Any] = {
            "team_id": team_id,
            "event": event,
            "players": ids,
            "accounts": identities.get(platform, {}),
            **(extra or {}),
        }
        await outbox.put(conn, SYNC, platform, payload, ttl=OUTBOX_TTL)
