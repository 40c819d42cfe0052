"""The game's money promises, checked on a live database by ``bounty check``: nothing below zero, no
money where nobody can reach it, attempts settled once, no refund after a round's pool was shared,
and the fee advanced only by paid attempts. The ledger's own invariants are ``core.ledger``'s; the
token's are ``core.services.token.checks``'."""

from __future__ import annotations

from core import ledger
from core.db import Conn, locks
from core.db.locks import Lock
from core.ledger import CheckResult

# The outside world's side of the ledger: money that entered the game (deposits, grants, demo
# credits, seeds) is a debit here, so these are below zero by construction.
OUTSIDE = (ledger.TREASURY, ledger.GRANTS, ledger.DEMO_FAUCET)


async def _count(conn: Conn, sql: str, params: dict | None = None) -> int:
    return int((await conn.execute(sql, params or {})).scalar_one())


async def check_money_promises(conn: Conn) -> list[CheckResult]:
    results: list[CheckResult] = []

    below = (
        await conn.execute(
            "SELECT a.kind, a.owner_id, SUM(e.amount) AS balance FROM accounts a "
            "JOIN entries e ON e.account_id = a.id WHERE a.kind <> ALL(:outside) "
            "GROUP BY a.id, a.kind, a.owner_id HAVING SUM(e.amount) < 0",
            {"outside": list(OUTSIDE)},
        )
    ).all()
    results.append(
        CheckResult(
            "no account of any kind below zero (prize, staking, buyback, operations, escrow included)",
            not below,
            ", ".join(f"{r.kind}#{r.owner_id}: {r.balance}" for r in below[:5]) or "none",
        )
    )

    dead_pools = await _count(
        conn,
        "SELECT count(*) FROM accounts a JOIN teams t ON t.id = a.owner_id "
        "WHERE a.kind = :k AND t.disbanded_at IS NOT NULL AND a.balance <> 0",
        {"k": ledger.TEAM_POOL},
    )
    results.append(
        CheckResult("no money in a disbanded team's pool", dead_pools == 0, f"{dead_pools} pools")
    )

    orphans = await _count(
        conn,
        "SELECT count(*) FROM accounts a WHERE a.kind = :k AND a.balance <> 0 "
        "AND NOT EXISTS (SELECT 1 FROM player_identities i WHERE i.player_id = a.owner_id)",
        {"k": ledger.PLAYER},
    )
    results.append(
        CheckResult(
            "no money on a player with no identity left (joined away or deleted)",
            orphans == 0,
            f"{orphans} players",
        )
    )

    ended_pools = (
        await conn.execute(
            "SELECT b.id, SUM(e.amount) AS left_over FROM bounties b "
            "JOIN accounts a ON a.kind = :k AND a.owner_id = b.id JOIN entries e ON e.account_id = a.id "
            "WHERE b.status IN ('won', 'expired') GROUP BY b.id HAVING SUM(e.amount) <> 0",
            {"k": ledger.PRIZE_POOL},
        )
    ).all()
    results.append(
        CheckResult(
            "an ended round's pool was shared to the unit",
            not ended_pools,
            ", ".join(f"round #{r.id}: {r.left_over}" for r in ended_pools) or "none",
        )
    )

    # The game's own times on both sides (the refund's and the end's, both from the game's clock):
    # the database server's clock may differ from the bots'.
    late_refunds = await _count(
        conn,
        "SELECT count(*) FROM attempts a JOIN bounties b ON b.id = a.bounty_id "
        "WHERE a.status = 'refunded' AND b.ended_at IS NOT NULL AND a.finished_at > b.ended_at "
        "AND EXISTS (SELECT 1 FROM transfers t WHERE t.idempotency_key = 'refund:' || a.id)",
    )
    results.append(
        CheckResult("no refund after a round ended", late_refunds == 0, f"{late_refunds} refunds")
    )

    # Escrow holds exactly the fees of attempts still waiting for their answer.
    escrow = (
        await conn.execute(
            "SELECT (SELECT COALESCE(SUM(e.amount), 0) FROM entries e JOIN accounts a ON a.id = e.account_id "
            "  WHERE a.kind = :k) AS held, "
            "(SELECT COALESCE(SUM(x.fee), 0) FROM attempts x WHERE x.status = 'pending' AND EXISTS ("
            "  SELECT 1 FROM transfers t JOIN entries e ON e.transfer_id = t.id JOIN accounts a ON a.id = e.account_id "
            "  WHERE t.idempotency_key = 'attempt:' || x.quote_id AND a.kind = :k)) AS pending",
            {"k": ledger.ATTEMPT_ESCROW},
        )
    ).one()
    results.append(
        CheckResult(
            "escrow holds exactly the fees of attempts awaiting an answer",
            escrow.held == escrow.pending,
            f"escrow {escrow.held}, pending fees {escrow.pending}",
        )
    )

    unsettled = await _count(
        conn,
        "SELECT count(*) FROM attempts x WHERE x.status IN ('rejected', 'won', 'late') "
        "AND EXISTS (SELECT 1 FROM transfers t JOIN entries e ON e.transfer_id = t.id "
        "  JOIN accounts a ON a.id = e.account_id WHERE t.idempotency_key = 'attempt:' || x.quote_id "
        "  AND a.kind = :k) "
        "AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.idempotency_key = 'settle:' || x.id)",
        {"k": ledger.ATTEMPT_ESCROW},
    )
    results.append(
        CheckResult(
            "every answered attempt's fee was split", unsettled == 0, f"{unsettled} unsettled"
        )
    )

    results.append(await _numbers(conn))
    return results


async def _numbers(conn: Conn) -> CheckResult:
    """Every attempt number an open round handed out was paid, or is free for the next payment:
    the fee advanced only with paid attempts. Looked at holding the round alone for a moment, so no
    payment is between taking a number and paying it."""
    gaps: list[str] = []
    rounds = (
        (
            await conn.execute(
                "SELECT id FROM bounties WHERE status IN ('active', 'paused') ORDER BY id"
            )
        )
        .scalars()
        .all()
    )
    for bounty_id in rounds:
        async with conn.transaction():
            await locks.xact(conn, Lock.ROUND, bounty_id)
            row = (
                await conn.execute(
                    "SELECT pg_sequence_last_value(CAST('bounty_attempt_numbers_' || CAST(CAST(:b AS bigint) AS text) AS regclass)) AS last, "
                    "(SELECT count(*) FROM attempts WHERE bounty_id = CAST(:b AS bigint)) AS used, "
                    "(SELECT count(*) FROM attempt_numbers_free WHERE bounty_id = CAST(:b AS bigint)) AS free, "
                    "(SELECT count(*) FROM attempts a JOIN attempt_numbers_free f "
                    "  ON f.bounty_id = a.bounty_id AND f.number = a.number WHERE a.bounty_id = CAST(:b AS bigint)) AS both_",
                    {"b": bounty_id},
                )
            ).one()
        handed = 0 if row.last is None else row.last + 1
        if row.used + row.free != handed or row.both_:
            gaps.append(
                f"round #{bounty_id}: {handed} handed out, {row.used} paid, {row.free} free"
            )
    return CheckResult(
        "the fee advanced only with paid attempts (no attempt number lost)",
        not gaps,
        "; ".join(gaps) or "none",
    )
