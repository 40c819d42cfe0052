"""Players and their platform identities; the moderator right, decided in core."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.actors import Actor
from core.errors import NotFound, NotPermitted
from core.settings import Settings

MAX_NAME = 64


@dataclass(frozen=True)
class PlayerRef:
    id: int
    display_name: str


def clean_name(name: str) -> str:
    name = " ".join(name.split())[:MAX_NAME]
    return name or "player"


async def ensure_player(conn: AsyncConnection, actor: Actor) -> PlayerRef:
    """The player behind this platform account, created on first contact."""
    row = (
        await conn.execute(
            text(
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
        await conn.execute(text("INSERT INTO players (display_name) VALUES (:n) RETURNING id"), {"n": name})
    ).scalar_one()
    inserted = (
        await conn.execute(
            text(
                "INSERT INTO player_identities (player_id, platform, external_id, display_name) "
                "VALUES (:pid, :p, :e, :n) ON CONFLICT (platform, external_id) DO NOTHING RETURNING player_id"
            ),
            {"pid": player_id, "p": actor.platform, "e": actor.external_id, "n": name},
        )
    ).first()
    if inserted is None:  # another request created it first: use theirs, drop ours
        await conn.execute(text("DELETE FROM players WHERE id = :id"), {"id": player_id})
        return await ensure_player(conn, actor)
    return PlayerRef(player_id, name)


async def resolve_player(app, conn: AsyncConnection, actor: Actor) -> PlayerRef:
    """ensure_player with a per-process cache: a platform account's player never changes
    (account linking, when it lands, must call ``app.forget_cached``). A player created in this
    transaction is cached only once it commits."""
    key = (actor.platform, actor.external_id)
    ref = app.player_cache.get(key)
    if ref is None:
        ref = await ensure_player(conn, actor)
        found = ref

        def remember() -> None:
            if len(app.player_cache) > 100_000:
                app.player_cache.clear()
            app.player_cache[key] = found

        after_commit = getattr(conn, "after_commit", None)
        if after_commit is not None:
            after_commit(remember)
    return ref


async def require_not_banned(app, actor: Actor) -> None:
    """Refuse a banned player, saying until when and why (bans end on their own)."""
    async with app.uow() as uow:
        player = await resolve_player(app, uow.conn, actor)
        row = (
            await uow.conn.execute(text("SELECT banned_until, ban_reason FROM players WHERE id = :id"), {"id": player.id})
        ).one()
    check_ban(row.banned_until, row.ban_reason, app.clock())


def check_ban(banned_until, reason: str | None, now) -> None:
    if banned_until is not None and banned_until > now:
        raise NotPermitted(f"You are banned until {banned_until:%Y-%m-%d %H:%M} UTC: {reason or 'no reason given'}.")


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


async def find_player(conn: AsyncConnection, reference: str) -> PlayerRef:
    """Resolve a player named by a moderator: `#12` (player id), `discord:123`, `telegram:456`,
    a Discord mention `<@123>`, or an exact display name."""
    ref = reference.strip()
    row = None
    if ref.startswith("<@") and ref.endswith(">"):
        ref = "discord:" + ref.strip("<@!>")
    if ref.startswith("#") and ref[1:].isdigit():
        row = (await conn.execute(text("SELECT id, display_name FROM players WHERE id = :id"), {"id": int(ref[1:])})).first()
    elif ":" in ref:
        platform, _, ext = ref.partition(":")
        row = (
            await conn.execute(
                text(
                    "SELECT p.id, p.display_name FROM player_identities i JOIN players p ON p.id = i.player_id "
                    "WHERE i.platform = :p AND i.external_id = :e"
                ),
                {"p": platform.lower(), "e": ext},
            )
        ).first()
    else:
        rows = (
            await conn.execute(text("SELECT id, display_name FROM players WHERE display_name = :n LIMIT 2"), {"n": ref})
        ).all()
        if len(rows) > 1:
            raise NotFound(f"Several players are called {ref[:40]!r}; use their id like #12.")
        row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"No player {reference[:40]!r}. Use #id, discord:<id>, telegram:<id> or a mention.")
    return PlayerRef(row.id, row.display_name)
