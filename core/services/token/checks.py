"""The token's promises, checked on a live database beside the ledger's (``bounty check``): every
deposit credited exactly once, the payouts account holding exactly the open requests, each payout's
transfers matching its status, every open payout going to its player's linked wallet, and every
staking month sharing exactly its pool."""

from __future__ import annotations

from core.db import Conn
from core.ledger import PENDING_PAYOUTS, CheckResult


async def _count(conn: Conn, sql: str, **params: object) -> int:
    return int((await conn.execute(sql, params)).scalar_one())


async def check_token_invariants(conn: Conn) -> list[CheckResult]:
    results: list[CheckResult] = []
    uncredited = await _count(
        conn,
        (
            "SELECT count(*) FROM deposits d WHERE NOT EXISTS "
            "(SELECT 1 FROM transfers t WHERE t.idempotency_key = 'deposit:' || d.signature)"
        ),
    )
    unrecorded = await _count(
        conn,
        (
            "SELECT count(*) FROM transfers t WHERE t.kind = 'deposit' AND NOT EXISTS "
            "(SELECT 1 FROM deposits d WHERE t.idempotency_key = 'deposit:' || d.signature)"
        ),
    )
    results.append(
        CheckResult(
            "every deposit was credited once",
            uncredited == 0 and unrecorded == 0,
            f"{uncredited} deposits without a credit, {unrecorded} credits without a deposit",
        )
    )

    row = (
        await conn.execute(
            (
                "SELECT (SELECT COALESCE(SUM(e.amount), 0) FROM entries e JOIN accounts a ON a.id = e.account_id "
                "        WHERE a.kind = :k) AS held, "
                "       (SELECT COALESCE(SUM(amount), 0) FROM payouts WHERE status IN ('requested','approved','sending')) "
                "        AS open"
            ),
            {"k": PENDING_PAYOUTS},
        )
    ).one()
    results.append(
        CheckResult(
            "pending payouts hold exactly the open requests",
            row.held == row.open,
            f"held {row.held}, open requests {row.open}",
        )
    )

    mismatched = await _count(
        conn,
        (
            # the keys payouts.py writes: payout:<id>:request, :paid, :reject (suffixes passed as values)
            "SELECT count(*) FROM payouts p WHERE "
            "NOT EXISTS (SELECT 1 FROM transfers t WHERE t.idempotency_key = 'payout:' || p.id || :request) "
            "OR (p.status = 'paid') <> EXISTS (SELECT 1 FROM transfers t WHERE t.idempotency_key = 'payout:' || p.id || :paid) "
            "OR (p.status = 'rejected') <> EXISTS "
            "   (SELECT 1 FROM transfers t WHERE t.idempotency_key = 'payout:' || p.id || :reject) "
            "OR (p.status = 'paid' AND p.tx_signature IS NULL)"
        ),
        request=":request",
        paid=":paid",
        reject=":reject",
    )
    results.append(
        CheckResult(
            "every payout's transfers match its status",
            mismatched == 0,
            f"{mismatched} payouts whose money is not where their status says",
        )
    )

    unlinked = await _count(
        conn,
        (
            "SELECT count(*) FROM payouts p WHERE p.status IN ('requested','approved','sending') "
            "AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.player_id = p.player_id "
            "AND w.address = p.wallet_address AND w.unlinked_at IS NULL)"
        ),
    )
    results.append(
        CheckResult(
            "every open payout goes to its player's linked wallet",
            unlinked == 0,
            f"{unlinked} open payouts to a wallet no longer linked",
        )
    )

    unshared = await _count(
        conn,
        (
            "SELECT count(*) FROM staking_distributions d WHERE d.rewards + d.carry <> d.pool "
            "OR d.rewards <> (SELECT COALESCE(SUM(r.share), 0) FROM staking_rewards r WHERE r.month = d.month)"
        ),
    )
    results.append(
        CheckResult(
            "every staking month shared exactly its pool",
            unshared == 0,
            f"{unshared} months whose rewards and carry-over do not add up",
        )
    )
    return results
