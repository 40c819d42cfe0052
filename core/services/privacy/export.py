"""``/privacy export``: everything stored about a player, as one JSON document.

What is theirs is exported whole (their identities, texts, money, teams, wallet, notices); what
others wrote about them is exported without naming the others (a moderator's note or ban says what it
says, not which moderator wrote it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.actors import Actor
from core.db import Conn
from core.services.players import ensure_player

if TYPE_CHECKING:
    from core.app import App

FORMAT = "billions-bounty-player-data/1"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


async def _rows(conn: Conn, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [_plain(dict(r.items())) for r in (await conn.execute(sql, params)).all()]


async def player_ids(conn: Conn, player_id: int) -> list[int]:
    """The player and every player /link joined into it (their history is theirs too)."""
    ids = [player_id]
    frontier = [player_id]
    while frontier:
        found = (
            (
                await conn.execute(
                    "SELECT id FROM players WHERE merged_into = ANY(:ids) ORDER BY id",
                    {"ids": frontier},
                )
            )
            .scalars()
            .all()
        )
        frontier = [i for i in found if i not in ids]
        ids += frontier
    return ids


async def collect(conn: Conn, player_id: int, now: datetime) -> dict[str, Any]:
    """The document, read in the caller's transaction."""
    ids = await player_ids(conn, player_id)
    p = {"ids": ids}
    players = await _rows(
        conn,
        "SELECT id, display_name, created_at, last_attempt_at, banned_until, ban_reason, excluded_until, "
        "daily_limit, daily_limit_set_at, merged_into FROM players WHERE id = ANY(:ids) ORDER BY id",
        **p,
    )
    accounts = await _rows(
        conn,
        "SELECT id, owner_id AS player_id, currency, balance FROM accounts "
        "WHERE kind = 'player' AND owner_id = ANY(:ids) ORDER BY id",
        **p,
    )
    return {
        "format": FORMAT,
        "exported_at": _plain(now),
        "player_id": player_id,
        "amounts": "integers in minor units: USDC in micro-units (1 USDC = 1,000,000), $100Bs in base units",
        "players": players,
        "identities": await _rows(
            conn,
            "SELECT player_id, platform, external_id, display_name, username, created_at, username_seen_at "
            "FROM player_identities WHERE player_id = ANY(:ids) ORDER BY id",
            **p,
        ),
        "accounts": accounts,
        "balance_history": await _rows(
            conn,
            "SELECT t.created_at, t.kind, t.memo, e.amount, a.currency, t.id AS transfer_id FROM entries e "
            "JOIN accounts a ON a.id = e.account_id JOIN transfers t ON t.id = e.transfer_id "
            "WHERE a.kind = 'player' AND a.owner_id = ANY(:ids) ORDER BY t.id, e.id",
            **p,
        ),
        "attempts": await _rows(
            conn,
            "SELECT a.id, a.bounty_id, b.name AS round, a.number + 1 AS number, a.team_id, a.message AS text, "
            "a.message_sha256, a.reply, a.verdict_reason, a.fee, a.list_fee, a.discount_bps, a.status, "
            "a.guardian, a.created_at, a.finished_at FROM attempts a JOIN bounties b ON b.id = a.bounty_id "
            "WHERE a.player_id = ANY(:ids) ORDER BY a.id",
            **p,
        ),
        "unpaid_quotes": await _rows(
            conn,
            "SELECT id, bounty_id, message AS text, max_fee, status, created_at FROM attempt_quotes "
            "WHERE player_id = ANY(:ids) AND status <> 'paid' ORDER BY created_at",
            **p,
        ),
        "teams": {
            "memberships": await _rows(
                conn,
                "SELECT t.id AS team_id, t.name AS team, m.joined_at, m.left_at, m.left_how, "
                "(t.captain_player_id = m.player_id AND m.left_at IS NULL) AS captain FROM team_members m "
                "JOIN teams t ON t.id = m.team_id WHERE m.player_id = ANY(:ids) ORDER BY m.id",
                **p,
            ),
            "contributions": await _rows(
                conn,
                "SELECT t.name AS team, c.amount, c.created_at FROM team_contributions c "
                "JOIN teams t ON t.id = c.team_id WHERE c.player_id = ANY(:ids) ORDER BY c.id",
                **p,
            ),
            "invitations": await _rows(
                conn,
                "SELECT t.name AS team, i.status, i.created_at, i.expires_at FROM team_invitations i "
                "JOIN teams t ON t.id = i.team_id WHERE i.player_id = ANY(:ids) ORDER BY i.id",
                **p,
            ),
            "messages": await _rows(
                conn,
                "SELECT t.name AS team, m.platform, m.author_name, m.body, m.created_at, m.edited_at "
                "FROM team_messages m JOIN teams t ON t.id = m.team_id WHERE m.author_player_id = ANY(:ids) "
                "ORDER BY m.id",
                **p,
            ),
        },
        "wallet": {
            "wallets": await _rows(
                conn,
                "SELECT address, verified_at, unlinked_at FROM wallets WHERE player_id = ANY(:ids) ORDER BY id",
                **p,
            ),
            "deposits": await _rows(
                conn,
                "SELECT signature, wallet_address, amount, block_time, created_at FROM deposits "
                "WHERE player_id = ANY(:ids) ORDER BY created_at",
                **p,
            ),
            "payouts": await _rows(
                conn,
                "SELECT id, wallet_address, amount, status, requested_at, decided_at, reason, tx_signature, "
                "paid_at FROM payouts WHERE player_id = ANY(:ids) ORDER BY id",
                **p,
            ),
            "stakes": await _rows(
                conn,
                "SELECT id, wallet_address, amount, lock_days, started_at, unlocks_at, unstaked_at FROM stakes "
                "WHERE player_id = ANY(:ids) ORDER BY id",
                **p,
            ),
            "staking_rewards": await _rows(
                conn,
                "SELECT month, stake_id, amount, days, share, forfeited FROM staking_rewards "
                "WHERE player_id = ANY(:ids) ORDER BY month, stake_id",
                **p,
            ),
            "discounts": await _rows(
                conn,
                "SELECT attempt_id, discount_bps, holdings, created_at FROM discount_uses "
                "WHERE player_id = ANY(:ids) ORDER BY attempt_id",
                **p,
            ),
        },
        "notices": await _rows(
            conn,
            # one row per notice, however many platforms it was sent to
            "SELECT payload->>'title' AS title, payload->>'body' AS body, created_at, "
            "max(done_at) AS delivered_at FROM outbox "
            "WHERE topic = 'notice' AND CAST(payload->>'player_id' AS bigint) = ANY(:ids) "
            "GROUP BY 1, 2, 3 ORDER BY created_at",
            **p,
        ),
        "moderation": {
            "bans": await _rows(
                conn,
                "SELECT created_at, ends_at, reason, lifted_at FROM player_bans WHERE player_id = ANY(:ids) "
                "ORDER BY id",
                **p,
            ),
            "notes": await _rows(
                conn,
                "SELECT created_at, body FROM player_notes WHERE player_id = ANY(:ids) ORDER BY id",
                **p,
            ),
            "audit_log": await _rows(
                conn,
                "SELECT created_at, action, reason, before, after, "
                "(actor_player_id = ANY(:ids)) AS by_you FROM audit_log "
                "WHERE target_player_id = ANY(:ids) OR (actor_player_id = ANY(:ids) AND action <> 'audit') "
                "ORDER BY id",
                **p,
            ),
        },
    }


async def export_data(app: App, actor: Actor) -> tuple[int, bytes]:
    """Everything stored about the player behind ``actor``, as UTF-8 JSON; (player id, document)."""
    async with app.uow() as uow:
        conn = uow.conn
        # One snapshot: every table read as of the same moment.
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        player = await ensure_player(conn, actor)
        document = await collect(conn, player.id, app.clock())
    return player.id, json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8")
