"""Revenue staking (SPEC §6), non-custodial: a stake commits tokens the wallet holds for 30, 60 or
90 days; each UTC month's staking pool is shared once among the positions of that month.

The month's arithmetic (``share_month``) is pure and integer: the distributable pool is split 20/30/50 %
to the tiers (floored), inside a tier by amount × days staked in the month (floored). What no position
receives — an empty tier, a forfeited share (holdings no longer cover the position), every rounding
remainder — stays in the pool and is carried into the next month, so rewards + carry == pool always.

A position counts from its start day to its unlock day (earning stops when the lock ends; /unstake then
frees the tokens for a new stake). The pool of month M is everything that entered the staking pool
before M ended, less every reward paid so far; months are distributed in order, each once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core import ledger
from core.actors import Actor
from core.db import Conn
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.money import usdc
from core.ports.solana import SolanaUnavailable
from core.rules import BPS
from core.services import notices
from core.services.players import ensure_player
from core.services.token import holdings as holdings_
from core.services.token.common import ChainUnavailable, Month, audit, overlap_days, tokens, when

if TYPE_CHECKING:
    from core.app import App

LOCKS = (30, 60, 90)
TIER_BPS = {30: 2_000, 60: 3_000, 90: 5_000}
REWARD_KIND = "staking_reward"
LOCK_KEY = (7, 2)  # advisory lock: one distribution at a time


# --- the month's arithmetic ---


@dataclass(frozen=True)
class Position:
    stake_id: int
    player_id: int
    lock_days: int
    amount: int
    days: int  # staked in the month
    covered: bool = True  # the wallet still holds it at distribution time

    @property
    def weight(self) -> int:
        return self.amount * self.days


@dataclass(frozen=True)
class Share:
    position: Position
    share: int  # what the position earned (paid when covered)
    paid: int  # credited: share, or 0 when forfeited


@dataclass(frozen=True)
class Tier:
    lock_days: int
    amount: int  # the tier's part of the pool
    weight: int
    paid: int
    forfeited: int
    remainder: int  # floor remainders (or the whole tier when nobody staked in it)


@dataclass(frozen=True)
class MonthShares:
    pool: int
    tiers: tuple[Tier, ...]
    shares: tuple[Share, ...]
    tier_remainder: int  # the pool's own floor remainder when split into tiers

    @property
    def rewards(self) -> int:
        return sum(s.paid for s in self.shares)

    @property
    def carry(self) -> int:
        return self.pool - self.rewards


def share_month(pool: int, positions: Sequence[Position]) -> MonthShares:
    """Share a month's pool among its positions; every unit is paid or carried over."""
    shares: list[Share] = []
    tiers: list[Tier] = []
    split = {lock: max(0, pool) * bps // BPS for lock, bps in TIER_BPS.items()}
    for lock in LOCKS:
        members = [p for p in positions if p.lock_days == lock and p.weight > 0]
        weight = sum(p.weight for p in members)
        amount = split[lock]
        if weight == 0:
            tiers.append(Tier(lock, amount, 0, 0, 0, amount))
            continue
        paid = forfeited = 0
        for p in members:
            share = amount * p.weight // weight
            shares.append(Share(p, share, share if p.covered else 0))
            if p.covered:
                paid += share
            else:
                forfeited += share
        tiers.append(Tier(lock, amount, weight, paid, forfeited, amount - paid - forfeited))
    return MonthShares(pool, tuple(tiers), tuple(shares), max(0, pool) - sum(split.values()))


# --- stakes ---


@dataclass(frozen=True)
class StakeRow:
    id: int
    amount: int
    lock_days: int
    started_at: datetime
    unlocks_at: datetime
    unstaked_at: datetime | None


async def _stakes(conn: Conn, player_id: int, *, active_only: bool = False) -> list[StakeRow]:
    rows = (
        await conn.execute(
            (
                "SELECT id, amount, lock_days, started_at, unlocks_at, unstaked_at FROM stakes WHERE player_id = :p"
                + (" AND unstaked_at IS NULL" if active_only else "")
                + " ORDER BY id"
            ),
            {"p": player_id},
        )
    ).all()
    return [StakeRow(*r) for r in rows]


async def stake(app: App, actor: Actor, amount: int, lock_days: int) -> tuple[StakeRow, int, int]:
    """Commit ``amount`` base units for ``lock_days``; returns the stake, all active stakes, holdings."""
    if lock_days not in LOCKS:
        raise InvalidArgument("The lock is 30, 60 or 90 days.")
    if amount <= 0:
        raise InvalidArgument("Stake more than zero.")
    now = app.clock()
    async with app.uow() as uow:
        player = await ensure_player(uow.conn, actor)
        held = await holdings_.cached(uow.conn, player.id)
    if held.address is None:
        raise NotFound(
            "Link your wallet first (/wallet link <address>): stakes are tokens your wallet holds."
        )
    held = await holdings_.refresh_or_known(app, held.address)  # a stake is rare: read it now
    if held.amount is None:
        raise ChainUnavailable("Your wallet's holdings could not be read yet; try again shortly.")
    async with app.uow() as uow:
        conn = uow.conn
        # Serialise this player's stakes so two at once cannot both fit under the holdings.
        await conn.execute("SELECT id FROM players WHERE id = :p FOR UPDATE", {"p": player.id})
        staked = (
            await conn.execute(
                (
                    "SELECT COALESCE(SUM(amount), 0) FROM stakes WHERE player_id = :p "
                    "AND unstaked_at IS NULL"
                ),
                {"p": player.id},
            )
        ).scalar_one()
        if staked + amount > held.amount:
            free = max(0, held.amount - staked)
            raise InvalidArgument(
                f"Your wallet holds {tokens(held.amount, app.settings)} and {tokens(staked, app.settings)} are "
                f"staked already: you can stake at most {tokens(free, app.settings)} more."
            )
        unlocks = now + timedelta(days=lock_days)
        row = (
            await conn.execute(
                (
                    "INSERT INTO stakes (player_id, wallet_address, amount, lock_days, started_at, unlocks_at) "
                    "VALUES (:p, :w, :a, :l, :s, :u) RETURNING id, amount, lock_days, started_at, unlocks_at, unstaked_at"
                ),
                {
                    "p": player.id,
                    "w": held.address,
                    "a": amount,
                    "l": lock_days,
                    "s": now,
                    "u": unlocks,
                },
            )
        ).one()
        await audit(
            conn,
            actor=f"{actor.label} ({player.display_name})",
            player_id=player.id,
            action="stake",
            target=f"stake #{row.id}",
            details={"amount": amount, "lock_days": lock_days},
        )
    return StakeRow(*row), staked + amount, held.amount


async def unstake(app: App, actor: Actor, stake_id: int) -> StakeRow:
    """End a stake whose lock is over."""
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        player = await ensure_player(conn, actor)
        row = (
            await conn.execute(
                (
                    "SELECT id, player_id, amount, lock_days, started_at, unlocks_at, unstaked_at FROM stakes "
                    "WHERE id = :id FOR UPDATE"
                ),
                {"id": stake_id},
            )
        ).first()
        if row is None or row.player_id != player.id:
            raise NotFound(f"You have no stake #{stake_id}. /staking lists yours.")
        if row.unstaked_at is not None:
            raise InvalidArgument(f"Stake #{stake_id} was already unstaked.")
        if row.unlocks_at > now:
            raise NotPermitted(f"Stake #{stake_id} is locked until {when(row.unlocks_at)}.")
        await conn.execute(
            "UPDATE stakes SET unstaked_at = :now WHERE id = :id", {"now": now, "id": stake_id}
        )
        await audit(
            conn,
            actor=f"{actor.label} ({player.display_name})",
            player_id=player.id,
            action="unstake",
            target=f"stake #{stake_id}",
            details={"amount": row.amount},
        )
    return StakeRow(row.id, row.amount, row.lock_days, row.started_at, row.unlocks_at, now)


# --- the pool ---


async def pool_before(app: App, conn: Conn, end: datetime) -> tuple[int, int]:
    """(everything that entered the staking pool before ``end``, every reward paid so far)."""
    acc = await app.accounts.get(conn, ledger.STAKING_POOL)
    row = (
        await conn.execute(
            (
                "SELECT CAST(COALESCE(SUM(e.amount) FILTER (WHERE t.kind <> :k AND t.created_at < :end), 0) AS bigint) AS accrued, "
                "CAST(COALESCE(-SUM(e.amount) FILTER (WHERE t.kind = :k), 0) AS bigint) AS paid "
                "FROM entries e JOIN transfers t ON t.id = e.transfer_id WHERE e.account_id = :a"
            ),
            {"a": acc.id, "k": REWARD_KIND, "end": end},
        )
    ).one()
    return row.accrued, row.paid


async def month_positions(
    conn: Conn, month: Month, *, projected_until: datetime | None = None
) -> list[dict[str, Any]]:
    """Stakes overlapping the month, with their days in it (projected to their unlock when asked)."""
    rows = (
        await conn.execute(
            (
                "SELECT s.id, s.player_id, s.wallet_address, s.lock_days, s.amount, s.started_at, s.unlocks_at, "
                "s.unstaked_at "
                "FROM stakes s WHERE s.started_at < :end AND s.unlocks_at > :start ORDER BY s.player_id, s.id"
            ),
            {"start": month.start, "end": month.end},
        )
    ).all()
    out = []
    for r in rows:
        days = overlap_days(r.started_at, r.unlocks_at, month)
        if days > 0:
            out.append(
                {
                    "id": r.id,
                    "player_id": r.player_id,
                    "wallet": r.wallet_address,
                    "lock_days": r.lock_days,
                    "amount": r.amount,
                    "days": days,
                    "active": r.unstaked_at is None,
                }
            )
    return out


def cover(
    positions: list[dict[str, Any]], held: dict[str, int], wallets: dict[int, str]
) -> list[Position]:
    """Which positions their wallet still covers: a player's still-committed stakes, oldest first,
    while their sum fits in what the stake's wallet holds (and it is still the player's linked
    wallet). Stakes already ended (unstaked after the lock) are not checked."""
    committed: dict[int, int] = defaultdict(int)
    out = []
    for p in positions:
        ok = True
        if p["active"]:
            committed[p["player_id"]] += p["amount"]
            linked = wallets.get(p["player_id"]) == p["wallet"]
            ok = linked and committed[p["player_id"]] <= held.get(p["wallet"], 0)
        out.append(Position(p["id"], p["player_id"], p["lock_days"], p["amount"], p["days"], ok))
    return out


async def _wallets_of(conn: Conn, player_ids: list[int]) -> dict[int, str]:
    rows = (
        await conn.execute(
            (
                "SELECT player_id, address FROM wallets WHERE unlinked_at IS NULL "
                "AND player_id = ANY(:ids)"
            ),
            {"ids": player_ids},
        )
    ).all()
    return {r.player_id: r.address for r in rows}


# --- distribution ---


@dataclass(frozen=True)
class Distribution:
    month: str
    accrued: int
    carried_in: int
    shares: MonthShares
    already: bool  # distributed before: nothing moved now
    distributed_by: str


async def distribute(app: App, month: Month, *, by: str) -> Distribution:
    """Share ``month``'s pool once. Holdings are read from the chain first (outside any transaction);
    if a staker's cannot be read and the cached value is old, nothing is distributed."""
    now = app.clock()
    if month.end > now:
        raise InvalidArgument(
            f"{month.label} has not ended yet: a month is distributed once it is over "
            f"(from {when(month.end)})."
        )
    async with app.uow() as uow:
        done = await _recorded(uow.conn, month)
        if done is not None:
            return done
        await _refuse_out_of_order(uow.conn, month)
        positions = await month_positions(uow.conn, month)
        wallets = await _wallets_of(
            uow.conn, sorted({p["player_id"] for p in positions if p["active"]})
        )
    for address in sorted(set(wallets.values())):
        try:
            await holdings_.refresh(app, address)
        except SolanaUnavailable:
            async with app.uow() as uow:
                known = await holdings_.of_address(uow.conn, address)
            if not known.fresh(now, app.settings):
                raise ChainUnavailable(
                    f"Solana did not answer for a staker's holdings; {month.label} was not "
                    "distributed. It will be tried again."
                ) from None
    async with app.uow() as uow:
        conn = uow.conn
        await conn.execute(
            "SELECT pg_advisory_xact_lock(:a, :b)", {"a": LOCK_KEY[0], "b": LOCK_KEY[1]}
        )
        done = await _recorded(conn, month)
        if done is not None:
            return done
        await _refuse_out_of_order(conn, month)
        positions = await month_positions(conn, month)
        wallets = await _wallets_of(
            conn, sorted({p["player_id"] for p in positions if p["active"]})
        )
        held = {a: (await holdings_.of_address(conn, a)).amount or 0 for a in set(wallets.values())}
        accrued_to_end, paid = await pool_before(app, conn, month.end)
        accrued_to_start, _ = await pool_before(app, conn, month.start)
        pool = accrued_to_end - paid
        accrued = accrued_to_end - accrued_to_start
        result = share_month(pool, cover(positions, held, wallets))
        per_player: dict[int, int] = defaultdict(int)
        for s in result.shares:
            per_player[s.position.player_id] += s.paid
        transfer_id = None
        if result.rewards > 0:
            legs = [(await app.accounts.get(conn, ledger.STAKING_POOL), -result.rewards)]
            for player_id, amount in sorted(per_player.items()):
                if amount:
                    legs.append((await app.accounts.get(conn, ledger.PLAYER, player_id), amount))
            transfer_id = await ledger.transfer(
                conn,
                f"staking:{month.label}",
                REWARD_KIND,
                legs,
                memo=f"staking rewards for {month.label}",
            )
        tiers = {
            str(t.lock_days): {
                "amount": t.amount,
                "weight": str(t.weight),
                "paid": t.paid,
                "forfeited": t.forfeited,
                "remainder": t.remainder,
            }
            for t in result.tiers
        }
        await conn.execute(
            (
                "INSERT INTO staking_distributions (month, accrued, carried_in, pool, rewards, carry, tiers, "
                "transfer_id, distributed_by) VALUES (:m, :acc, :cin, :pool, :r, :c, :t, :tid, :by)"
            ),
            {
                "m": month.label,
                "acc": accrued,
                "cin": pool - accrued,
                "pool": pool,
                "r": result.rewards,
                "c": result.carry,
                "t": {**tiers, "split_remainder": result.tier_remainder},
                "tid": transfer_id,
                "by": by,
            },
        )
        for s in result.shares:
            await conn.execute(
                (
                    "INSERT INTO staking_rewards (month, stake_id, player_id, lock_days, amount, days, share, "
                    "forfeited, forfeited_share) VALUES (:m, :s, :p, :l, :a, :d, :sh, :f, :fs)"
                ),
                {
                    "m": month.label,
                    "s": s.position.stake_id,
                    "p": s.position.player_id,
                    "l": s.position.lock_days,
                    "a": s.position.amount,
                    "d": s.position.days,
                    "sh": s.paid,
                    "f": not s.position.covered,
                    "fs": s.share - s.paid,
                },
            )
        await audit(
            conn,
            actor=by,
            action="staking.distribute",
            target=month.label,
            details={
                "pool": pool,
                "rewards": result.rewards,
                "carry": result.carry,
                "positions": len(result.shares),
            },
        )
        for player_id in sorted({s.position.player_id for s in result.shares}):
            mine = [s for s in result.shares if s.position.player_id == player_id]
            lines = [
                f"Stake #{s.position.stake_id}: {usdc(s.paid)}"
                if s.position.covered
                else f"Stake #{s.position.stake_id}: nothing (your wallet no longer held the staked tokens)"
                for s in mine
            ]
            await notices.notify(
                conn,
                player_id,
                f"Staking rewards for {month.label}",
                f"{usdc(per_player[player_id])} credited to your balance.\n" + "\n".join(lines),
                key=f"staking:{month.label}:{player_id}",
                tone="success",
            )
    return Distribution(month.label, accrued, pool - accrued, result, False, by)


async def _refuse_out_of_order(conn: Conn, month: Month) -> None:
    latest = (
        await conn.execute("SELECT max(month) FROM staking_distributions")
    ).scalar_one_or_none()
    if latest is not None and latest > month.label:
        raise InvalidArgument(
            f"{latest} is distributed already, so {month.label}'s pool was carried into it; "
            "months are distributed in order."
        )


async def _recorded(conn: Conn, month: Month) -> Distribution | None:
    row = (
        await conn.execute(
            "SELECT * FROM staking_distributions WHERE month = :m", {"m": month.label}
        )
    ).first()
    if row is None:
        return None
    rewards = (
        await conn.execute(
            (
                "SELECT stake_id, player_id, lock_days, amount, days, share, forfeited, forfeited_share "
                "FROM staking_rewards WHERE month = :m ORDER BY stake_id"
            ),
            {"m": month.label},
        )
    ).all()
    shares = tuple(
        Share(
            Position(r.stake_id, r.player_id, r.lock_days, r.amount, r.days, not r.forfeited),
            r.share + r.forfeited_share,
            r.share,
        )
        for r in rewards
    )
    tiers = tuple(
        Tier(int(k), v["amount"], int(v["weight"]), v["paid"], v["forfeited"], v["remainder"])
        for k, v in sorted(row.tiers.items(), key=lambda kv: kv[0])
        if k.isdigit()
    )
    result = MonthShares(
        row.pool,
        tuple(sorted(tiers, key=lambda t: t.lock_days)),
        shares,
        row.tiers.get("split_remainder", 0),
    )
    return Distribution(row.month, row.accrued, row.carried_in, result, True, row.distributed_by)


async def distribute_due(app: App) -> Distribution | None:
    """The beat's job: distribute last month if it is not yet."""
    month = Month.of(app.clock()).previous()
    async with app.uow() as uow:
        if await _recorded(uow.conn, month) is not None:
            return None
        latest = (
            await uow.conn.execute("SELECT max(month) FROM staking_distributions")
        ).scalar_one_or_none()
        if latest is not None and latest > month.label:
            return None
    return await distribute(app, month, by="beat")


# --- what a player sees ---


@dataclass(frozen=True)
class Overview:
    stakes: list[StakeRow]
    days_this_month: dict[int, int]
    holdings: holdings_.Holdings
    month: Month
    pool_now: int  # this month's pool so far (with what was carried in)
    estimate: int  # this player's share if the month ended with today's pool and these positions
    last_rewards: list[tuple[str, int, int]]  # month, stake id, credited


async def overview(app: App, actor: Actor) -> Overview:
    now = app.clock()
    month = Month.of(now)
    async with app.uow() as uow:
        conn = uow.conn
        player = await ensure_player(conn, actor)
        mine = await _stakes(conn, player.id)
        held = await holdings_.cached(conn, player.id)
        accrued, paid = await pool_before(app, conn, now + timedelta(seconds=1))
        pool_now = accrued - paid
        positions = await month_positions(conn, month)
        wallets = await _wallets_of(
            conn, sorted({p["player_id"] for p in positions if p["active"]})
        )
        held_by = {
            a: (await holdings_.of_address(conn, a)).amount or 0 for a in set(wallets.values())
        }
        result = share_month(pool_now, cover(positions, held_by, wallets))
        estimate = sum(s.paid for s in result.shares if s.position.player_id == player.id)
        last = (
            await conn.execute(
                (
                    "SELECT month, stake_id, share FROM staking_rewards WHERE player_id = :p "
                    "ORDER BY month DESC, stake_id LIMIT 10"
                ),
                {"p": player.id},
            )
        ).all()
    days = {p["id"]: p["days"] for p in positions if p["player_id"] == player.id}
    return Overview(
        mine, days, held, month, pool_now, estimate, [(r.month, r.stake_id, r.share) for r in last]
    )
