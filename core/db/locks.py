"""Every advisory lock the game takes, named in one place.

A lock is a namespace and an id (a round's, a team's, a payout's...; 0 for a lock of which there is
one). Its key is one bigint: the namespace in the high 16 bits, the id in the low 48, so two
namespaces can never share a key, whatever their ids (``key`` refuses an id that does not fit).
Code takes locks only through this module; the payment's SQL function receives its key as an
argument. ``tests/unit/test_locks.py`` walks the registry.

Locks end with their transaction unless a namespace says why one must outlive it (``session``): then
it is released in ``finally``, and a connection whose release failed is closed, so the server drops
the lock instead of a pooled connection keeping it.

What serialises on what (one rule per entity; rows, not advisory locks, where a row exists):

- a **player**: their ``players`` row. A payment updates it (the cooldown) and so holds it; anything
  that gives a player money, a wallet or a team place holds it shared (``players.hold``); ``/link``
  locks both players for update.
- a **team**: its ``teams`` row. Membership changes and a disband lock it for update; a contribution
  and a team attempt's payment hold it shared, so they wait for a leave, a kick or a disband and see
  what it did.
- a **round**: the ``ROUND`` lock. Payments and refunds share it; a win, an expiry, a pause or a rule
  change takes it alone.
- an **account**: its row, locked by the guarded update that moves it (in id order within a transfer).

The order, so that nothing deadlocks: a quote, the round, players, a team, accounts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.db.engine import Database
    from core.db.raw import Conn

ID_BITS = 48
MAX_ID = (1 << ID_BITS) - 1


class Lock(IntEnum):
    """The namespaces. Values are part of the running system (two versions of the code may run side by
    side during a deploy): add new ones, never renumber."""

    MIGRATIONS = 1  # one schema upgrade at a time
    ROUND = 2  # id: round. Payments and refunds share it; a win, an expiry, a pause, a rule change alone
    DEMO_SEED = 3  # opening the demo round of a fresh local game
    STAKING_DISTRIBUTION = 4  # one month's distribution at a time
    BUYBACK = 5  # one buyback record at a time (the reserve is read, then spent)
    TEAM_CHAT = 6  # id: team. Session: held across platform calls while a bot reshapes the chat
    TEAM_CHANNEL_PLACEMENT = 7  # session: while a bot chooses where new team channels go
    PAYOUT = 8  # id: payout. Session: held across Solana calls while a worker pays it
    MEMORY_CATCH_UP = 9  # session: across the batches of one catch-up run
    MEMORY_EMBED = 10  # id: attempt. Embedding one attempt's text once


# Namespaces whose locks outlive a transaction, and why (see ``session``).
SESSION = {
    Lock.TEAM_CHAT: "a channel is reshaped over several Discord calls, none inside a transaction",
    Lock.TEAM_CHANNEL_PLACEMENT: "choosing a category and creating the channel are Discord calls",
    Lock.PAYOUT: "signing, sending and confirming a payout are Solana calls, never inside a transaction",
    Lock.MEMORY_CATCH_UP: "a catch-up commits batch by batch for up to a minute",
}


def key(namespace: Lock, entity_id: int = 0) -> int:
    """The bigint key of ``namespace``'s lock on ``entity_id``."""
    if not 0 <= entity_id <= MAX_ID:
        raise ValueError(f"lock id {entity_id} does not fit in {ID_BITS} bits")
    return (int(namespace) << ID_BITS) | entity_id


async def xact(conn: Conn, namespace: Lock, entity_id: int = 0, *, shared: bool = False) -> None:
    """Wait for ``namespace``'s lock on ``entity_id``, held until the transaction ends."""
    if namespace in SESSION:
        raise ValueError(f"{namespace.name} locks are session locks")
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await conn.execute(f"SELECT {fn}(:k)", {"k": key(namespace, entity_id)})


async def try_xact(conn: Conn, namespace: Lock, entity_id: int = 0) -> bool:
    """Take the lock if nobody holds it (held until the transaction ends); False if busy."""
    if namespace in SESSION:
        raise ValueError(f"{namespace.name} locks are session locks")
    got = await conn.execute(
        "SELECT pg_try_advisory_xact_lock(:k)", {"k": key(namespace, entity_id)}
    )
    return bool(got.scalar_one())


@contextlib.asynccontextmanager
async def session(
    db: Database, namespace: Lock, entity_id: int = 0, *, wait: bool = True
) -> AsyncIterator[bool]:
    """Hold a lock that must outlive a transaction, on a connection of its own, for the block.

    Yields True when held; with ``wait=False`` yields False at once when another holds it. The lock is
    released in ``finally``; if that fails (the connection broke, the task was cancelled) the
    connection is closed, which makes the server release it."""
    if namespace not in SESSION:
        raise ValueError(f"{namespace.name} locks end with their transaction: use xact()")
    k = key(namespace, entity_id)
    pool = await db.pool()
    raw = await pool.acquire()
    held, clean = False, False  # clean: the connection is known to hold no lock of ours
    try:
        if wait:
            await raw.execute("SELECT pg_advisory_lock($1)", k)
            held = True
        else:
            held = bool(await raw.fetchval("SELECT pg_try_advisory_lock($1)", k))
        clean = not held
        yield held
    finally:
        try:
            if held:
                clean = bool(await raw.fetchval("SELECT pg_advisory_unlock($1)", k))
        finally:
            if clean:
                await pool.release(raw)
            else:  # interrupted while taking or releasing it: the server ends the session, and its locks
                raw.terminate()
                with contextlib.suppress(Exception):
                    await pool.release(raw)
