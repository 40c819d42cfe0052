"""Revenue staking (SPEC §6), non-custodial: a stake commits tokens the wallet holds for 30, 60 or
90 days; each UTC month's staking pool is shared once among the positions of that month.

The month's arithmetic (``share_month``) is pure and integer: the distributable pool is split 20/30/50 %
to the tiers (floored), inside a tier by amount × days staked in the month (floored). What no position
receives — an empty tier, a forfeited share (holdings no longer cover the position), every rounding
remainder — stays in the pool and is carried into the next month, so rewards + carry == pool always.

A position counts from its start day to its unlock day (earning stops when the lock ends; /unstake then
frees the tokens for a new stake), and earns for a day only if its wallet was seen holding it that
day: the holdings reads of the day (every few minutes, core/services/token/holdings.py) all showed at
least what the player's stakes on that wallet commit, oldest stake first, and the wallet was the
player's linked one all day. So the same tokens moved between wallets never earn two shares of one day
(they are never in two wallets at every read of a day), and tokens sold in the middle of a lock stop
earning that day, not only if they are gone when the month is shared. A day no read saw counts for
nobody. The pool of month M is everything that entered the staking pool before M ended, less every
reward paid so far; months are distributed in order, each once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.db import Conn, locks
from core.db.locks import Lock
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.money import usdc
from core.rules import BPS
from core.services import notices
from core.services.audit import audit_line as audit
from core.services.players import ensure_player
from core.services.token import holdings as holdings_
from core.services.token.common import ChainUnavailable, Month, tokens, when

if TYPE_CHECKING:
    from core.app import App

LOCKS = (30, 60, 90)
TIER_BPS = {30: 2_000, 60: 3_000, 90: 5_000}
REWARD_KIND = "staking_reward"


# --- the month's arithmetic ---


@dataclass(frozen=True)
class Position:
    stake_id: int
    player_id: int
    lock_days: int
    amount: int
    days: int  # of the month its wallet was seen holding it: the days it earns for
    covered: bool = True  # False: its whole share is forfeited (carried over)
    staked_days: int = 0  # of the month it was staked (for the player's notice)

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


async def _stakes_in(conn: Conn, ids: list[int]) -> list[StakeRow]:
    rows = (
        await conn.execute(
            "SELECT id, amount, lock_days, started_at, unlocks_at, unstaked_at FROM stakes "
            "WHERE id = ANY(:ids)",
            {"ids": ids},
        )
    ).all()
    return [StakeRow(*r) for r in rows]


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


async def month_positions(conn: Conn, month: Month, *, until: date | None = None) -> list[Position]:
    """Stakes overlapping the month, each with the days of the month its wallet was seen holding it
    (up to ``until``, exclusive, for a month still running)."""
    last = min(month.end_day, until) if until else month.end_day
    rows = (
        await conn.execute(
            "SELECT s.id, s.player_id, s.wallet_address, s.lock_days, s.amount, s.started_at, s.unlocks_at, "
            "s.unstaked_at FROM stakes s WHERE s.started_at < :end AND s.unlocks_at > :start "
            "ORDER BY s.player_id, s.id",
            {"start": month.start, "end": month.end},
        )
    ).all()
    if not rows:
        return []
    wallets = sorted({r.wallet_address for r in rows})
    lows = {
        (r.address, r.day): r.low
        for r in (
            await conn.execute(
                "SELECT address, day, low FROM holding_days WHERE address = ANY(:w) "
                "AND day >= :first AND day < :last",
                {"w": wallets, "first": month.first_day, "last": last},
            )
        ).all()
    }
    links = (
        await conn.execute(
            "SELECT player_id, address, verified_at, unlinked_at FROM wallets WHERE address = ANY(:w)",
            {"w": wallets},
        )
    ).all()
    positions = []
    for r in rows:
        first = max(r.started_at.astimezone(UTC).date(), month.first_day)
        end = min(r.unlocks_at.astimezone(UTC).date(), last)
        staked = covered = 0
        for offset in range(max(0, (end - first).days)):
            day = first + timedelta(days=offset)
            staked += 1
            if _seen_holding(r, day, rows, lows, links):
                covered += 1
        if staked:
            positions.append(
                Position(r.id, r.player_id, r.lock_days, r.amount, covered, staked_days=staked)
            )
    return positions


def _linked(player_id: int, address: str, day: date, links) -> bool:
    """The wallet was this player's linked wallet that day (from the day of the link, to the day
    before its unlink): on any one day only one player has it, so only their stakes count."""
    return any(
        link.player_id == player_id
        and link.address == address
        and link.verified_at.astimezone(UTC).date() <= day
        and (link.unlinked_at is None or link.unlinked_at.astimezone(UTC).date() > day)
        for link in links
    )


def _seen_holding(stake, day: date, stakes, lows, links) -> bool:
    """The stake's wallet was seen holding, all ``day``, what this player's stakes on it commit up to
    and including this one (oldest first)."""
    low = lows.get((stake.wallet_address, day))
    if low is None or not _linked(stake.player_id, stake.wallet_address, day, links):
        return False
    committed = 0
    for other in stakes:  # the player's stakes on this wallet that day, oldest first
        if other.player_id != stake.player_id or other.wallet_address != stake.wallet_address:
            continue
        if not (
            other.started_at.astimezone(UTC).date() <= day < other.unlocks_at.astimezone(UTC).date()
        ):
            continue
        committed += other.amount
        if other.id == stake.id:
            break
    return committed <= low


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
    """Share ``month``'s pool once, by the days each stake's wallet was seen holding it (the
    holdings read during the month; nothing is read from the chain now)."""
    now = app.clock()
    if month.end > now:
        raise InvalidArgument(
            f"{month.label} has not ended yet: a month is distributed once it is over "
            f"(from {when(month.end)})."
        )
    async with app.uow() as uow:
        conn = uow.conn
        await locks.xact(conn, Lock.STAKING_DISTRIBUTION)
        done = await _recorded(conn, month)
        if done is not None:
            return done
        await _refuse_out_of_order(conn, month)
        positions = await month_positions(conn, month)
        accrued_to_end, paid = await pool_before(app, conn, month.end)
        accrued_to_start, _ = await pool_before(app, conn, month.start)
        pool = accrued_to_end - paid
        accrued = accrued_to_end - accrued_to_start
        result = share_month(pool, positions)
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
                f"Stake #{s.position.stake_id}: {usdc(s.paid)} for {s.position.days} days"
                + (
                    f" ({s.position.staked_days - s.position.days} of its {s.position.staked_days} days "
                    "this month your wallet was not seen holding it, and those earned nothing)"
                    if s.position.days < s.position.staked_days
                    else ""
                )
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
        # The days seen so far (today's too, if today's reads covered it) and the days still to come,
        # as if every one of them is seen: what the month would pay with today's pool.
        today = now.astimezone(UTC).date()
        seen = await month_positions(conn, month, until=today + timedelta(days=1))
        stakes_ = {r.id: r for r in mine} | {
            r.id: r for r in await _stakes_in(conn, [p.stake_id for p in seen])
        }
        positions = []
        for p in seen:
            row = stakes_[p.stake_id]
            ahead = (min(row.unlocks_at.astimezone(UTC).date(), month.end_day) - today).days - 1
            positions.append(replace(p, days=p.days + max(0, ahead)))
        result = share_month(pool_now, positions)
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
    days = {p.stake_id: p.days for p in positions if p.player_id == player.id}
    return Overview(
        mine, days, held, month, pool_now, estimate, [(r.month, r.stake_id, r.share) for r in last]
    )
