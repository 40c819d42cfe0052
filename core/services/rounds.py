"""Rounds (bounties): creation with a committed prompt hash, status, pause, and how rounds end."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core import ledger
from core.db import Conn
from core.errors import InvalidArgument, NotFound, RoundNotActive
from core.rules import attempt_fee, expiry_shares

if TYPE_CHECKING:
    from core.app import App

DEFAULT_BASE_FEE = 10_000_000  # 10 USDC
DEFAULT_GROWTH_BPS = 78
DEFAULT_FEE_CAP = 4_500_000_000  # 4,500 USDC


@dataclass(frozen=True)
class BountyRow:
    id: int
    name: str
    system_prompt: str
    prompt_sha256: str
    seed: int
    base_fee: int
    growth_bps: int
    fee_cap: int
    status: str
    is_demo: bool
    created_at: datetime
    ended_at: datetime | None
    winner_attempt_id: int | None

    @property
    def open(self) -> bool:
        return self.status in ("active", "paused")

    def fee(self, n: int) -> int:
        return attempt_fee(n, self.base_fee, self.growth_bps, self.fee_cap)


_COLS = (
    "id, name, system_prompt, prompt_sha256, seed, base_fee, growth_bps, fee_cap, status, is_demo, "
    "created_at, ended_at, winner_attempt_id"
)


def sequence_name(bounty_id: int) -> str:
    return f"bounty_attempt_numbers_{int(bounty_id)}"


async def current_bounty(conn: Conn) -> BountyRow | None:
    """The open round (active or paused), else the most recent one; None before any round."""
    row = (
        await conn.execute(
            f"SELECT {_COLS} FROM bounties ORDER BY (status IN ('active','paused')) DESC, id DESC LIMIT 1"
        )
    ).first()
    return BountyRow(**row._mapping) if row else None


async def get_bounty(conn: Conn, bounty_id: int, *, for_update: bool = False) -> BountyRow:
    sql = f"SELECT {_COLS} FROM bounties WHERE id = :id" + (" FOR UPDATE" if for_update else "")
    row = (await conn.execute(sql, {"id": bounty_id})).first()
    if row is None:
        raise NotFound(f"No round #{bounty_id}.")
    return BountyRow(**row._mapping)


def bounty_from(row) -> BountyRow:
    """A BountyRow from a wider row that carries the bounty's columns (status as bounty_status)."""
    m = row._mapping
    return BountyRow(
        id=m["bounty_id"],
        name=m["name"],
        system_prompt=m["system_prompt"],
        prompt_sha256=m["prompt_sha256"],
        seed=m["seed"],
        base_fee=m["base_fee"],
        growth_bps=m["growth_bps"],
        fee_cap=m["fee_cap"],
        status=m["bounty_status"],
        is_demo=m["is_demo"],
        created_at=m["created_at"],
        ended_at=m["ended_at"],
        winner_attempt_id=m["winner_attempt_id"],
    )


async def lock_round_exclusive(conn: Conn, bounty_id: int) -> BountyRow:
    await conn.execute("SELECT pg_advisory_xact_lock(1, CAST(:id AS int))", {"id": bounty_id})
    return await get_bounty(conn, bounty_id, for_update=True)


async def next_attempt_number(conn: Conn, bounty_id: int) -> int:
    """The number the next attempt will get (without taking it)."""
    row = (
        await conn.execute(f"SELECT last_value, is_called FROM {sequence_name(bounty_id)}")
    ).one()
    return row.last_value + 1 if row.is_called else row.last_value


async def take_attempt_number(conn: Conn, bounty_id: int) -> int:
    return (await conn.execute(f"SELECT nextval('{sequence_name(bounty_id)}')")).scalar_one()


async def prize_pool(app: App, conn: Conn, bounty_id: int) -> int:
    acc = await app.accounts.get(conn, ledger.PRIZE_POOL, bounty_id)
    return await ledger.balance(conn, acc)


async def announce(conn: Conn, kind: str, title: str, body: str) -> int:
    """News for every announcement channel, written in the caller's transaction (see announcements)."""
    from core.services.announcements import publish

    return await publish(conn, kind, title, body)


def validate_fee_rules(base_fee: int, growth_bps: int, fee_cap: int) -> None:
    if base_fee <= 0:
        raise InvalidArgument("The base fee must be more than zero.")
    if fee_cap < base_fee:
        raise InvalidArgument("The fee cap must be at least the base fee.")
    if not 0 <= growth_bps <= 10_000:
        raise InvalidArgument("Growth must be between 0 and 10,000 basis points (0 % to 100 %).")


async def create_bounty(
    app: App,
    conn: Conn,
    *,
    name: str,
    system_prompt: str,
    seed: int,
    base_fee: int = DEFAULT_BASE_FEE,
    growth_bps: int = DEFAULT_GROWTH_BPS,
    fee_cap: int = DEFAULT_FEE_CAP,
    is_demo: bool = False,
    seed_from: str = ledger.TREASURY,
) -> BountyRow:
    """Open a round: commit to the prompt by its SHA-256, fund the seed, announce it."""
    validate_fee_rules(base_fee, growth_bps, fee_cap)
    if not system_prompt.strip():
        raise InvalidArgument("The guardian's system prompt is empty.")
    open_round = (
        await conn.execute(
            "SELECT id, name FROM bounties WHERE status IN ('active','paused') FOR UPDATE"
        )
    ).first()
    if open_round is not None:
        raise InvalidArgument(
            f"Round #{open_round.id} ({open_round.name}) is still open; it must end first."
        )
    digest = hashlib.sha256(system_prompt.encode()).hexdigest()
    bounty_id = (
        await conn.execute(
            (
                "INSERT INTO bounties (name, system_prompt, prompt_sha256, seed, base_fee, growth_bps, fee_cap, status, is_demo) "
                "VALUES (:n, :p, :h, :s, :b, :g, :c, 'active', :d) RETURNING id"
            ),
            {
                "n": name,
                "p": system_prompt,
                "h": digest,
                "s": seed,
                "b": base_fee,
                "g": growth_bps,
                "c": fee_cap,
                "d": is_demo,
            },
        )
    ).scalar_one()
    # Attempt numbers come from a sequence: taking one never locks a row another payer needs.
    await conn.execute(f"CREATE SEQUENCE {sequence_name(bounty_id)} MINVALUE 0 START 0")
    if seed > 0:
        source = await app.accounts.get(conn, seed_from)
        pool = await app.accounts.get(conn, ledger.PRIZE_POOL, bounty_id)
        await ledger.transfer(conn, f"seed:{bounty_id}", "seed", [(source, -seed), (pool, seed)])
    bounty = await get_bounty(conn, bounty_id)
    from core.money import usdc

    await announce(
        conn,
        "round_started",
        f"New round: {name}",
        f"Prize pool {usdc(seed, demo=is_demo)}. First attempt costs {usdc(base_fee, demo=is_demo)}.\n"
        f"Commitment (SHA-256 of the guardian's prompt): {digest}",
    )
    return bounty


async def expiry_deadline(app: App, conn: Conn, bounty: BountyRow) -> tuple[datetime | None, int]:
    """When an active round would expire with no further attempt, and how many attempts it has."""
    row = (
        await conn.execute(
            (
                "SELECT count(*) AS n, max(created_at) AS last FROM attempts "
                "WHERE bounty_id = :b AND status <> 'refunded'"
            ),
            {"b": bounty.id},
        )
    ).one()
    if row.n < app.settings.ROUND_MIN_ATTEMPTS_FOR_EXPIRY or row.last is None:
        return None, row.n
    return row.last + timedelta(seconds=app.settings.ROUND_INACTIVITY_SECONDS), row.n


def require_active(bounty: BountyRow | None) -> BountyRow:
    if bounty is None:
        raise RoundNotActive(
            "No round has started yet. A moderator opens one with /admin bounty new."
        )
    if bounty.status == "paused":
        raise RoundNotActive(f"Round {bounty.name} is paused by the moderators. Try again later.")
    if bounty.status != "active":
        raise RoundNotActive(
            f"Round {bounty.name} is over ({bounty.status}). Wait for the next one."
        )
    return bounty


async def expire_round(app: App, conn: Conn, bounty_id: int) -> bool:
    """End an inactive round: 20 % of the pool to the last player, 80 % by fees paid. True if ended."""
    from core.money import usdc

    now = app.clock()
    bounty = await lock_round_exclusive(conn, bounty_id)
    if bounty.status != "active":
        return False
    deadline, count = await expiry_deadline(app, conn, bounty)
    if deadline is None or deadline > now:
        return False
    pending = (
        await conn.execute(
            "SELECT count(*) FROM attempts WHERE bounty_id = :b AND status = 'pending'",
            {"b": bounty_id},
        )
    ).scalar_one()
    if pending:
        return False  # an answer is on its way; the next check ends the round
    payers = (
        await conn.execute(
            (
                "SELECT payer_account_id, SUM(fee) AS paid, min(created_at) AS first_at, "
                "max(number) AS last_number FROM attempts WHERE bounty_id = :b AND status <> 'refunded' "
                "GROUP BY payer_account_id ORDER BY first_at, payer_account_id"
            ),
            {"b": bounty_id},
        )
    ).all()
    pool_acc = await app.accounts.get(conn, ledger.PRIZE_POOL, bounty_id)
    pool = await ledger.balance(conn, pool_acc)
    last_index = max(range(len(payers)), key=lambda i: payers[i].last_number)
    fees = [int(p.paid) for p in payers]
    if pool > 0 and sum(fees) > 0:
        shares = expiry_shares(pool, last_index, fees)
        legs = [(pool_acc, -pool)]
        for payer, share in zip(payers, shares, strict=True):
            acc = app.accounts.known(payer.payer_account_id) or await ledger.account_by_id(
                conn, payer.payer_account_id
            )
            legs.append((acc, share))
        await ledger.transfer(conn, f"expire:{bounty_id}", "round_expired", legs)
    await conn.execute(
        "UPDATE bounties SET status = 'expired', ended_at = :now WHERE id = :id",
        {"now": now, "id": bounty_id},
    )
    await announce(
        conn,
        "round_expired",
        f"Round {bounty.name} expired",
        f"No attempt for {app.settings.ROUND_INACTIVITY_SECONDS // 3600} hours after {count} attempts. "
        f"The pool of {usdc(pool, demo=bounty.is_demo)} was shared: 20 % to the last player, 80 % among all "
        f"{len(payers)} players by fees paid.\nThe guardian's prompt is revealed (SHA-256 {bounty.prompt_sha256}); "
        "every attempt's text and reply are now public in /bounty log.",
    )
    return True


async def end_inactive_rounds(app: App) -> list[int]:
    """Beat job: expire every active round past its inactivity deadline."""
    ended = []
    async with app.uow() as uow:
        ids = (
            (await uow.conn.execute("SELECT id FROM bounties WHERE status = 'active'"))
            .scalars()
            .all()
        )
    for bounty_id in ids:
        async with app.uow() as uow:
            if await expire_round(app, uow.conn, bounty_id):
                ended.append(bounty_id)
    return ended
