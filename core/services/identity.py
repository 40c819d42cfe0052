"""One player on several platforms (SPEC §8): /link codes, joining two identities, /admin unlink.

Joining moves the identities of the side that has nothing yet (no money, no history) onto the other
player; when both sides have something, the join is refused with the reasons (no merge of balances,
so no money moves and ``bounty check`` has nothing to reconcile). What counts as "something" is the
list ``STATE_CHECKS``: the wallet and team features add their own checks there.

Bans and self-exclusion follow the player: the joined player keeps the later ban and exclusion and the
stricter daily limit of the two, so linking never lets a banned or excluded account escape.

Other processes cache (platform, external id) -> player; they notice a moved identity in the
statement that reads the player's standing (``players.IDENTITY_CURRENT``) and look again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core import ledger
from core.actors import Actor
from core.db import Conn
from core.errors import ConfirmationExpired, InvalidArgument, NotFound
from core.money import usdc
from core.services import notices
from core.services.audit import audit
from core.services.meta import is_demo_install
from core.services.players import (
    PLATFORMS,
    PlayerRef,
    clean_name,
    ensure_player,
    find_player,
    require_moderator,
)

if TYPE_CHECKING:
    from core.app import App

CODE_TTL = timedelta(minutes=10)
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud or typed from a phone
CODE_LENGTH = 8
PLATFORM_NAMES = {"discord": "Discord", "telegram": "Telegram", "console": "the console"}

# Each check lists why a player "has something" that a join must not throw away (empty: nothing).
StateCheck = Callable[[Conn, int], Awaitable[list[str]]]


async def _money_and_history(conn: Conn, player_id: int) -> list[str]:
    row = (
        await conn.execute(
            (
                "SELECT a.balance, (SELECT count(*) FROM entries e WHERE e.account_id = a.id) AS entries, "
                "(SELECT count(*) FROM attempts t WHERE t.player_id = :p) AS attempts, "
                "EXISTS (SELECT 1 FROM game_meta WHERE key = 'demo') AS demo "
                "FROM (SELECT 1) one LEFT JOIN accounts a ON a.kind = 'player' AND a.owner_id = :p AND a.currency = 'USDC'"
            ),
            {"p": player_id},
        )
    ).one()
    reasons = []
    if row.balance:
        reasons.append(f"a balance of {usdc(row.balance, demo=row.demo)}")
    if row.attempts:
        reasons.append(f"{row.attempts} attempt{'s' if row.attempts != 1 else ''}")
    elif row.entries and not row.balance:
        reasons.append("money history (grants, refunds or winnings)")
    return reasons


async def _team_membership(conn: Conn, player_id: int) -> list[str]:
    name = (
        await conn.execute(
            (
                "SELECT t.name FROM team_members m JOIN teams t ON t.id = m.team_id "
                "WHERE m.player_id = :p AND m.left_at IS NULL LIMIT 1"
            ),
            {"p": player_id},
        )
    ).scalar_one_or_none()
    return [f"a place in team {name}"] if name else []


async def _wallet(conn: Conn, player_id: int) -> list[str]:
    address = (
        await conn.execute(
            "SELECT address FROM wallets WHERE player_id = :p AND unlinked_at IS NULL",
            {"p": player_id},
        )
    ).scalar_one_or_none()
    return [f"the linked wallet {address[:8]}…"] if address else []


STATE_CHECKS: list[StateCheck] = [_money_and_history, _team_membership, _wallet]


async def has_state(conn: Conn, player_id: int) -> list[str]:
    """Why this player has something a join would have to merge (money, history, later a wallet or a
    team); empty when it has nothing."""
    reasons: list[str] = []
    for check in STATE_CHECKS:
        reasons += await check(conn, player_id)
    return reasons


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def normalise_code(raw: str) -> str:
    code = "".join(raw.split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        raise InvalidArgument(
            "That is not a link code: codes look like ABCD-EFGH (send /link on the other "
            "platform to get one)."
        )
    return code


def display_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


@dataclass(frozen=True)
class LinkCode:
    code: str  # as shown: ABCD-EFGH
    expires_at: datetime
    platform: str


async def new_code(app: App, actor: Actor) -> LinkCode:
    """A one-time code (10 minutes) to enter with /link on another platform; an older unused code of
    this account stops working."""
    now = app.clock()
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    async with app.uow() as uow:
        conn = uow.conn
        player = await ensure_player(conn, actor)
        await conn.execute(
            (
                "UPDATE link_codes SET used_at = :now, used_by = 'replaced' WHERE platform = :p AND external_id = :e "
                "AND used_at IS NULL"
            ),
            {"now": now, "p": actor.platform, "e": actor.external_id},
        )
        await conn.execute(
            (
                "INSERT INTO link_codes (code_sha256, player_id, platform, external_id, created_at, expires_at) "
                "VALUES (:h, :pid, :p, :e, :now, :exp)"
            ),
            {
                "h": _hash(code),
                "pid": player.id,
                "p": actor.platform,
                "e": actor.external_id,
                "now": now,
                "exp": now + CODE_TTL,
            },
        )
    return LinkCode(display_code(code), now + CODE_TTL, actor.platform)


@dataclass(frozen=True)
class Identity:
    platform: str
    external_id: str
    username: str | None

    def label(self) -> str:
        name = f"@{self.username}" if self.username else self.external_id
        return f"{PLATFORM_NAMES.get(self.platform, self.platform)} {name}"


async def identities(conn: Conn, player_id: int) -> list[Identity]:
    rows = (
        await conn.execute(
            "SELECT platform, external_id, username FROM player_identities WHERE player_id = :p ORDER BY id",
            {"p": player_id},
        )
    ).all()
    return [Identity(r.platform, r.external_id, r.username) for r in rows]


@dataclass(frozen=True)
class Joined:
    player: PlayerRef  # the one player now
    moved: tuple[Identity, ...]  # identities that moved onto it
    identities: tuple[Identity, ...]  # all of its identities now
    balance: int
    is_demo: bool


@dataclass(frozen=True)
class Side:
    """One of the two accounts a code would join, as it stands now."""

    player_id: int
    identities: tuple[Identity, ...]
    balance: int
    holds: tuple[str, ...]  # what it has (has_state); empty: nothing yet

    def label(self) -> str:
        return ", ".join(i.label() for i in self.identities) or f"player #{self.player_id}"


@dataclass(frozen=True)
class JoinPlan:
    """What entering a code would do (SPEC §10.3): both accounts and which one stays."""

    code_id: int
    code_expires_at: datetime
    enterer: Side  # the account typing the code
    issuer: Side  # the account that made it
    is_demo: bool

    @property
    def survivor(self) -> Side:
        """The side with money or history stays; when neither has any, the code's maker."""
        return self.enterer if self.enterer.holds else self.issuer

    @property
    def moving(self) -> Side:
        return self.issuer if self.survivor is self.enterer else self.enterer


async def _code_row(
    conn: Conn, raw_code: str | None, code_id: int | None, now: datetime, *, lock: bool
) -> Any:
    """A usable link code (by its text, or its id from a confirmation), or the error to show."""
    if code_id is None:
        code = normalise_code(raw_code or "")
        where, params = "code_sha256 = :h", {"h": _hash(code)}
    else:
        where, params = "id = :id", {"id": code_id}
    row = (
        await conn.execute(
            f"SELECT id, platform, external_id, expires_at, used_at FROM link_codes WHERE {where}"
            + (" FOR UPDATE" if lock else ""),
            params,
        )
    ).first()
    if row is None:
        raise NotFound(
            "No such link code. Check it, or send /link on the other platform for a new one."
        )
    if row.used_at is not None:
        raise ConfirmationExpired(
            "That code was already used. Send /link on the other platform for a new one."
        )
    if row.expires_at <= now:
        raise ConfirmationExpired(
            "That code expired (codes last 10 minutes). Send /link on the other "
            "platform for a new one."
        )
    return row


async def _side(app: App, conn: Conn, player_id: int, reasons: list[str]) -> Side:
    account = await app.accounts.get(conn, ledger.PLAYER, player_id)
    return Side(
        player_id,
        tuple(await identities(conn, player_id)),
        await ledger.balance(conn, account),
        tuple(reasons),
    )


async def _plan(app: App, conn: Conn, actor: Actor, row: Any, *, lock: bool) -> JoinPlan:
    """Both sides of the code in ``row`` and the join's rules checked (see the module's rules)."""
    if row.platform == actor.platform:
        where = PLATFORM_NAMES.get(actor.platform, actor.platform)
        hint = (
            "; to join this account with another one, enter its code here"
            if row.external_id != actor.external_id
            else ""
        )
        raise InvalidArgument(
            f"Enter the code on your other platform: it was made on {where}, where you are "
            f"now{hint}."
        )
    issuer = await ensure_player(conn, Actor(row.platform, row.external_id, "player"))
    enterer = await ensure_player(conn, actor)
    if issuer.id == enterer.id:
        raise InvalidArgument("These accounts are already one player.")
    if lock:  # both players, in id order: a concurrent link, ban or limit change waits for this one
        await conn.execute(
            "SELECT id FROM players WHERE id = ANY(:ids) ORDER BY id FOR UPDATE",
            {"ids": sorted([issuer.id, enterer.id])},
        )
    mine, theirs = await identities(conn, enterer.id), await identities(conn, issuer.id)
    overlap = {i.platform for i in mine} & {i.platform for i in theirs}
    if overlap:
        platform = PLATFORM_NAMES.get(sorted(overlap)[0], sorted(overlap)[0])
        raise InvalidArgument(
            f"Those accounts cannot be joined: both already have a {platform} account. "
            "A moderator can /admin unlink one first."
        )
    mine_state, their_state = await has_state(conn, enterer.id), await has_state(conn, issuer.id)
    if mine_state and their_state:
        raise InvalidArgument(
            "Both accounts already have money or history, so they cannot be joined: this one has "
            f"{', '.join(mine_state)}; the other has {', '.join(their_state)}. Play on with one of them, "
            "or ask a moderator."
        )

    return JoinPlan(
        row.id,
        row.expires_at,
        await _side(app, conn, enterer.id, mine_state),
        await _side(app, conn, issuer.id, their_state),
        await is_demo_install(conn),
    )


async def plan_join(
    app: App, actor: Actor, raw_code: str | None = None, *, code_id: int | None = None
) -> JoinPlan:
    """What entering this code would do, read without changing anything: shown to the person typing
    it before they confirm (the join is :func:`join`)."""
    async with app.uow() as uow:
        row = await _code_row(uow.conn, raw_code, code_id, app.clock(), lock=False)
        return await _plan(app, uow.conn, actor, row, lock=False)


async def refuse_code(
    app: App, actor: Actor, raw_code: str | None = None, *, code_id: int | None = None, why: str
) -> bool:
    """Put a code out of use without joining (declined at the question, or typed where others saw
    it); whether there was a usable code."""
    async with app.uow() as uow:
        try:
            row = await _code_row(uow.conn, raw_code, code_id, app.clock(), lock=True)
        except (NotFound, ConfirmationExpired, InvalidArgument):
            return False
        await uow.conn.execute(
            "UPDATE link_codes SET used_at = :now, used_by = :by WHERE id = :id",
            {"now": app.clock(), "by": f"{why}:{actor.label}"[:100], "id": row.id},
        )
    return True


async def join(
    app: App,
    actor: Actor,
    raw_code: str | None = None,
    *,
    code_id: int | None = None,
    survivor_id: int | None = None,
) -> Joined:
    """Join the account typing the code with the account that asked for it (see the module's rules).
    ``survivor_id``: the player the person was shown to stay; anything else is refused."""
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        row = await _code_row(conn, raw_code, code_id, now, lock=True)
        plan = await _plan(app, conn, actor, row, lock=True)
        survivor, moving = plan.survivor, plan.moving
        if survivor_id is not None and survivor.player_id != survivor_id:
            raise ConfirmationExpired(
                "The accounts changed since you were asked (money or history moved): send /link "
                "with the code again to see what joining them would do now."
            )
        moved = moving.identities
        before = {
            f"#{plan.issuer.player_id}": [i.label() for i in plan.issuer.identities],
            f"#{plan.enterer.player_id}": [i.label() for i in plan.enterer.identities],
        }
        await _move(conn, moving.player_id, survivor.player_id, now)
        await conn.execute(
            "UPDATE link_codes SET used_at = :now, used_by = :by WHERE id = :id",
            {"now": now, "by": actor.label, "id": row.id},
        )
        now_identities = tuple(await identities(conn, survivor.player_id))
        enterer = PlayerRef(plan.enterer.player_id, actor.display_name)
        await audit(
            conn,
            enterer,
            actor,
            "link",
            f"#{survivor.player_id}",
            {"moved_from": moving.player_id, "code_id": row.id},
            target_player_id=survivor.player_id,
            before=before,
            after={f"#{survivor.player_id}": [i.label() for i in now_identities]},
        )
        await audit(
            conn,
            enterer,
            actor,
            "link",
            f"#{moving.player_id}",
            {"merged_into": survivor.player_id},
            target_player_id=moving.player_id,
        )
        await notices.notify(
            conn,
            survivor.player_id,
            "Accounts linked",
            f"{' and '.join(i.label() for i in now_identities)} are now one player: one balance, one history, "
            "the same limits. If this was not you, tell a moderator at once.",
            key=f"link:{row.id}",
        )
        account = await app.accounts.get(conn, ledger.PLAYER, survivor.player_id)
        balance = await ledger.balance(conn, account)
        name = (
            await conn.execute(
                "SELECT display_name FROM players WHERE id = :p", {"p": survivor.player_id}
            )
        ).scalar_one()

        def forget() -> None:
            for identity in moved:
                app.player_cache.pop((identity.platform, identity.external_id))

        conn.after_commit(forget)
    return Joined(PlayerRef(survivor.player_id, name), moved, now_identities, balance, plan.is_demo)


async def _move(conn: Conn, source: int, target: int, now: datetime) -> None:
    """Everything of ``source`` (which has no money or history) onto ``target``; the later ban and
    exclusion and the stricter daily limit win."""
    await conn.execute(
        (
            "UPDATE players t SET "
            "ban_reason = CASE WHEN s.banned_until > :now AND (t.banned_until IS NULL OR t.banned_until < s.banned_until) "
            "  THEN s.ban_reason ELSE t.ban_reason END, "
            "banned_until = CASE WHEN s.banned_until > :now THEN GREATEST(t.banned_until, s.banned_until) "
            "  ELSE t.banned_until END, "
            "excluded_until = GREATEST(t.excluded_until, s.excluded_until), "
            "daily_limit = LEAST(t.daily_limit, s.daily_limit), "
            "daily_limit_set_at = GREATEST(t.daily_limit_set_at, s.daily_limit_set_at) "
            "FROM players s WHERE t.id = :t AND s.id = :s"
        ),
        {"t": target, "s": source, "now": now},
    )
    for table in ("player_identities", "player_bans", "player_notes", "link_codes"):
        await conn.execute(
            f"UPDATE {table} SET player_id = :t WHERE player_id = :s", {"t": target, "s": source}
        )
    await conn.execute(
        "UPDATE attempt_quotes SET status = 'cancelled' WHERE player_id = :s AND status = 'open'",
        {"s": source},
    )
    await conn.execute(
        "UPDATE players SET merged_into = :t WHERE id = :s", {"t": target, "s": source}
    )


@dataclass(frozen=True)
class Unlinked:
    player: PlayerRef  # who keeps the money and history
    identity: Identity
    new_player_id: int  # the identity starts over as this player


async def unlink(app: App, actor: Actor, player_ref: str, platform: str, reason: str) -> Unlinked:
    """Moderator: take one platform account off a player; it starts over as a new player with nothing
    (the ban and exclusion of the player go with it). Audited."""
    require_moderator(app.settings, actor)
    reason = reason.strip()
    if not reason:
        raise InvalidArgument("An unlink needs a reason (it goes to the audit log).")
    if platform not in PLATFORMS:
        raise InvalidArgument(f"`platform` must be one of: {', '.join(PLATFORMS)}.")
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        target = await find_player(conn, player_ref, platform=actor.platform)
        await conn.execute("SELECT id FROM players WHERE id = :id FOR UPDATE", {"id": target.id})
        current = await identities(conn, target.id)
        identity = next((i for i in current if i.platform == platform), None)
        if identity is None:
            raise NotFound(
                f"{target.display_name} (#{target.id}) has no {PLATFORM_NAMES[platform]} account."
            )
        if len(current) == 1:
            raise InvalidArgument(
                f"That is the only account of {target.display_name} (#{target.id}): there is "
                "nothing to unlink it from."
            )
        name = (
            await conn.execute(
                "SELECT display_name FROM player_identities WHERE platform = :p AND external_id = :e",
                {"p": identity.platform, "e": identity.external_id},
            )
        ).scalar_one()
        new_id = (
            await conn.execute(
                (
                    "INSERT INTO players (display_name, banned_until, ban_reason, excluded_until, daily_limit, "
                    "daily_limit_set_at) SELECT :n, banned_until, ban_reason, excluded_until, daily_limit, "
                    "daily_limit_set_at FROM players WHERE id = :t RETURNING id"
                ),
                {"n": clean_name(name), "t": target.id},
            )
        ).scalar_one()
        await conn.execute(
            "UPDATE player_identities SET player_id = :n WHERE platform = :p AND external_id = :e",
            {"n": new_id, "p": identity.platform, "e": identity.external_id},
        )
        await audit(
            conn,
            mod,
            actor,
            "unlink",
            f"#{target.id}",
            {"new_player_id": new_id},
            target_player_id=target.id,
            reason=reason[:500],
            before={f"#{target.id}": [i.label() for i in current]},
            after={
                f"#{target.id}": [i.label() for i in current if i != identity],
                f"#{new_id}": [identity.label()],
            },
        )
        conn.after_commit(lambda: app.player_cache.pop((identity.platform, identity.external_id)))
    return Unlinked(target, identity, new_id)
