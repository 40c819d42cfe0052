"""Read-side services: status, balance, history, leaderboard, the round's log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.memory.stats import pattern_counts
from core.rules import apply_discount
from core.services import maintenance as maintenance_
from core.services import rounds
from core.services.meta import is_demo_install
from core.services.players import ensure_player
from core.services.token import price as price_
from core.services.token.common import next_tier, tier_bps, usd_value
from core.services.token.holdings import ask_refresh, cached

if TYPE_CHECKING:
    from core.app import App


@dataclass(frozen=True)
class Status:
    bounty: rounds.BountyRow | None
    pool: int
    attempts: int
    next_fee: int | None
    list_fee: int | None
    discount_bps: int
    deadline: datetime | None
    attempts_to_deadline: int
    patterns: tuple = ()  # the round's most used attack patterns (core.memory.stats.PatternCount)
    maintenance: maintenance_.Maintenance | None = None  # the game is in maintenance (when on)


async def status(app: App, actor: Actor) -> Status:
    async with app.uow() as uow:
        conn = uow.conn
        bounty = await rounds.current_bounty(conn)
        if bounty is None:
            return Status(None, 0, 0, None, None, 0, None, 0)
        player = await ensure_player(conn, actor)
        pool = await rounds.prize_pool(app, conn, bounty.id)
        deadline, count = await rounds.expiry_deadline(app, conn, bounty)
        next_fee = list_fee = None
        discount = 0
        if bounty.open:
            list_fee = bounty.fee(await rounds.next_attempt_number(conn, bounty.id))
            discount = await app.discounts.discount_bps(conn, player.id)
            next_fee = apply_discount(list_fee, discount)
        remaining = max(0, app.settings.ROUND_MIN_ATTEMPTS_FOR_EXPIRY - count)

        patterns = tuple(await pattern_counts(conn, bounty.id, limit=3))  # counts only, never texts
        paused = await maintenance_.state(conn)
        return Status(
            bounty, pool, count, next_fee, list_fee, discount, deadline, remaining, patterns,
            paused if paused.on else None,
        )  # fmt: skip


async def balance(app: App, actor: Actor) -> tuple[int, bool]:
    async with app.uow() as uow:
        player = await ensure_player(uow.conn, actor)
        acc = await app.accounts.get(uow.conn, ledger.PLAYER, player.id)
        amount = await ledger.balance(uow.conn, acc)
        return amount, await is_demo_install(uow.conn)


async def is_demo(app: App) -> bool:
    """Whether this game runs on demo credits (a local game seeded by `bounty run`)."""
    async with app.uow() as uow:
        return await is_demo_install(uow.conn)


@dataclass(frozen=True)
class HistoryItem:
    attempt_id: int
    bounty_name: str
    number: int
    created_at: datetime
    fee: int
    status: str
    message: str
    reply: str | None
    is_demo: bool


async def history(app: App, actor: Actor, limit: int = 10) -> list[HistoryItem]:
    async with app.uow() as uow:
        player = await ensure_player(uow.conn, actor)
        rows = (
            await uow.conn.execute(
                (
                    "SELECT a.id, b.name, a.number, a.created_at, a.fee, a.status, a.message, a.reply, b.is_demo "
                    "FROM attempts a JOIN bounties b ON b.id = a.bounty_id WHERE a.player_id = :p "
                    "ORDER BY a.id DESC LIMIT :n"
                ),
                {"p": player.id, "n": limit},
            )
        ).all()
    return [HistoryItem(*row) for row in rows]


@dataclass(frozen=True)
class Leaderboard:
    bounty: rounds.BountyRow | None
    most_attempts: list[tuple[str, int, int]]  # name, attempts, fees paid
    winners: list[tuple[str, str, int]]  # name, round, prize


async def leaderboard(app: App, limit: int = 10) -> Leaderboard:
    async with app.uow() as uow:
        conn = uow.conn
        bounty = await rounds.current_bounty(conn)
        most: list[tuple[str, int, int]] = []
        if bounty is not None:
            most = [
                (r.display_name, r.n, int(r.paid))
                for r in (
                    await conn.execute(
                        (
                            "SELECT p.display_name, count(*) AS n, SUM(a.fee) AS paid FROM attempts a "
                            "JOIN players p ON p.id = a.player_id WHERE a.bounty_id = :b AND a.status <> 'refunded' "
                            "GROUP BY p.id, p.display_name ORDER BY n DESC, paid DESC, p.id LIMIT :l"
                        ),
                        {"b": bounty.id, "l": limit},
                    )
                ).all()
            ]
        winners = [
            (r.display_name, r.name, int(r.prize or 0))
            for r in (
                await conn.execute(
                    (
                        "SELECT p.display_name, b.name, (SELECT SUM(e.amount) FROM entries e JOIN transfers t "
                        "ON t.id = e.transfer_id WHERE t.idempotency_key = 'win:' || b.id AND e.amount > 0) AS prize "
                        "FROM bounties b JOIN attempts a ON a.id = b.winner_attempt_id JOIN players p ON p.id = a.player_id "
                        "ORDER BY b.id DESC LIMIT :l"
                    ),
                    {"l": limit},
                )
            ).all()
        ]
    return Leaderboard(bounty, most, winners)


@dataclass(frozen=True)
class LogItem:
    number: int
    created_at: datetime
    player: str
    sha256: str
    status: str
    message: str | None  # only once the round has ended
    reply: str | None
    salt: str | None = None  # only once the round has ended: sha256("<salt>:<message>") == sha256


async def attempt_log(app: App) -> tuple[rounds.BountyRow | None, list[LogItem]]:
    """Every attempt of the round: time, player, SHA-256 of its text; texts once the round ends."""
    async with app.uow() as uow:
        bounty = await rounds.current_bounty(uow.conn)
        if bounty is None:
            return None, []
        rows = (
            await uow.conn.execute(
                (
                    "SELECT a.number, a.created_at, p.display_name, a.message_sha256, a.status, a.message, "
                    "a.reply, a.salt "
                    "FROM attempts a JOIN players p ON p.id = a.player_id WHERE a.bounty_id = :b ORDER BY a.number"
                ),
                {"b": bounty.id},
            )
        ).all()
    revealed = not bounty.open
    return bounty, [
        LogItem(
            r.number,
            r.created_at,
            r.display_name,
            r.message_sha256,
            r.status,
            r.message if revealed else None,
            r.reply if revealed else None,
            r.salt if revealed else None,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class TokenBalance:
    """What /balance shows of the $100Bs: the linked wallet's holdings, tier, and their USD value."""

    holdings: object  # core.services.token.holdings.Holdings
    discount_bps: int
    next_tier: tuple[int, int] | None  # (its discount, base units still needed)
    price: object  # core.services.token.price.PriceView
    usd_value: int | None  # micro-dollars


async def token_balance(app: App, actor: Actor) -> TokenBalance:

    async with app.uow() as uow:
        player = await ensure_player(uow.conn, actor)
        held = await cached(uow.conn, player.id)
        if held.address is not None and not held.fresh(app.clock(), app.settings):
            await ask_refresh(
                uow.conn, app, held.address
            )  # the worker reads it; never the RPC here
        quote = await price_.latest(uow.conn, app)
    value = None
    if held.amount is not None and quote.price is not None:
        value = usd_value(held.amount, quote.price, app.settings)
    return TokenBalance(
        held,
        tier_bps(held.amount, app.settings),
        next_tier(held.amount, app.settings),
        quote,
        value,
    )
