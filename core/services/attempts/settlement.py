"""Where an attempt's fee ends: split once the guardian has answered, or back to its payer.

A paid fee waits in escrow while the guardian answers. The answer settles it: the split of
core/rules.py (prize pool, staking pool, buyback reserve, operations), in one transfer keyed
``settle:<attempt>``. A refund of a pending attempt takes it back from escrow (``refund:<attempt>``).
Either happens once: both move the attempt out of ``pending`` in the same statement. So a refund never
takes back money from a pool that may have been shared or spent meanwhile; and a round that ends
settles its pending attempts first (``refund_pending``), so nothing is left waiting on an ended round.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core import ledger
from core.db import Conn, locks
from core.db.batch import arrays
from core.db.locks import Lock
from core.errors import InvalidArgument, RoundNotActive
from core.money import usdc
from core.ports.guardian import Verdict
from core.rules import split_payment
from core.services import rounds
from core.services.teams.pool import payee_legs

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)

SETTLE_KIND = "attempt_settled"


async def split_legs(app: App, conn: Conn, bounty_id: int, fee: int) -> list[tuple[int, int]]:
    """(account id, amount) of one settlement: escrow out, the split in."""
    split = split_payment(fee)
    accounts = app.accounts
    return [
        ((await accounts.get(conn, ledger.ATTEMPT_ESCROW)).id, -fee),
        ((await accounts.get(conn, ledger.PRIZE_POOL, bounty_id)).id, split.prize),
        ((await accounts.get(conn, ledger.STAKING_POOL)).id, split.staking),
        ((await accounts.get(conn, ledger.BUYBACK_RESERVE)).id, split.buyback),
        ((await accounts.get(conn, ledger.OPERATIONS)).id, split.operations),
    ]


# The answers of many attempts at once (core/db/batch), each settled in the same statement: the
# attempt leaves ``pending`` and its fee leaves escrow, or neither (refunded meanwhile). A rejection
# moves money only between the game's own accounts, so its commit does not wait for the disk: lost in
# a database crash, it leaves the attempt pending with its fee in escrow, which the recovery refunds.
_SETTLE = (
    "WITH v AS (SELECT * FROM unnest(CAST(:id AS bigint[]), CAST(:s AS text[]), CAST(:r AS text[]), "
    "  CAST(:why AS text[]), CAST(:g AS text[]), CAST(:now AS timestamptz[])) AS v(id, s, r, why, g, now)), "
    "up AS (UPDATE attempts a SET status = v.s, reply = v.r, verdict_reason = v.why, guardian = v.g, "
    "  finished_at = v.now FROM v WHERE a.id = v.id AND a.status = 'pending' RETURNING a.id), "
    "t AS (INSERT INTO transfers (idempotency_key, kind) SELECT 'settle:' || up.id, :kind FROM up "
    "  RETURNING id, idempotency_key), "
    "e AS (INSERT INTO entries (transfer_id, account_id, amount) SELECT t.id, l.acc, l.amt "
    "  FROM unnest(CAST(:leg_of AS bigint[]), CAST(:acc AS bigint[]), CAST(:amt AS bigint[])) AS l(attempt, acc, amt) "
    "  JOIN t ON t.idempotency_key = 'settle:' || l.attempt WHERE l.amt <> 0 RETURNING 1) "
    "SELECT up.id FROM up{async_commit}"
)
_SETTLE_NOW = _SETTLE.format(async_commit="")
_SETTLE_LAZY = _SETTLE.format(
    async_commit=", (SELECT set_config('synchronous_commit', 'off', true)) AS lazy_commit"
)


async def _settle_many(conn: Conn, items: Sequence[tuple], lazy: bool) -> list[bool]:
    """items: (attempt id, status, reply, reason, provider, now, legs); True for each one settled now."""
    params = arrays(items, ("id", "s", "r", "why", "g", "now"))
    legs = [(item[0], acc, amt) for item in items for acc, amt in item[6]]
    params.update(arrays(legs, ("leg_of", "acc", "amt")), kind=SETTLE_KIND)
    rows = (await conn.execute(_SETTLE_LAZY if lazy else _SETTLE_NOW, params)).all()
    settled = {row.id for row in rows}
    return [item[0] in settled for item in items]


async def settle_rejections(conn: Conn, items: Sequence[tuple]) -> list[bool]:
    return await _settle_many(conn, items, lazy=True)


async def settle(
    app: App, conn: Conn, attempt_id: int, bounty_id: int, fee: int, status: str, verdict: Verdict
) -> bool:
    """Inside the caller's transaction: store the answer and split the fee; False if the attempt was
    no longer pending (refunded meanwhile)."""
    legs = await split_legs(app, conn, bounty_id, fee)
    item = (attempt_id, status, verdict.reply, verdict.reason, verdict.provider, app.clock(), legs)
    return (await _settle_many(conn, [item], lazy=False))[0]


# --- refunds ---


async def refund_attempt(
    app: App, attempt_id: int, reason: str, *, allowed: tuple[str, ...] = ("pending",)
) -> bool:
    """Give the payer back the whole fee, once; False if the attempt is not in an ``allowed`` state.
    A pending attempt's fee comes back from escrow. A settled one (a moderator's refund, while its
    round is open) comes back from the round's prize pool and operations (core/services/admin)."""
    async with app.uow() as uow:
        return await refund_in(app, uow.conn, attempt_id, reason, allowed)


async def refund_in(
    app: App, conn: Conn, attempt_id: int, reason: str, allowed: tuple[str, ...]
) -> bool:
    bounty_id = (
        await conn.execute("SELECT bounty_id FROM attempts WHERE id = :id", {"id": attempt_id})
    ).scalar_one_or_none()
    if bounty_id is None:
        return False
    # The round first (the lock order), alone when a settled fee comes back out of its pools.
    await locks.xact(conn, Lock.ROUND, bounty_id, shared=allowed == ("pending",))
    row = (
        await conn.execute(
            "SELECT status, fee, payer_account_id, quote_id FROM attempts WHERE id = :id FOR UPDATE",
            {"id": attempt_id},
        )
    ).one()
    if row.status not in allowed:
        return False
    if row.status != "pending" and not (await rounds.get_bounty(conn, bounty_id)).open:
        raise RoundNotActive("That round has ended and its pool was shared: it takes no refunds.")
    await conn.execute(
        "UPDATE attempts SET status = 'refunded', verdict_reason = :why, finished_at = :now WHERE id = :id",
        {"why": reason, "now": app.clock(), "id": attempt_id},
    )
    payer = app.accounts.known(row.payer_account_id) or await ledger.account_by_id(
        conn, row.payer_account_id
    )
    taken = await _take_back(app, conn, bounty_id, attempt_id, row.quote_id, payer)
    back = await payee_legs(app, conn, payer, row.fee)
    await ledger.transfer(conn, f"refund:{attempt_id}", "refund", [*taken, *back], memo=reason)
    return True


# Where a settled part can come back from, and the lock that keeps that account from being spent
# meanwhile (a distribution shares the staking pool; a buyback spends the reserve).
_SPENT_BY = {ledger.STAKING_POOL: Lock.STAKING_DISTRIBUTION, ledger.BUYBACK_RESERVE: Lock.BUYBACK}


async def _take_back(
    app: App, conn: Conn, bounty_id: int, attempt_id: int, quote_id: str, payer: ledger.AccountRef
) -> list[tuple[ledger.AccountRef, int]]:
    """Where the fee is now, taken back. While the attempt waited for its answer: from escrow. Once
    settled (a moderator's refund, the round open and held alone): each part from the account it went
    to when that account still holds it (the round's pool; the staking pool and the buyback reserve,
    held against a distribution or a buyback meanwhile), else from operations. Refused when operations
    cannot carry what is left. (Attempts paid before escrow existed were split at payment.)"""
    rows = (
        await conn.execute(
            "SELECT e.account_id, a.kind, SUM(e.amount) AS amount FROM entries e "
            "JOIN transfers t ON t.id = e.transfer_id JOIN accounts a ON a.id = e.account_id "
            "WHERE t.idempotency_key IN (:paid, :settled) AND e.account_id <> :payer "
            "GROUP BY e.account_id, a.kind ORDER BY a.kind",
            {"paid": f"attempt:{quote_id}", "settled": f"settle:{attempt_id}", "payer": payer.id},
        )
    ).all()
    bounty = await rounds.get_bounty(conn, bounty_id)
    legs: list[tuple[ledger.AccountRef, int]] = []
    house = 0
    for r in rows:
        part = int(r.amount)
        if part == 0:
            continue
        account = await ledger.account_by_id(conn, r.account_id)
        if r.kind == ledger.ATTEMPT_ESCROW or (r.kind == ledger.PRIZE_POOL and bounty.open):
            legs.append((account, -part))
            continue
        if r.kind in _SPENT_BY:
            await locks.xact(conn, _SPENT_BY[r.kind])
            if await ledger.balance(conn, account) >= part:
                legs.append((account, -part))
                continue
        house += part
    if house:
        operations = await app.accounts.get(conn, ledger.OPERATIONS)
        held = await ledger.balance(conn, operations)
        if held < house:
            raise InvalidArgument(
                f"Operations holds {usdc(held)}, less than the {usdc(house)} this refund takes from it."
            )
        legs.append((operations, -house))
    return legs


async def refund_pending(
    app: App, conn: Conn, bounty_id: int, reason: str, *, but: int | None = None
) -> int:
    """Inside a transaction holding the round alone: refund every attempt of the round still waiting
    for its answer (but ``but``); their answers, arriving later, are kept out. Returns how many."""
    ids = (
        (
            await conn.execute(
                "SELECT id FROM attempts WHERE bounty_id = :b AND status = 'pending' "
                "AND id IS DISTINCT FROM :but ORDER BY id",
                {"b": bounty_id, "but": but},
            )
        )
        .scalars()
        .all()
    )
    for attempt_id in ids:
        await refund_in(app, conn, attempt_id, reason, ("pending",))
    return len(ids)


async def recover_stale_attempts(app: App) -> list[int]:
    """Refund attempts left pending past the guardian timeout (a crash or kill between payment and
    answer), and give back attempt numbers a crashed payment took. Run at start and every minute."""
    cutoff = app.clock() - timedelta(seconds=app.settings.GUARDIAN_TIMEOUT_SECONDS + 30)
    async with app.db.autocommit() as conn:
        ids = (
            (
                await conn.execute(
                    "SELECT id FROM attempts WHERE status = 'pending' AND created_at < :c ORDER BY id",
                    {"c": cutoff},
                )
            )
            .scalars()
            .all()
        )
    refunded = []
    for attempt_id in ids:
        if await refund_attempt(
            app, attempt_id, "the attempt was interrupted before the guardian answered"
        ):
            refunded.append(attempt_id)
    await repair_numbers(app)
    return refunded


_NUMBERS = (
    "SELECT b.id, pg_sequence_last_value(CAST('bounty_attempt_numbers_' || b.id AS regclass)) AS last, "
    "(SELECT count(*) FROM attempts a WHERE a.bounty_id = b.id) AS used, "
    "(SELECT count(*) FROM attempt_numbers_free f WHERE f.bounty_id = b.id) AS free "
    "FROM bounties b WHERE b.status IN ('active', 'paused')"
)


async def repair_numbers(app: App) -> int:
    """Every number the round's sequence handed out was paid or is free for the next payment, except
    one a payment took when the database server crashed under it: give such numbers back. Returns how
    many. Decided holding the round alone, so no payment is between taking a number and paying it."""
    repaired = 0
    async with app.db.autocommit() as conn:
        rounds_ = (await conn.execute(_NUMBERS)).all()
    for r in rounds_:
        if r.last is None or r.used + r.free == r.last + 1:
            continue
        async with app.uow() as uow:
            conn = uow.conn
            await locks.xact(conn, Lock.ROUND, r.id)
            found = await conn.execute(
                "INSERT INTO attempt_numbers_free (bounty_id, number) SELECT CAST(:b AS bigint), g "
                "FROM generate_series(0, pg_sequence_last_value(CAST('bounty_attempt_numbers_' || CAST(CAST(:b AS bigint) AS text) AS regclass))) g "
                "WHERE NOT EXISTS (SELECT 1 FROM attempts a WHERE a.bounty_id = CAST(:b AS bigint) AND a.number = g) "
                "ON CONFLICT DO NOTHING RETURNING number",
                {"b": r.id},
            )
            gaps = [row.number for row in found.all()]
        if gaps:
            log.warning("round %s: attempt numbers %s were taken by payments that never happened; "
                        "given back", r.id, gaps[:20])  # fmt: skip
            repaired += len(gaps)
    return repaired


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
