"""The team pool (SPEC §7). It belongs to those who paid into it: each contribution is recorded; a
member who leaves or is kicked takes their share of what is left, a disband returns the rest the
same way, and a team's win is split among the members. No action of a captain moves another member's
money to the captain. Team attempts are paid from it by the attempt's payment
(core/services/attempts), which checks the member's right to spend it under the team's lock.
Every movement is one ledger transfer."""

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
from core.services import notices, refusals
from core.services.meta import is_demo_install
from core.services.players import PlayerRef, hold, resolve_player
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
    """Move money from the caller's balance into their team's pool, recorded as their contribution.
    Self-exclusion, a daily limit and a ban cover it like an attempt: it is money on its way to the
    guardian."""
    if amount <= 0:
        raise InvalidArgument("Put more than zero into the pool.")
    async with app.uow() as uow:
        conn = uow.conn
        player = await hold(conn, await resolve_player(app, conn, actor))
        # Shared: a leave, a kick or a disband waits for this contribution, or it sees theirs.
        team = await my_team(conn, player, lock="share")
        demo = await is_demo_install(conn)
        await refusals.check_spend(conn, player.id, amount, app.clock(), demo=demo)
        pool = await app.accounts.get(conn, ledger.TEAM_POOL, team.id)
        mine = await app.accounts.get(conn, ledger.PLAYER, player.id)
        try:
            transfer_id = await ledger.transfer(
                conn, f"team-fund:{secrets.token_hex(12)}", "team_fund",
                [(mine, -amount), (pool, amount)], memo=f"team {team.id}",
            )  # fmt: skip
        except InsufficientFunds:
            have = await ledger.balance(conn, mine)
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
        return Funded(team, amount, await ledger.balance(conn, pool), int(total), demo)


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


async def no_pending_attempts(conn: Conn, team: TeamRow, what: str) -> None:
    """Refuse while a team attempt waits for the guardian's answer: its fee may come back to the pool,
    and must come back to those it belongs to."""
    pending = (
        await conn.execute(
            "SELECT count(*) FROM attempts WHERE team_id = :t AND status = 'pending'",
            {"t": team.id},
        )
    ).scalar_one()
    if pending:
        raise NotPermitted(
            f"{team.name} has a team attempt waiting for the guardian's answer; {what} in a minute."
        )


async def _locked_pool(app: App, conn: Conn, team: TeamRow) -> tuple[ledger.AccountRef, int]:
    pool = await app.accounts.get(conn, ledger.TEAM_POOL, team.id)
    balance = (
        await conn.execute(
            "SELECT balance FROM accounts WHERE id = :id FOR UPDATE", {"id": pool.id}
        )
    ).scalar_one()
    return pool, balance


def pool_shares(pool: int, current: list[Member]) -> list[int]:
    """What each current member owns of ``pool``: by their contributions (equally if none of them
    contributed), floored, the leftover units one each by largest remainder."""
    weights = [m.contributed for m in current]
    if not any(weights):
        weights = [1] * len(current)
    return largest_remainder(pool, weights)


def leaver_share(pool: int, leaver: Member, current: list[Member]) -> int:
    """What a member leaving now takes of ``pool``: pool × their contributions ÷ the contributions of
    everyone in the team now (``current``, the leaver included), floored; equal parts if nobody
    contributed."""
    total = sum(m.contributed for m in current)
    return pool * leaver.contributed // total if total else pool // len(current)


async def share_out(
    app: App, conn: Conn, team: TeamRow, leaver: Member, current: list[Member]
) -> int:
    """Inside the caller's transaction, holding the team: a member leaves (or is kicked) with their
    share of what is left, pool × their contributions ÷ the contributions of everyone in the team now,
    floored (what the floor leaves stays with the others). Returns it."""
    pool, balance = await _locked_pool(app, conn, team)
    share = leaver_share(balance, leaver, current)
    if share:
        mine = await app.accounts.get(conn, ledger.PLAYER, leaver.player_id)
        await ledger.transfer(
            conn, f"team-leave:{team.id}:{leaver.player_id}:{secrets.token_hex(6)}", "team_leave",
            [(pool, -share), (mine, share)], memo=f"team {team.id}: share of a member leaving",
        )  # fmt: skip
    return share


async def return_pool(
    app: App, conn: Conn, team: TeamRow, current: list[Member]
) -> tuple[tuple[PlayerRef, int], ...]:
    """A disbanding team's pool goes back to its members by contribution (equally if nobody
    contributed), in one transfer, so nothing is left in an account nobody can reach."""
    await no_pending_attempts(conn, team, "disband it")
    # The pool row locked: nothing pays from it meanwhile (a payment also holds the team).
    pool, balance = await _locked_pool(app, conn, team)
    if balance == 0 or not current:
        return ()
    legs = [(pool, -balance)]
    out = []
    for m, share in zip(current, pool_shares(balance, current), strict=True):
        if share:
            legs.append((await app.accounts.get(conn, ledger.PLAYER, m.player_id), share))
            out.append((PlayerRef(m.player_id, m.display_name), share))
    await ledger.transfer(
        conn, f"team-disband:{team.id}", "team_disband", legs, memo=f"team {team.id} disbanded"
    )
    return tuple(out)


async def payee_legs(
    app: App, conn: Conn, account: ledger.AccountRef, amount: int
) -> list[tuple[ledger.AccountRef, int]]:
    """Legs paying ``amount`` to ``account``, unless it is the pool of a disbanded team: then to the
    members it had when it disbanded, by the pool rule (nothing lands where nobody can reach it)."""
    if account.kind != ledger.TEAM_POOL or amount == 0:
        return [(account, amount)]
    team = await team_by_id(conn, account.owner_id)
    if team.active:
        return [(account, amount)]
    last = (
        await conn.execute(
            "SELECT m.player_id, p.display_name, m.joined_at, "
            "COALESCE((SELECT SUM(c.amount) FROM team_contributions c WHERE c.team_id = m.team_id "
            "  AND c.player_id = m.player_id), 0) AS contributed "
            "FROM team_members m JOIN players p ON p.id = m.player_id "
            "WHERE m.team_id = :t AND m.left_how = 'disbanded' ORDER BY m.joined_at, m.id",
            {"t": team.id},
        )
    ).all()
    if not last:
        raise NotFound(f"Team {team.name} was disbanded with nobody in it to pay.")
    former = [Member(r.player_id, r.display_name, r.joined_at, int(r.contributed)) for r in last]
    return [
        (await app.accounts.get(conn, ledger.PLAYER, m.player_id), share)
        for m, share in zip(former, pool_shares(amount, former), strict=True)
        if share
    ]
