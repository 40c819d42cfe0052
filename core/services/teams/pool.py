"""The team pool: members' contributions, team attempts paid from it, the prize split on a team's
win, and the pool shared back when a team disbands. Every movement is one ledger transfer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.db import Conn
from core.errors import InsufficientFunds, InvalidArgument, NotFound, NotPermitted
from core.money import usdc
from core.rules import largest_remainder
from core.services import attempts, notices
from core.services.players import PlayerRef, resolve_player
from core.services.teams.common import Member, TeamRow, members, my_team, team_by_id

if TYPE_CHECKING:
    from core.app import App
    from core.services.rounds import BountyRow


@dataclass(frozen=True)
class Funded:
    team: TeamRow
    amount: int
    pool: int
    contributed: int  # this player's contributions in total
    demo: bool = False  # a demo game's credits


async def fund(app: App, actor: Actor, amount: int) -> Funded:
    """Move money from the caller's balance into their team's pool, recorded as their contribution."""
    if amount <= 0:
        raise InvalidArgument("Put more than zero into the pool.")
    async with app.uow() as uow:
        conn = uow.conn
        player = await resolve_player(app, conn, actor)
        team = await my_team(conn, player)
        pool = await app.accounts.get(conn, ledger.TEAM_POOL, team.id)
        mine = await app.accounts.get(conn, ledger.PLAYER, player.id)
        try:
            transfer_id = await ledger.transfer(
                conn,
                f"team-fund:{secrets.token_hex(12)}",
                "team_fund",
                [(mine, -amount), (pool, amount)],
                memo=f"team {team.id}",
            )
        except InsufficientFunds:
            from core.services.views import is_demo_install

            have, demo = await ledger.balance(conn, mine), await is_demo_install(conn)
            raise InsufficientFunds(
                f"You have {usdc(have, demo=demo)}; you cannot put {usdc(amount, demo=demo)} into the pool. "
                "Nothing moved."
            ) from None
        await conn.execute(
            "INSERT INTO team_contributions (team_id, player_id, amount, transfer_id) VALUES (:t, :p, :a, :x)",
            {"t": team.id, "p": player.id, "a": amount, "x": transfer_id},
        )
        total = (
            await conn.execute(
                "SELECT SUM(amount) FROM team_contributions WHERE team_id = :t AND player_id = :p",
                {"t": team.id, "p": player.id},
            )
        ).scalar_one()
        from core.services.views import is_demo_install

        return Funded(
            team, amount, await ledger.balance(conn, pool), int(total), await is_demo_install(conn)
        )


async def _may_spend(app: App, conn: Conn, actor: Actor) -> tuple[TeamRow, PlayerRef]:
    player = await resolve_player(app, conn, actor)
    team = await my_team(conn, player)
    if team.spend_mode == "captain" and team.captain_player_id != player.id:
        raise NotPermitted(
            f"In {team.name} only the captain spends the pool (the captain chose /team spend captain)."
        )
    return team, player


async def quote_team_attempt(app: App, actor: Actor, message: str) -> attempts.Quote:
    """A team attempt's quote: checked like any attempt, paid from the team pool when confirmed."""
    async with app.uow() as uow:
        team, _ = await _may_spend(app, uow.conn, actor)
        pool = await app.accounts.get(uow.conn, ledger.TEAM_POOL, team.id)
    return await attempts.quote_attempt(app, actor, message, payer=attempts.Payer(pool, team.id))


async def check_team_quote(app: App, actor: Actor, quote_id: str) -> TeamRow:
    """Before paying a team quote: the caller is still in that team and may still spend its pool."""
    async with app.uow() as uow:
        conn = uow.conn
        team_id = (
            await conn.execute("SELECT team_id FROM attempt_quotes WHERE id = :q", {"q": quote_id})
        ).scalar_one_or_none()
        team, _ = await _may_spend(app, conn, actor)
        if team_id is not None and team_id != team.id:
            raise NotPermitted("That team attempt was for a team you are no longer in.")
        return team


def prize_shares(prize: int, mode: str, current: list[Member]) -> list[int]:
    """Each member's share (in ``current``'s order): by contribution (the default) or equal; floors,
    then leftover units one each by largest remainder, ties to the longest-standing member. A
    proportional split with no contributions at all among the members is an equal one."""
    weights = [m.contributed for m in current]
    if mode == "equal" or sum(weights) == 0:
        weights = [1] * len(current)
    return largest_remainder(prize, weights)


async def prize_legs(
    app: App,
    conn: Conn,
    team_id: int,
    prize: int,
    pool_acc: ledger.AccountRef,
    bounty: BountyRow,
    *,
    winner_name: str,
) -> list[tuple[ledger.AccountRef, int]] | None:
    """Inside the win's transaction: the legs that split ``prize`` among the team's members at this
    moment, and a notice to each. None when the team has nobody left (the attempt's player wins)."""
    try:
        team = await team_by_id(conn, team_id, lock=True)
    except NotFound:
        return None
    current = await members(conn, team.id) if team.active else []
    if not current:
        return None
    shares = prize_shares(prize, team.split_mode, current)
    legs: list[tuple[ledger.AccountRef, int]] = [(pool_acc, -prize)]
    how = "equally" if team.split_mode == "equal" else "in proportion to contributions"
    for member, share in zip(current, shares, strict=True):
        legs.append((await app.accounts.get(conn, ledger.PLAYER, member.player_id), share))
        await notices.notify(
            conn,
            member.player_id,
            f"Team {team.name} won round {bounty.name}!",
            f"{winner_name}'s team attempt convinced the guardian. The prize of {usdc(prize, demo=bounty.is_demo)} "
            f"was split {how} among the {len(current)} members: your share is "
            f"{usdc(share, demo=bounty.is_demo)}, in your balance now.",
            key=f"team-win:{bounty.id}",
            tone="success",
        )
    return legs


async def return_pool(
    app: App, conn: Conn, team: TeamRow, current: list[Member]
) -> tuple[tuple[PlayerRef, int], ...]:
    """A disbanding team's pool goes back to its members by contribution (equally if nobody
    contributed), in one transfer, so nothing is left in an account nobody can reach."""
    pending = (
        await conn.execute(
            "SELECT count(*) FROM attempts WHERE team_id = :t AND status = 'pending'",
            {"t": team.id},
        )
    ).scalar_one()
    pool = await app.accounts.get(conn, ledger.TEAM_POOL, team.id)
    # The pool row locked first: an attempt paying from it now waits, and finds it empty after.
    balance = (
        await conn.execute(
            "SELECT balance FROM accounts WHERE id = :id FOR UPDATE", {"id": pool.id}
        )
    ).scalar_one()
    if pending:
        raise NotPermitted(
            f"{team.name} has a team attempt waiting for the guardian's answer; try again in a minute."
        )
    if balance == 0 or not current:
        return ()
    shares = (
        largest_remainder(balance, [m.contributed for m in current])
        if any(m.contributed for m in current)
        else largest_remainder(balance, [1] * len(current))
    )
    legs = [(pool, -balance)]
    out = []
    for m, share in zip(current, shares, strict=True):
        if share:
            legs.append((await app.accounts.get(conn, ledger.PLAYER, m.player_id), share))
            out.append((PlayerRef(m.player_id, m.display_name), share))
    await ledger.transfer(
        conn, f"team-disband:{team.id}", "team_disband", legs, memo=f"team {team.id} disbanded"
    )
    return tuple(out)
