"""Bans that outlive an erasure. A player who erases their data while banned leaves, per platform
account, a keyed SHA-256 of ``platform:external id`` and the ban's end; whoever later starts playing
from one of those accounts is a new player, banned until the same end for the same reason.

The key is random per installation, kept in ``game_meta`` (``privacy_hash_key``) and made at the
first erasure of a banned player. It keeps the table from being read as a list of account ids by
whoever sees only that table; platform ids can be enumerated, so someone holding the whole database
(the key included) could test guesses. Only banned players' accounts are hashed, and a hash goes when
its ban ends or is lifted. One definition of the hash (``identity_hash``) serves both sides."""

from __future__ import annotations

import secrets
from datetime import datetime

from core.db import Conn

KEY = "privacy_hash_key"


def identity_hash(platform: str, external_id: str) -> str:
    """SQL: the keyed hash of the account given by the SQL expressions ``platform`` and
    ``external_id`` (NULL while the installation has no key: nobody erased while banned yet)."""
    return (
        "encode(sha256(convert_to((SELECT value->>'key' FROM game_meta WHERE key = '"
        + KEY
        + f"') || ':' || {platform} || ':' || {external_id}, 'UTF8')), 'hex')"
    )


async def ensure_key(conn: Conn) -> None:
    await conn.execute(
        "INSERT INTO game_meta (key, value) VALUES (:k, :v) ON CONFLICT (key) DO NOTHING",
        {"k": KEY, "v": {"key": secrets.token_hex(32)}},
    )


async def keep_ban(
    conn: Conn, player_id: int, ids: list[int], ends_at: datetime | None, reason: str
) -> int:
    """Before ``ids``' identities are deleted: hash each of them with the ban in force; how many."""
    await ensure_key(conn)
    rows = (
        await conn.execute(
            (
                "INSERT INTO banned_identities (identity_hash, player_id, ends_at, reason) "
                f"SELECT {identity_hash('i.platform', 'i.external_id')}, :p, :e, :r "
                "FROM player_identities i WHERE i.player_id = ANY(:ids) "
                "ON CONFLICT (identity_hash) DO UPDATE SET player_id = EXCLUDED.player_id, "
                "ends_at = EXCLUDED.ends_at, reason = EXCLUDED.reason RETURNING identity_hash"
            ),
            {"p": player_id, "ids": ids, "e": ends_at, "r": reason},
        )
    ).all()
    return len(rows)


# Run when a platform account becomes a new player (players.ensure_player): an erased banned
# player's account is banned again. Parameters: :pid (the new player), :platform, :external,
# :permanent (the stored end of a ban "until unbanned").
CARRY_OVER = (
    "WITH hit AS (SELECT b.player_id, b.ends_at, b.reason FROM banned_identities b "
    f"  WHERE b.identity_hash = {identity_hash('CAST(:platform AS text)', 'CAST(:external AS text)')} "
    "  AND (b.ends_at IS NULL OR b.ends_at > now()) LIMIT 1), "
    "banned AS (UPDATE players p SET banned_until = COALESCE(hit.ends_at, :permanent), "
    "  ban_reason = hit.reason FROM hit WHERE p.id = :pid RETURNING p.id) "
    "INSERT INTO player_bans (player_id, moderator, reason, ends_at) "
    "SELECT :pid, 'the ban of erased player #' || hit.player_id || ' (the same account)', hit.reason, "
    "hit.ends_at FROM hit WHERE EXISTS (SELECT 1 FROM banned) RETURNING id"
)


# Run when a moderator lifts a ban (moderation.unban) of an erased player, or of a newcomer whose
# ban came from one: every hash that erased player left goes. Parameter: :p.
FORGET = (
    "DELETE FROM banned_identities WHERE player_id = :p OR player_id IN "
    "(SELECT b.player_id FROM banned_identities b WHERE b.identity_hash IN "
    f"(SELECT {identity_hash('i.platform', 'i.external_id')} FROM player_identities i WHERE i.player_id = :p))"
)
