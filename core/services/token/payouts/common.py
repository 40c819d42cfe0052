"""What every part of a payout shares: its row, and settling it once paid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core import ledger
from core.db import Conn
from core.errors import NotFound
from core.money import usdc
from core.services import notices

if TYPE_CHECKING:
    from core.app import App

PAY_JOB = "bounty.token.pay_payout"
USDC_DECIMALS = 6
WORKER = "worker"
OPEN = ("requested", "approved", "sending")
MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class PayoutRow:
    id: int
    player_id: int
    player: str
    wallet_address: str
    amount: int
    status: str
    requested_at: datetime
    decided_by: str | None
    reason: str | None
    tx_signature: str | None
    paid_by: str | None
    last_error: str | None


_SELECT = (
    "SELECT o.id, o.player_id, p.display_name AS player, o.wallet_address, o.amount, o.status, o.requested_at, "
    "o.decided_by, o.reason, o.tx_signature, o.paid_by, o.last_error FROM payouts o "
    "JOIN players p ON p.id = o.player_id"
)


async def get(conn: Conn, payout_id: int, *, lock: bool = False) -> PayoutRow:
    row = (
        await conn.execute(
            _SELECT + " WHERE o.id = :id" + (" FOR UPDATE OF o" if lock else ""), {"id": payout_id}
        )
    ).first()
    if row is None:
        raise NotFound(f"No payout #{payout_id}. /admin payouts lists them.")
    return PayoutRow(*row)


def keypair_configured(app: App) -> bool:
    return app.settings.TREASURY_KEYPAIR_PATH is not None


async def settle(
    app: App, conn: Conn, payout_id: int, signature: str, *, paid_by: str, from_status: str
) -> bool:
    """Mark paid and move the amount from pending payouts to the outside world, once."""
    now = app.clock()
    row = (
        await conn.execute(
            (
                "UPDATE payouts SET status = 'paid', paid_at = :now, paid_by = :by, tx_signature = :s, "
                "last_error = NULL, next_try_at = NULL WHERE id = :id AND status = :from RETURNING player_id, amount, "
                "wallet_address"
            ),
            {"now": now, "by": paid_by, "s": signature, "id": payout_id, "from": from_status},
        )
    ).first()
    if row is None:
        return False
    pending = await app.accounts.get(conn, ledger.PENDING_PAYOUTS)
    treasury = await app.accounts.get(conn, ledger.TREASURY)
    await ledger.transfer(
        conn,
        f"payout:{payout_id}:paid",
        "payout",
        [(pending, -row.amount), (treasury, row.amount)],
        memo=f"tx {signature}",
    )
    await notices.notify(
        conn,
        row.player_id,
        "Payout paid",
        f"Your payout #{payout_id} of {usdc(row.amount)} was paid to {row.wallet_address}.\n"
        f"Transaction: {signature}",
        key=f"payout:{payout_id}:paid",
        tone="success",
    )
    return True
