"""The lock registry: every advisory lock is named in core/db/locks.py and no two can share a key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.db import locks
from core.db.locks import Lock

ROOT = Path(__file__).resolve().parents[2]


def test_namespaces_are_distinct_and_fit_the_key():
    values = [int(n) for n in Lock]
    assert len(values) == len(set(values))
    assert all(0 < v < 2**15 for v in values)  # the key stays a positive bigint


def test_no_two_locks_share_a_key():
    ids = [0, 1, 2, 7, 2**31, locks.MAX_ID]
    keys = {(ns, i): locks.key(ns, i) for ns in Lock for i in ids}
    assert len(set(keys.values())) == len(keys)
    # the collisions the old bare numbers had: payout #2, team #2's chat, the staking distribution
    assert (
        len(
            {
                locks.key(Lock.PAYOUT, 2),
                locks.key(Lock.TEAM_CHAT, 2),
                locks.key(Lock.STAKING_DISTRIBUTION),
            }
        )
        == 3
    )


def test_an_id_that_does_not_fit_is_refused():
    with pytest.raises(ValueError):
        locks.key(Lock.ROUND, locks.MAX_ID + 1)
    with pytest.raises(ValueError):
        locks.key(Lock.ROUND, -1)


def test_session_locks_say_why_and_the_others_are_transaction_scoped():
    for namespace, why in locks.SESSION.items():
        assert namespace in Lock and len(why) > 20


def test_no_code_takes_an_advisory_lock_outside_the_registry():
    """Only core/db/locks.py calls pg_advisory_*; the payment receives its key as an argument, and
    migrations before the registry (0008) are history."""
    offenders = []
    for path in [
        *ROOT.glob("core/**/*.py"),
        *ROOT.glob("bots/**/*.py"),
        *ROOT.glob("workers/**/*.py"),
        *ROOT.glob("cli/**/*.py"),
        ROOT / "migrations/env.py",
    ]:
        if path.name == "locks.py" and path.parent.name == "db":
            continue
        text = path.read_text()
        for match in re.finditer(r"pg_(try_)?advisory\w*\(([^)]*)\)", text):
            args = match.group(2)
            if path.name == "env.py" and "key(Lock." in args:
                continue
            offenders.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    newest = sorted(ROOT.glob("migrations/versions/*.py"))[-1].read_text()
    assert "pg_advisory_xact_lock_shared(p_round_lock)" in newest or "p_round_lock" not in newest
    assert offenders == []


async def test_a_session_lock_is_released_even_when_its_block_fails(app):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with locks.session(app.db, Lock.PAYOUT, 5) as held:
            assert held
            raise Boom
    async with locks.session(app.db, Lock.PAYOUT, 5, wait=False) as held:
        assert held  # released: free again
        async with locks.session(app.db, Lock.PAYOUT, 5, wait=False) as again:
            assert not again  # a second holder is refused while the first holds it
    async with (
        locks.session(app.db, Lock.PAYOUT, 2, wait=False) as payout,
        locks.session(app.db, Lock.TEAM_CHAT, 2, wait=False) as chat,
    ):
        assert payout and chat  # payout #2 and team #2's chat no longer block each other
