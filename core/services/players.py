"""Players and their platform identities; the moderator right, decided in core; naming a player the
way each platform shows people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from core.actors import Actor
from core.db import Conn
from core.errors import NotFound, NotPermitted
from core.logs import bind
from core.services.privacy import bans
from core.settings import Settings

if TYPE_CHECKING:
    from core.app import App

MAX_NAME = 64
PLATFORMS = ("discord", "telegram", "console")
# A permanent ban ("until unbanned") is stored as this end, so every check stays one comparison.
PERMANENT = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class PlayerRef:
    id: int
    display_name: str


class StaleIdentity(Exception):
    """A cached (platform, external id) -> player entry is out of date (the identity was linked to,
    or unlinked from, another player by another process). Callers forget it and look again."""


def clean_name(name: str) -> str:
    name = " ".join(name.split())[:MAX_NAME]
    return name or "player"


_USERNAME = re.compile(r"^[A-Za-z0-9_.]{1,64}$")


def clean_username(username: str | None) -> str | None:
    """A platform username as stored and looked up: without "@", lower-case; None if unusable."""
    if not username:
        return None
    name = username.strip().lstrip("@").lower()
    return name if _USERNAME.match(name) else None


async def ensure_player(conn: Conn, actor: Actor) -> PlayerRef:
    """The player behind this platform account, created on first contact."""
    row = (
        await conn.execute(
            (
                "SELECT i.player_id, p.display_name FROM player_identities i "
                "JOIN players p ON p.id = i.player_id WHERE i.platform = :p AND i.external_id = :e"
            ),
            {"p": actor.platform, "e": actor.external_id},
        )
    ).first()
    if row is not None:
        return PlayerRef(row.player_id, row.display_name)
    name = clean_name(actor.display_name)
    player_id = (
        await conn.execute(
            "INSERT INTO players (display_name) VALUES (:n) RETURNING id", {"n": name}
        )
    ).scalar_one()
    username = clean_username(actor.username)
    inserted = (
        await conn.execute(
            (
                "INSERT INTO player_identities (player_id, platform, external_id, display_name, username, "
                "username_seen_at) VALUES (:pid, :p, :e, :n, :u, CASE WHEN CAST(:u AS text) IS NULL THEN NULL "
                "ELSE now() END) ON CONFLICT (platform, external_id) DO NOTHING RETURNING player_id"
            ),
            {
                "pid": player_id,
                "p": actor.platform,
                "e": actor.external_id,
                "n": name,
                "u": username,
            },
        )
    ).first()
    if inserted is None:  # another request created it first: use theirs, drop ours
        await conn.execute("DELETE FROM players WHERE id = :id", {"id": player_id})
        return await ensure_player(conn, actor)
    # An account whose player erased their data while banned is banned again (privacy.bans).
    await conn.execute(
        bans.CARRY_OVER,
        {
            "pid": player_id,
            "platform": actor.platform,
            "external": actor.external_id,
            "permanent": PERMANENT,
        },
    )
    return PlayerRef(player_id, name)


async def hold(conn: Conn, player: PlayerRef) -> PlayerRef:
    """Share-lock the player's row until the transaction ends, following /link's joins, and return the
    player that holds the accounts now.

    An operation that gives a player something a join must not lose (money, a wallet, a team place)
    holds the player first. /link locks both players for update before it checks what each has, so a
    concurrent join either waits for the operation and then sees what it gave, or finishes first, and
    the operation then lands on the player the accounts were joined into."""
    player_id = player.id
    for _ in range(8):
        row = (
            await conn.execute(
                "SELECT id, display_name, merged_into FROM players WHERE id = :id FOR SHARE",
                {"id": player_id},
            )
        ).first()
        if row is None:
            break
        if row.merged_into is None:
            return PlayerRef(row.id, row.display_name)
        player_id = row.merged_into
    raise NotFound(f"Player #{player.id} cannot be found any more. Name the player again.")


async def resolve_player(app, conn: Conn, actor: Actor) -> PlayerRef:
    """ensure_player with a per-process cache. An identity's player changes only through /link and
    /admin unlink; a process that cached the old player finds out in the statement that reads the
    player's standing (``identity_current``) and calls ``forget_identity``. A player created in this
    transaction is cached only once it commits."""
    key = (actor.platform, actor.external_id)
    ref = app.player_cache.get(key)
    if ref is None:
        ref = await ensure_player(conn, actor)
        found = ref

        def remember() -> None:
            app.player_cache[key] = found

        after_commit = getattr(conn, "after_commit", None)
        if after_commit is not None:
            after_commit(remember)
    bind(player_id=ref.id)  # the acting player, on every log line of this command from here on
    return ref


def forget_identity(app, actor: Actor) -> None:
    app.player_cache.pop((actor.platform, actor.external_id))


def identity_current(platform: str, external_id: str) -> str:
    """In a statement reading the player ``p``: whether the identity given by the SQL expressions
    ``platform`` and ``external_id`` still belongs to it (a NULL platform: no identity to check)."""
    return (
        f"({platform} IS NULL OR EXISTS (SELECT 1 FROM player_identities ci "
        f"WHERE ci.player_id = p.id AND ci.platform = {platform} AND ci.external_id = {external_id}))"
    )


# The same for ``actor``, given as parameters (``identity_params``).
IDENTITY_CURRENT = identity_current("CAST(:identity_platform AS text)", ":identity_external")


def identity_params(actor: Actor | None) -> dict[str, str | None]:
    return {
        "identity_platform": actor.platform if actor else None,
        "identity_external": actor.external_id if actor else None,
    }


async def owner_changed(conn: Conn, actor: Actor, player_id: int) -> bool:
    """Whether ``actor``'s identity now belongs to a player other than ``player_id`` (a stale cache)."""
    owner = (
        await conn.execute(
            "SELECT player_id FROM player_identities WHERE platform = :p AND external_id = :e",
            {"p": actor.platform, "e": actor.external_id},
        )
    ).scalar_one_or_none()
    return owner is not None and owner != player_id


async def note_identity(app: App, actor: Actor) -> None:
    """Store what the platform shows of this person now (display name, @username, moderator or not)
    when it changed since this process last stored it; the newest holder of a username keeps it.
    Costs no statement for someone seen before with the same names."""
    key = (actor.platform, actor.external_id)
    seen = (
        clean_name(actor.display_name),
        clean_username(actor.username),
        is_moderator(app.settings, actor),
    )
    if app.seen_identities.get(key) == seen:
        return
    name, username, moderator = seen
    async with app.uow() as uow:
        row = (
            await uow.conn.execute(
                (
                    "WITH me AS (UPDATE player_identities SET display_name = :n, username = :u, "
                    "  username_seen_at = CASE WHEN CAST(:u AS text) IS NULL THEN NULL ELSE now() END, "
                    "  seen_as_moderator = :m WHERE platform = :p AND external_id = :e RETURNING id, player_id), "
                    "others AS (UPDATE player_identities SET username = NULL, username_seen_at = NULL "
                    "  WHERE platform = :p AND username = :u AND external_id <> :e AND EXISTS (SELECT 1 FROM me) "
                    "  RETURNING id), "
                    "named AS (UPDATE players SET display_name = :n WHERE id = (SELECT player_id FROM me) "
                    "  AND display_name <> :n RETURNING id) "
                    "SELECT (SELECT id FROM me) AS id, (SELECT count(*) FROM others) AS others"
                ),
                {
                    "n": name,
                    "u": username,
                    "m": moderator,
                    "p": actor.platform,
                    "e": actor.external_id,
                },
            )
        ).one()
    if row.id is not None:  # not yet a player: ensure_player stores the names when it creates them
        app.seen_identities[key] = seen


async def require_not_banned(app, actor: Actor) -> None:
    """Refuse a banned player, saying until when and why (bans end on their own)."""
    sql = f"SELECT p.banned_until, p.ban_reason, {IDENTITY_CURRENT} AS identity_current FROM players p WHERE p.id = :id"
    async with app.uow() as uow:
        player = await resolve_player(app, uow.conn, actor)
        row = (await uow.conn.execute(sql, {"id": player.id, **identity_params(actor)})).one()
        if not row.identity_current:
            forget_identity(app, actor)
            player = await resolve_player(app, uow.conn, actor)
            row = (await uow.conn.execute(sql, {"id": player.id, **identity_params(actor)})).one()
    check_ban(row.banned_until, row.ban_reason, app.clock())


def ban_end_text(banned_until: datetime) -> str:
    if banned_until >= PERMANENT:
        return "until a moderator lifts the ban"
    return f"until {banned_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def check_ban(banned_until, reason: str | None, now) -> None:
    if banned_until is not None and banned_until > now:
        raise NotPermitted(
            f"You are banned {ban_end_text(banned_until)}: {reason or 'no reason given'}."
        )


def is_moderator(settings: Settings, actor: Actor) -> bool:
    """Moderators: Discord roles and Telegram user ids from settings; the local console's user."""
    if actor.platform == "console":
        return True  # the console runs on the operator's own machine against their own database
    if actor.platform == "discord":
        return bool(set(settings.MODERATOR_DISCORD_ROLE_IDS) & set(actor.roles))
    if actor.platform == "telegram":
        return actor.external_id in settings.MODERATOR_TELEGRAM_USER_IDS
    return False


def require_moderator(settings: Settings, actor: Actor) -> None:
    if not is_moderator(settings, actor):
        raise NotPermitted("Only moderators can do that.")


async def player_is_moderator(conn: Conn, settings: Settings, player_id: int) -> bool:
    """Whether a player is a moderator on any platform they play from (by the settings, or as the
    platform showed them when last seen: Discord roles are known only from their interactions)."""
    rows = (
        await conn.execute(
            "SELECT platform, external_id, seen_as_moderator FROM player_identities WHERE player_id = :p",
            {"p": player_id},
        )
    ).all()
    for r in rows:
        if r.seen_as_moderator or r.platform == "console":
            return True
        if r.platform == "telegram" and r.external_id in settings.MODERATOR_TELEGRAM_USER_IDS:
            return True
    return False


# --- naming a player ------------------------------------------------------------------------------

_MENTION = re.compile(r"^<@!?(\d{1,20})>$")
_PLATFORM_REF = re.compile(r"^(discord|telegram|console):(\S{1,64})$", re.I)
_PLAYER_ID = re.compile(r"^#(\d{1,18})$")
_DIGITS = re.compile(r"^\d{1,20}$")

FORMS = {
    "telegram": "@username, their numeric Telegram id, a reply to one of their messages, #<player id> or "
    "discord:<id> (for example @alice or 4242)",
    "discord": "a mention, their Discord user id, @username, #<player id> or telegram:<id> "
    "(for example @alice or 1320000000000000001)",
    "console": "#<player id>, @username, telegram:<id> or discord:<id> (for example #12 or telegram:4242)",
}


def naming_help(platform: str | None) -> str:
    return FORMS.get(platform or "console", FORMS["console"])


@dataclass(frozen=True)
class _Candidate:
    id: int
    display_name: str
    where: str  # "telegram @alice"


async def _final(conn: Conn, player_id: int) -> _Candidate | None:
    """The player, following /link's merges to the player that holds the identities now."""
    for _ in range(8):
        row = (
            await conn.execute(
                "SELECT id, display_name, merged_into FROM players WHERE id = :id",
                {"id": player_id},
            )
        ).first()
        if row is None:
            return None
        if row.merged_into is None:
            return _Candidate(row.id, row.display_name, f"#{row.id}")
        player_id = row.merged_into
    return None


async def _by_identity(conn: Conn, platform: str | None, external_id: str) -> list[_Candidate]:
    rows = (
        await conn.execute(
            (
                "SELECT p.id, p.display_name, i.platform FROM player_identities i JOIN players p ON p.id = i.player_id "
                "WHERE i.external_id = :e AND (CAST(:p AS text) IS NULL OR i.platform = :p) ORDER BY i.id"
            ),
            {"p": platform, "e": external_id},
        )
    ).all()
    return [_Candidate(r.id, r.display_name, f"{r.platform}:{external_id}") for r in rows]


async def _by_username(conn: Conn, platform: str | None, username: str) -> list[_Candidate]:
    rows = (
        await conn.execute(
            (
                "SELECT DISTINCT ON (i.platform) p.id, p.display_name, i.platform FROM player_identities i "
                "JOIN players p ON p.id = i.player_id WHERE i.username = :u "
                "AND (CAST(:p AS text) IS NULL OR i.platform = :p) "
                "ORDER BY i.platform, i.username_seen_at DESC NULLS LAST, i.id DESC"
            ),
            {"p": platform, "u": username},
        )
    ).all()
    return [_Candidate(r.id, r.display_name, f"{r.platform} @{username}") for r in rows]


async def _by_display_name(conn: Conn, name: str) -> list[_Candidate]:
    rows = (
        await conn.execute(
            (
                "SELECT id, display_name FROM players WHERE display_name = :n AND merged_into IS NULL "
                "ORDER BY id LIMIT 5"
            ),
            {"n": name},
        )
    ).all()
    return [_Candidate(r.id, r.display_name, f"#{r.id}") for r in rows]


def _one(found: list[_Candidate], reference: str) -> _Candidate | None:
    distinct: dict[int, _Candidate] = {}
    for c in sorted(found, key=lambda c: c.id):
        distinct.setdefault(c.id, c)
    if len(distinct) > 1:
        listed = ", ".join(f"#{c.id} ({c.where})" for c in list(distinct.values())[:4])
        raise NotFound(
            f"{reference[:40]!r} could be several players: {listed}. Name one by its #<player id>."
        )
    return next(iter(distinct.values()), None)


async def find_player(conn: Conn, reference: str, *, platform: str | None = None) -> PlayerRef:
    """Resolve a player named by a moderator typing on ``platform``: ``#12`` (player id),
    ``discord:123`` / ``telegram:456``, a Discord mention ``<@123>``, a numeric id of the moderator's
    platform (on the console: of any platform), ``@username`` (the moderator's platform first), or a
    username / exact display name. Unknown or ambiguous names are answered with the forms that work."""
    ref = reference.strip()
    here = platform if platform in ("discord", "telegram") else None
    found: _Candidate | None = None
    if match := _MENTION.match(ref):
        found = _one(await _by_identity(conn, "discord", match[1]), ref)
    elif match := _PLAYER_ID.match(ref):
        found = await _final(conn, int(match[1]))
    elif match := _PLATFORM_REF.match(ref):
        found = _one(await _by_identity(conn, match[1].lower(), match[2]), ref)
    elif _DIGITS.match(ref):
        found = _one(await _by_identity(conn, here, ref), ref)
    elif (username := clean_username(ref)) is not None:
        candidates = await _by_username(conn, here, username) if here else []
        if not candidates:
            candidates = await _by_username(conn, None, username)
        if not candidates and not ref.startswith("@"):
            candidates = await _by_display_name(conn, ref)
        found = _one(candidates, ref)
    elif ref:
        found = _one(await _by_display_name(conn, ref), ref)
    if found is None:
        raise NotFound(
            f"No player {reference.strip()[:40]!r}. Name a player by {naming_help(platform)}."
        )
    return PlayerRef(found.id, found.display_name)
