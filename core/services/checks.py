"""`bounty check`: the ledger's and the token's invariants on a live database, and the record of the
last run (by the CLI or the beat's hourly job), which every process's /metrics exports."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from core.db import Conn
from core.ledger import CheckResult, check_invariants
from core.services.promises import check_money_promises
from core.services.token.checks import check_token_invariants

log = logging.getLogger(__name__)

LAST_CHECK_KEY = "last_check"


async def run_checks(conn: Conn) -> list[CheckResult]:
    """Every check `bounty check` runs, in its order: the ledger, the money promises, the token."""
    return (
        await check_invariants(conn)
        + await check_money_promises(conn)
        + await check_token_invariants(conn)
    )


@dataclass(frozen=True)
class LastCheck:
    at: datetime
    passed: int
    failed: tuple[str, ...]
    by: str

    @property
    def ok(self) -> bool:
        return not self.failed


async def record_check(conn: Conn, results: list[CheckResult], *, by: str, now: datetime) -> None:
    """Keep the result as the installation's last check (one row of game_meta)."""
    value = {
        "at": now.astimezone(UTC).isoformat(),
        "passed": sum(1 for r in results if r.ok),
        "failed": [r.name for r in results if not r.ok],
        "by": by,
    }
    await conn.execute(
        (
            "INSERT INTO game_meta (key, value) VALUES (:k, :v) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        ),
        {"k": LAST_CHECK_KEY, "v": value},
    )


async def last_check(conn: Conn) -> LastCheck | None:
    value = (
        await conn.execute("SELECT value FROM game_meta WHERE key = :k", {"k": LAST_CHECK_KEY})
    ).scalar_one_or_none()
    if not isinstance(value, dict):
        return None
    try:
        return LastCheck(
            at=datetime.fromisoformat(value["at"]),
            passed=int(value["passed"]),
            failed=tuple(value["failed"]),
            by=str(value.get("by", "?")),
        )
    except (KeyError, TypeError, ValueError):
        return None


async def check_and_record(conn: Conn, *, by: str, now: datetime) -> list[CheckResult]:
    """Run every check, record the result, and log a failure at ERROR (what alerting watches)."""
    results = await run_checks(conn)
    await record_check(conn, results, by=by, now=now)
    broken = [r for r in results if not r.ok]
    if broken:
        log.error(
            "bounty check FAILED %d of %d checks: %s",
            len(broken),
            len(results),
            "; ".join(f"{r.name}: {r.detail}" for r in broken),
        )
    else:
        log.info("bounty check passed (%d checks)", len(results))
    return results
