"""How a round ends: a win (the whole prize pool to the winner, a team's split among its members), or
inactivity (20 % of the pool to the last player, 80 % by fees paid). Either holds the round alone,
first settles the attempts still waiting for an answer (refunded: the round ends before them), and
reveals the prompt. Nothing is left in the ended round's pool or on its attempts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import ledger
from core.db import Conn
from core.money import usdc
from core.ports.guardian import Verdict
from core.rules import expiry_shares
from core.services import rounds
from core.services.attempts.settlement import refund_pending, settle
from core.services.teams.pool import payee_legs, prize_legs

if TYPE_CHECKING:
    from core.app import App


async def settle_win(
    app: App, conn: Conn, bounty: rounds.BountyRow, attempt_id: int, fee: int, verdict: Verdict
) -> int | None:
    """Inside the caller's transaction, holding the round alone: the approving answer is stored and
    settled, every other pending attempt refunded, the pool paid to the winner. Returns the prize, or
    None when the attempt was no longer pending (refunded meanwhile: no win)."""
    if not await settle(app, conn, attempt_id, bounty.id, fee, "won", verdict):
        return None
    await refund_pending(
        app, conn, bounty.id, f"round {bounty.name} was won before the guardian answered"
    )
    attempt = (
        await conn.execute(
            "SELECT a.number, a.payer_account_id, a.player_id, a.team_id, p.display_name, "
            "(SELECT name FROM teams t WHERE t.id = a.team_id) AS team_name FROM attempts a "
            "JOIN players p ON p.id = a.player_id WHERE a.id = :id",
            {"id": attempt_id},
        )
    ).one()
    pool_acc = await app.accounts.get(conn, ledger.PRIZE_POOL, bounty.id)
    prize = await ledger.balance(conn, pool_acc)
    if prize > 0:
        legs = None
        if attempt.team_id is not None:
            legs = await prize_legs(
                app,
                conn,
                attempt.team_id,
                prize,
                pool_acc,
                bounty,
                winner_name=attempt.display_name,
            )
        if legs is None:  # a player's own attempt (or a team with nobody left): to the player
            winner = await app.accounts.get(conn, ledger.PLAYER, attempt.player_id)
            legs = [(pool_acc, -prize), (winner, prize)]
        # The model never moves money: the prize moves inside the ledger; leaving it is a payout.
        await ledger.transfer(conn, f"win:{bounty.id}", "win", legs)
    await conn.execute(
        "UPDATE bounties SET status = 'won', winner_attempt_id = :a, ended_at = :now WHERE id = :id",
        {"a": attempt_id, "now": app.clock(), "id": bounty.id},
    )
    await rounds.announce(
        conn,
        "round_won",
        (
            f"Team {attempt.team_name} won round {bounty.name}!"
            if attempt.team_name
            else f"{attempt.display_name} won round {bounty.name}!"
        ),
        f"Attempt #{attempt.number + 1}"
        + (f" by {attempt.display_name}" if attempt.team_name else "")
        + " convinced the guardian to release the prize pool of "
        f"{usdc(prize, demo=bounty.is_demo)}.\n"
        f"The guardian's prompt is revealed below; the commitment {bounty.public_commitment} was "
        "published when the round opened. Every attempt's text, reply and hash salt, and the "
        "committed document, are now public in /bounty log.\n\n"
        f"Prompt: {bounty.system_prompt}",
    )
    return prize


async def expire_round(app: App, conn: Conn, bounty_id: int) -> bool:
    """End an inactive round: 20 % of the pool to the last player, 80 % by fees paid. True if ended."""
    now = app.clock()
    bounty = await rounds.lock_round_exclusive(conn, bounty_id)
    if bounty.status != "active":
        return False
    deadline, count = await rounds.expiry_deadline(app, conn, bounty)
    if deadline is None or deadline > now:
        return False
    pending = (
        await conn.execute(
            "SELECT count(*) FROM attempts WHERE bounty_id = :b AND status = 'pending'",
            {"b": bounty_id},
        )
    ).scalar_one()
    if pending:
        return False  # an answer is on its way; the next check ends the round
    # The payers by what they paid; the last one by time (numbers can be given back and reused).
    payers = (
        await conn.execute(
            "SELECT payer_account_id, SUM(fee) AS paid, min(created_at) AS first_at, "
            "max(created_at) AS last_at, max(id) AS last_id FROM attempts "
            "WHERE bounty_id = :b AND status <> 'refunded' "
            "GROUP BY payer_account_id ORDER BY first_at, payer_account_id",
            {"b": bounty_id},
        )
    ).all()
    pool_acc = await app.accounts.get(conn, ledger.PRIZE_POOL, bounty_id)
    pool = await ledger.balance(conn, pool_acc)
    fees = [int(p.paid) for p in payers]
    if pool > 0 and sum(fees) > 0:
        last_index = max(range(len(payers)), key=lambda i: (payers[i].last_at, payers[i].last_id))
        shares = expiry_shares(pool, last_index, fees)
        legs = [(pool_acc, -pool)]
        for payer, share in zip(payers, shares, strict=True):
            acc = app.accounts.known(payer.payer_account_id) or await ledger.account_by_id(
                conn, payer.payer_account_id
            )
            legs += await payee_legs(app, conn, acc, share)  # a disbanded team's: its members
        await ledger.transfer(conn, f"expire:{bounty_id}", "round_expired", legs)
    await conn.execute(
        "UPDATE bounties SET status = 'expired', ended_at = :now WHERE id = :id",
        {"now": now, "id": bounty_id},
    )
    await rounds.announce(
        conn,
        "round_expired",
        f"Round {bounty.name} expired",
        f"No attempt for {app.settings.ROUND_INACTIVITY_SECONDS // 3600} hours after {count} attempts. "
        f"The pool of {usdc(pool, demo=bounty.is_demo)} was shared: 20 % to the last player, 80 % among all "
        f"{len(payers)} players by fees paid.\nThe guardian's prompt is revealed (commitment "
        f"{bounty.public_commitment}); every attempt's text, reply and hash salt, and the committed "
        "document, are now public in /bounty log.",
    )
    return True


async def end_inactive_rounds(app: App) -> list[int]:
    """Beat job: expire every active round past its inactivity deadline."""
    ended = []
    async with app.db.autocommit() as conn:
        ids = (
            (await conn.execute("SELECT id FROM bounties WHERE status = 'active'")).scalars().all()
        )
    for bounty_id in ids:
        async with app.uow() as uow:
            if await expire_round(app, uow.conn, bounty_id):
                ended.append(bounty_id)
    return ended
