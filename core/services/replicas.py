"""Running more than one copy of a bot against one database (SPEC §2: more workers and bot shards,
nothing home-made): a Telegram update handled once whichever webhook replica receives it, and the
database connections every process may hold.

Discord needs nothing here: shards split the servers between processes, so each interaction reaches
one of them. The outbox is shared by design (``FOR UPDATE SKIP LOCKED`` with leases)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.app import App

# Telegram keeps an update for at most 24 hours before giving up on delivering it.
KEEP_UPDATES = timedelta(days=2)
BATCH_CONNECTIONS = 3  # core.db.batch: quotes, quote reads and rejections, one connection each


async def take_update(app: App, bot_id: int, update_id: int, replica: str) -> bool:
    """Whether this replica is the first to take the update (and so handles it). A second delivery
    of the same update, to this replica or another (Telegram retried after a lost answer, behind a
    load balancer), finds it taken. One statement, committed before the update is handled."""
    async with app.db.autocommit() as conn:
        row = (
            await conn.execute(
                "INSERT INTO telegram_updates (bot_id, update_id, taken_by) VALUES (:b, :u, :r) "
                "ON CONFLICT (bot_id, update_id) DO NOTHING RETURNING update_id",
                {"b": bot_id, "u": update_id, "r": replica[:200]},
            )
        ).first()
    return row is not None


async def purge_updates(app: App, keep: timedelta = KEEP_UPDATES) -> int:
    """Forget update ids older than Telegram could deliver again; how many."""
    async with app.db.autocommit() as conn:
        rows = (
            await conn.execute(
                "DELETE FROM telegram_updates WHERE taken_at < now() - CAST(:keep AS interval) "
                "RETURNING 1",
                {"keep": keep},
            )
        ).all()
    return len(rows)


@dataclass(frozen=True)
class ConnectionBudget:
    this_process: int  # the most connections this process opens
    max_connections: int  # the server's limit (superusers' reserve included)
    reserved: int  # kept for superusers
    in_use: int  # open now, by everyone

    @property
    def left(self) -> int:
        return self.max_connections - self.reserved - self.in_use

    def describe(self) -> str:
        return (
            f"this process opens up to {self.this_process} database connections (DATABASE_POOL_SIZE "
            f"+ {BATCH_CONNECTIONS}); the server allows {self.max_connections - self.reserved} "
            f"({self.max_connections} max_connections less {self.reserved} reserved), {self.in_use} "
            "in use now"
        )


async def connection_budget(app: App) -> ConnectionBudget:
    """This process's connections against what the server allows (``bounty run`` logs it)."""
    async with app.db.autocommit() as conn:
        row = (
            await conn.execute(
                "SELECT current_setting('max_connections')::int AS max, "
                "current_setting('superuser_reserved_connections')::int AS reserved, "
                "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used"
            )
        ).one()
    return ConnectionBudget(
        app.db.max_size + BATCH_CONNECTIONS, row.max, row.reserved, int(row.used)
    )
