"""The double-entry ledger: every movement is a transfer whose entries add up to zero.

Guarded accounts (players, team pools) keep a balance column that a conditional UPDATE moves, so
no number of concurrent debits can take them below zero. Shared accounts (prize pools, staking,
buyback, operations, treasury...) never have a row updated by a payment: their balance is the sum of
their entries, so an attempt locks only its payer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.db import Conn
from core.errors import InsufficientFunds

GUARDED_KINDS = frozenset({"player", "team_pool"})

# Shared accounts. Owner is a bounty id for prize pools, None for platform-wide ones.
PRIZE_POOL = "prize_pool"
STAKING_POOL = "staking_pool"
BUYBACK_RESERVE = "buyback_reserve"
OPERATIONS = "operations"
TREASURY = "treasury"  # the outside world: deposits come from it, payouts and seeds go through it
GRANTS = "grants"  # moderator grants
DEMO_FAUCET = "demo_faucet"  # demo credits on a local demo installation, never real money
PENDING_PAYOUTS = "pending_payouts"
ATTEMPT_ESCROW = "attempt_escrow"  # paid fees while the guardian answers (settled or refunded once)
PLAYER = "player"
TEAM_POOL = "team_pool"


@dataclass(frozen=True)
class AccountRef:
    id: int
    kind: str
    owner_id: int | None
    guarded: bool


class AccountBook:
    """Finds or creates accounts; ids never change, so they are cached for the process's life.

    A missing account is created in the caller's transaction and cached only once that commits, so
    a cached id never points at a row that was rolled back."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int | None, str], AccountRef] = {}
        self._by_id: dict[int, AccountRef] = {}

    async def get(
        self, conn: Conn, kind: str, owner_id: int | None = None, currency: str = "USDC"
    ) -> AccountRef:
        key = (kind, owner_id, currency)
        ref = self._cache.get(key)
        if ref is not None:
            return ref
        ref = await self._create(conn, kind, owner_id, currency)
        after_commit = getattr(conn, "after_commit", None)
        if after_commit is not None:
            after_commit(lambda: self._remember(key, ref))
        return ref

    def _remember(self, key: tuple[str, int | None, str], ref: AccountRef) -> None:
        self._cache[key] = ref
        self._by_id[ref.id] = ref

    async def _create(
        self, conn: Conn, kind: str, owner_id: int | None, currency: str
    ) -> AccountRef:
        guarded = kind in GUARDED_KINDS
        # DO NOTHING, then read: an upsert's DO UPDATE would lock the account row until commit, and a
        # payment holding that lock while another (whose cache already knew the account) holds the
        # payer's row and waits to reference it deadlocks (100 concurrent first team attempts did).
        row = (
            await conn.execute(
                (
                    "INSERT INTO accounts (kind, owner_id, currency, guarded) VALUES (:k, :o, :c, :g) "
                    "ON CONFLICT (kind, owner_id, currency) DO NOTHING RETURNING id"
                ),
                {"k": kind, "o": owner_id, "c": currency, "g": guarded},
            )
        ).first()
        if row is None:
            row = (
                await conn.execute(
                    (
                        "SELECT id FROM accounts WHERE kind = :k AND owner_id IS NOT DISTINCT FROM :o "
                        "AND currency = :c"
                    ),
                    {"k": kind, "o": owner_id, "c": currency},
                )
            ).one()
        return AccountRef(row.id, kind, owner_id, guarded)

    def cached(
        self, kind: str, owner_id: int | None = None, currency: str = "USDC"
    ) -> AccountRef | None:
        """The account if this process knows it already (no database needed), else None."""
        return self._cache.get((kind, owner_id, currency))

    def known(self, account_id: int) -> AccountRef | None:
        return self._by_id.get(account_id)

    def forget(self) -> None:
        """Drop cached ids (tests that wipe the database between cases)."""
        self._cache.clear()
        self._by_id.clear()


async def transfer(
    conn: Conn,
    key: str,
    kind: str,
    legs: Sequence[tuple[AccountRef, int]],
    *,
    memo: str | None = None,
) -> int | None:
    """Move money inside the caller's transaction. Returns the transfer id, or None when a transfer
    with this idempotency key already exists (then nothing moves). Raises InsufficientFunds, leaving
    the caller to roll back, when a guarded account would go below zero."""
    legs = [(acc, amount) for acc, amount in legs if amount != 0]
    if sum(amount for _, amount in legs) != 0:
        raise ValueError(f"transfer {key!r} does not balance: {legs!r}")
    if not legs:
        raise ValueError(f"transfer {key!r} moves nothing")
    guarded = sorted(((acc, amt) for acc, amt in legs if acc.guarded), key=lambda leg: leg[0].id)
    if len(guarded) <= 1:
        return await _transfer_one_statement(
            conn, key, kind, legs, guarded[0] if guarded else None, memo
        )
    row = (
        await conn.execute(
            (
                "INSERT INTO transfers (idempotency_key, kind, memo) VALUES (:key, :kind, :memo) "
                "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
            ),
            {"key": key, "kind": kind, "memo": memo},
        )
    ).first()
    if row is None:
        return None
    transfer_id = row.id
    # Lock guarded accounts in id order so two transfers touching the same pair cannot deadlock.
    for acc, amount in guarded:
        moved = (
            await conn.execute(
                (
                    "UPDATE accounts SET balance = balance + :d "
                    "WHERE id = :id AND balance + :d >= 0 RETURNING balance"
                ),
                {"d": amount, "id": acc.id},
            )
        ).first()
        if moved is None:
            raise InsufficientFunds(_short_of_message(acc))
    await conn.execute(
        (
            "INSERT INTO entries (transfer_id, account_id, amount) "
            "SELECT :t, a, m FROM unnest(CAST(:accs AS bigint[]), CAST(:amts AS bigint[])) AS u(a, m)"
        ),
        {"t": transfer_id, "accs": [a.id for a, _ in legs], "amts": [m for _, m in legs]},
    )
    return transfer_id


_ONE_STATEMENT = (
    # The common case (an attempt, a grant, a refund): at most one guarded account moves, so the
    # whole transfer is one round trip. Entries are written only if the guarded move succeeded.
    "WITH t AS (INSERT INTO transfers (idempotency_key, kind, memo) VALUES (:key, :kind, :memo) "
    "  ON CONFLICT (idempotency_key) DO NOTHING RETURNING id), "
    "g AS (UPDATE accounts SET balance = balance + :d WHERE id = :gid AND balance + :d >= 0 "
    "  AND EXISTS (SELECT 1 FROM t) RETURNING id), "
    "e AS (INSERT INTO entries (transfer_id, account_id, amount) "
    "  SELECT t.id, u.a, u.m FROM t, unnest(CAST(:accs AS bigint[]), CAST(:amts AS bigint[])) AS u(a, m) "
    "  WHERE :gid = 0 OR EXISTS (SELECT 1 FROM g) RETURNING 1) "
    "SELECT (SELECT id FROM t) AS transfer_id, (SELECT id FROM g) AS moved, (SELECT count(*) FROM e) AS entries"
)


async def _transfer_one_statement(
    conn: Conn,
    key: str,
    kind: str,
    legs: Sequence[tuple[AccountRef, int]],
    guarded: tuple[AccountRef, int] | None,
    memo: str | None,
) -> int | None:
    row = (
        await conn.execute(
            _ONE_STATEMENT,
            {
                "key": key,
                "kind": kind,
                "memo": memo,
                "gid": guarded[0].id if guarded else 0,
                "d": guarded[1] if guarded else 0,
                "accs": [a.id for a, _ in legs],
                "amts": [m for _, m in legs],
            },
        )
    ).one()
    if row.transfer_id is None:
        return None
    if guarded is not None and row.moved is None:
        raise InsufficientFunds(_short_of_message(guarded[0]))
    return row.transfer_id


async def account_by_id(conn: Conn, account_id: int) -> AccountRef:
    row = (
        await conn.execute(
            "SELECT id, kind, owner_id, guarded FROM accounts WHERE id = :id", {"id": account_id}
        )
    ).one()
    return AccountRef(row.id, row.kind, row.owner_id, row.guarded)


def _short_of_message(acc: AccountRef) -> str:
    if acc.kind == TEAM_POOL:
        return "The team pool does not hold enough for this."
    return "Your balance is too low for this. Use /balance to see it."


async def balance(conn: Conn, acc: AccountRef) -> int:
    """Current balance: the locked column for guarded accounts, the entry sum for shared ones."""
    if acc.guarded:
        return (
            await conn.execute("SELECT balance FROM accounts WHERE id = :id", {"id": acc.id})
        ).scalar_one()
    return (
        await conn.execute(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS bigint) FROM entries WHERE account_id = :id",
            {"id": acc.id},
        )
    ).scalar_one()


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


async def check_invariants(conn: Conn) -> list[CheckResult]:
    """The ledger's promises, checked on a live database (``bounty check``)."""
    results: list[CheckResult] = []

    total = (await conn.execute("SELECT COALESCE(SUM(amount), 0) FROM entries")).scalar_one()
    results.append(CheckResult("sum of all entries is zero", total == 0, f"sum = {total}"))

    unbalanced = (
        await conn.execute(
            "SELECT count(*) FROM (SELECT transfer_id FROM entries GROUP BY transfer_id HAVING SUM(amount) <> 0) x"
        )
    ).scalar_one()
    results.append(
        CheckResult(
            "every transfer balances", unbalanced == 0, f"{unbalanced} unbalanced transfers"
        )
    )

    empty = (
        await conn.execute(
            "SELECT count(*) FROM transfers t WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.transfer_id = t.id)"
        )
    ).scalar_one()
    results.append(
        CheckResult("every transfer has entries", empty == 0, f"{empty} transfers without entries")
    )

    drift = (
        await conn.execute(
            "SELECT count(*) FROM accounts a LEFT JOIN (SELECT account_id, SUM(amount) s FROM entries GROUP BY account_id) e "
            "ON e.account_id = a.id WHERE a.guarded AND a.balance <> COALESCE(e.s, 0)"
        )
    ).scalar_one()
    results.append(
        CheckResult("guarded balances equal their entries", drift == 0, f"{drift} accounts drifted")
    )

    negative = (
        await conn.execute("SELECT count(*) FROM accounts WHERE guarded AND balance < 0")
    ).scalar_one()
    results.append(
        CheckResult("no player or team balance below zero", negative == 0, f"{negative} negative")
    )

    shared_col = (
        await conn.execute("SELECT count(*) FROM accounts WHERE NOT guarded AND balance <> 0")
    ).scalar_one()
    results.append(
        CheckResult(
            "shared accounts keep no balance column",
            shared_col == 0,
            f"{shared_col} with a stored balance",
        )
    )

    pending_paid = (
        await conn.execute(
            "SELECT count(*) FROM attempts a WHERE a.status IN ('rejected','won','late','pending') "
            "AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.idempotency_key = 'attempt:' || a.quote_id)"
        )
    ).scalar_one()
    results.append(
        CheckResult(
            "every attempt was paid", pending_paid == 0, f"{pending_paid} attempts without payment"
        )
    )

    refunded_unpaid = (
        await conn.execute(
            "SELECT count(*) FROM attempts a WHERE a.status = 'refunded' "
            "AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.idempotency_key = 'refund:' || a.id)"
        )
    ).scalar_one()
    results.append(
        CheckResult(
            "every refunded attempt was refunded",
            refunded_unpaid == 0,
            f"{refunded_unpaid} refunds missing",
        )
    )

    # What foreign keys would check, without the locks they take on rows every payment shares.
    orphans = (
        await conn.execute(
            "SELECT (SELECT count(*) FROM entries e WHERE NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = e.transfer_id)) "
            "+ (SELECT count(*) FROM entries e WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = e.account_id)) "
            "+ (SELECT count(*) FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM bounties b WHERE b.id = a.bounty_id)) "
            "+ (SELECT count(*) FROM attempt_quotes q WHERE NOT EXISTS (SELECT 1 FROM bounties b WHERE b.id = q.bounty_id))"
        )
    ).scalar_one()
    results.append(
        CheckResult(
            "entries, attempts and quotes reference what exists",
            orphans == 0,
            f"{orphans} dangling",
        )
    )
    return results
