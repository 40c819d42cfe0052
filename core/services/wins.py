"""A win: the round closes, the whole prize pool goes to the winner (a team's win is split among
its members), the prompt is revealed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import ledger
from core.db import Conn
from core.money import usdc
from core.services import rounds

if TYPE_CHECKING:
    from core.app import App


async def settle_win(app: App, conn: Conn, bounty: rounds.BountyRow, attempt_id: int) -> int:
    """Inside the caller's transaction, holding the round's exclusive lock. Returns the prize."""
    attempt = (
        await conn.execute(
            (
                "SELECT a.number, a.payer_account_id, a.player_id, a.team_id, p.display_name, "
                "(SELECT name FROM teams t WHERE t.id = a.team_id) AS team_name FROM attempts a "
                "JOIN players p ON p.id = a.player_id WHERE a.id = :id"
            ),
            {"id": attempt_id},
        )
    ).one()
    pool_acc = await app.accounts.get(conn, ledger.PRIZE_POOL, bounty.id)
    prize = await ledger.balance(conn, pool_acc)
    winner_acc = app.accounts.known(attempt.payer_account_id) or await ledger.account_by_id(
        conn, attempt.payer_account_id
    )
    legs = None
    if prize > 0 and attempt.team_id is not None:
        from core.services.teams import prize_legs

        legs = await prize_legs(
            app, conn, attempt.team_id, prize, pool_acc, bounty, winner_name=attempt.display_name
        )
    if prize > 0:
        if (
            legs is None
        ):  # a player's own attempt (or a team with nobody left): all to the player's account
            winner_acc = (
                await app.accounts.get(conn, ledger.PLAYER, attempt.player_id)
                if winner_acc.kind == ledger.TEAM_POOL
                else winner_acc
            )
            legs = [(pool_acc, -prize), (winner_acc, prize)]
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
        f"The guardian's prompt is revealed below; its SHA-256 {bounty.prompt_sha256} was published "
        "when the round opened. Every attempt's text and reply are now public in /bounty log.\n\n"
        f"Prompt: {bounty.system_prompt}",
    )
    return prize
