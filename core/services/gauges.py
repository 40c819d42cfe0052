"""What /metrics reads from the database at scrape time: the prize pools of open rounds, the outbox
by channel and topic, and the last `bounty check`. Read-only, a few indexed statements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.db import Conn
from core.services.checks import LastCheck, last_check


@dataclass(frozen=True)
class OutboxKind:
    channel: str
    topic: str
    waiting: int
    oldest_age_seconds: float
    failed: int


@dataclass(frozen=True)
class PrizePool:
    round_id: int
    status: str
    demo: bool
    amount: int  # USDC micro-units


@dataclass(frozen=True)
class Sample:
    at: datetime
    pools: list[PrizePool] = field(default_factory=list)
    outbox: list[OutboxKind] = field(default_factory=list)
    check: LastCheck | None = None


async def sample(conn: Conn) -> Sample:
    pools = [
        PrizePool(r.id, r.status, bool(r.is_demo), int(r.amount))
        for r in (
            await conn.execute(
                "SELECT b.id, b.status, b.is_demo, "
                "CAST(COALESCE((SELECT SUM(e.amount) FROM accounts a JOIN entries e ON e.account_id = a.id "
                "WHERE a.kind = 'prize_pool' AND a.owner_id = b.id AND a.currency = 'USDC'), 0) AS bigint) AS amount "
                "FROM bounties b WHERE b.status IN ('active', 'paused') ORDER BY b.id"
            )
        ).all()
    ]
    outbox = [
        OutboxKind(r.channel, r.topic, int(r.waiting), float(r.oldest or 0), int(r.failed))
        for r in (
            await conn.execute(
                "SELECT channel, topic, "
                "count(*) FILTER (WHERE done_at IS NULL AND failed_at IS NULL) AS waiting, "
                "EXTRACT(EPOCH FROM now() - min(created_at) FILTER "
                "(WHERE done_at IS NULL AND failed_at IS NULL)) AS oldest, "
                "count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed "
                "FROM outbox WHERE done_at IS NULL GROUP BY channel, topic ORDER BY channel, topic"
            )
        ).all()
    ]
    return Sample(datetime.now(UTC), pools, outbox, await last_check(conn))
