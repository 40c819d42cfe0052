"""Rounds (bounties): creation with a committed prompt hash, status, pause, and how rounds end."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core import ledger
from core.db import Conn, locks
from core.db.locks import Lock
from core.errors import InvalidArgument, NotFound, RoundNotActive
from core.money import usdc
from core.rules import FeeRule, attempt_fee
from core.services import commitment
from core.services.announcements import publish

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
    commitment_sha256: str | None = None  # published when the round opens
    config_sha256: str | None = None  # the guardian and memory it committed to
    commitment: str | None = None  # the document itself: shown once the round has ended

    @property
    def public_commitment(self) -> str:
        """The hash shown from the start (rounds before commitments: the prompt's)."""
        return self.commitment_sha256 or self.prompt_sha256

    @property
    def open(self) -> bool:
        return self.status in ("active", "paused")

    def fee(self, n: int) -> int:
        return attempt_fee(n, self.base_fee, self.growth_bps, self.fee_cap)

    @property
    def rule(self) -> FeeRule:
        return FeeRule(self.base_fee, self.growth_bps, self.fee_cap)


_COLS = (
    "id, name, system_prompt, prompt_sha256, seed, base_fee, growth_bps, fee_cap, status, is_demo, "
    "created_at, ended_at, winner_attempt_id, commitment_sha256, config_sha256, commitment"
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
        commitment_sha256=m.get("commitment_sha256"),
        config_sha256=m.get("config_sha256"),
        commitment=m.get("commitment"),
    )


async def lock_round_exclusive(conn: Conn, bounty_id: int) -> BountyRow:
    await locks.xact(conn, Lock.ROUND, bounty_id)
    return await get_bounty(conn, bounty_id, for_update=True)


async def next_attempt_number(conn: Conn, bounty_id: int) -> int:
    """The number the next payment of the round takes (without taking it): the lowest number given
    back by a payment that did not happen, else the sequence's next (migration 0012)."""
    return (await conn.execute("SELECT bounty_next_number(:b)", {"b": bounty_id})).scalar_one()


async def prize_pool(app: App, conn: Conn, bounty_id: int) -> int:
    acc = await app.accounts.get(conn, ledger.PRIZE_POOL, bounty_id)
    return await ledger.balance(conn, acc)


async def announce(conn: Conn, kind: str, title: str, body: str) -> int:
    """News for every announcement channel, written in the caller's transaction (see announcements)."""

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
    document, committed = commitment.new_commitment(app, system_prompt)
    bounty_id = (
        await conn.execute(
            "INSERT INTO bounties (name, system_prompt, prompt_sha256, seed, base_fee, growth_bps, fee_cap, "
            "status, is_demo, commitment, commitment_sha256, config_sha256) "
            "VALUES (:n, :p, :h, :s, :b, :g, :c, 'active', :d, :doc, :ch, :cfg) RETURNING id",
            {
                "n": name,
                "p": system_prompt,
                "h": digest,
                "s": seed,
                "b": base_fee,
                "g": growth_bps,
                "c": fee_cap,
                "d": is_demo,
                "doc": document,
                "ch": committed,
                "cfg": commitment.config_sha256(app),
            },
        )  # fmt: skip
    ).scalar_one()
    # Attempt numbers come from a sequence: taking one never locks a row another payer needs.
    await conn.execute(f"CREATE SEQUENCE {sequence_name(bounty_id)} MINVALUE 0 START 0")
    if seed > 0:
        source = await app.accounts.get(conn, seed_from)
        pool = await app.accounts.get(conn, ledger.PRIZE_POOL, bounty_id)
        await ledger.transfer(conn, f"seed:{bounty_id}", "seed", [(source, -seed), (pool, seed)])
    bounty = await get_bounty(conn, bounty_id)

    await announce(
        conn,
        "round_started",
        f"New round: {name}",
        f"Prize pool {usdc(seed, demo=is_demo)}. First attempt costs {usdc(base_fee, demo=is_demo)}.\n"
        f"Commitment (SHA-256 of everything that decides a win: the prompt, the guardian, its tools, "
        f"the memory settings; shown in full when the round ends): {committed}",
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
