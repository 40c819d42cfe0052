"""Reads for the questions asked before a command runs that its owner did not type (SPEC §10.3,
``core/commands/consent.py``): what a team invitation would join, what unlinking a wallet would
leave behind. Nothing here changes anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.services.players import ensure_player
from core.services.teams.common import name_key

if TYPE_CHECKING:
    from core.app import App


@dataclass(frozen=True)
class OpenInvitation:
    team_id: int
    team: str
    captain: str
    members: int
    pool: int
    expires_at: datetime


async def open_invitations(
    app: App, actor: Actor, team_name: str | None = None
) -> list[OpenInvitation]:
    """The caller's live team invitations (to ``team_name`` only, when given), newest first."""
    async with app.uow() as uow:
        conn = uow.conn
        player = await ensure_player(conn, actor)
        rows = (
            await conn.execute(
                (
                    "SELECT i.team_id, t.name, i.expires_at, c.display_name AS captain, "
                    "(SELECT count(*) FROM team_members m WHERE m.team_id = t.id AND m.left_at IS NULL) AS members, "
                    # a pool is a guarded account: its balance column is its balance
                    "COALESCE((SELECT a.balance FROM accounts a WHERE a.kind = :pool AND a.owner_id = t.id "
                    "AND a.currency = 'USDC'), 0) AS pool "
                    "FROM team_invitations i JOIN teams t ON t.id = i.team_id "
                    "JOIN players c ON c.id = t.captain_player_id "
                    "WHERE i.player_id = :p AND i.status = 'open' AND i.expires_at > :now "
                    "AND t.disbanded_at IS NULL ORDER BY i.created_at DESC"
                ),
                {"p": player.id, "now": app.clock(), "pool": ledger.TEAM_POOL},
            )
        ).all()
    return [
        OpenInvitation(r.team_id, r.name, r.captain, r.members, r.pool, r.expires_at)
        for r in rows
        if not team_name or name_key(r.name) == name_key(team_name)
    ]


@dataclass(frozen=True)
class LinkedWallet:
    address: str | None
    active_stakes: int


async def linked_wallet(app: App, actor: Actor) -> LinkedWallet:
    """The caller's linked wallet and how many of their stakes it covers."""
    async with app.uow() as uow:
        conn = uow.conn
        player = await ensure_player(conn, actor)
        row = (
            await conn.execute(
                (
                    "SELECT (SELECT address FROM wallets WHERE player_id = :p AND unlinked_at IS NULL) AS address, "
                    "(SELECT count(*) FROM stakes WHERE player_id = :p AND unstaked_at IS NULL) AS stakes"
                ),
                {"p": player.id},
            )
        ).one()
        return LinkedWallet(row.address, row.stakes)
