"""Moderators' actions on players (SPEC §8): ban, unban, notes, a player's audit, announcements.

Each checks the moderator right here (whatever the adapter showed) and writes one audit row with who,
what, the target, the reason, and the state before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core import ledger
from core.actors import Actor
from core.db import Conn
from core.durations import describe
from core.errors import InvalidArgument, NotPermitted
from core.money import usdc
from core.services import notices, rounds
from core.services.audit import audit
from core.services.identity import identities
from core.services.players import (
    PERMANENT,
    PlayerRef,
    ban_end_text,
    ensure_player,
    find_player,
    player_is_moderator,
    require_moderator,
)
from core.services.privacy import bans

if TYPE_CHECKING:
    from core.app import App

MAX_REASON = 500
MAX_NOTE = 2_000
MAX_ANNOUNCEMENT = 2_000
AUDIT_PAGE = 20


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _clean(value: str | None, what: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidArgument(f"{what} is empty: write something.")
    if len(value) > limit:
        raise InvalidArgument(f"{what} is too long: {len(value):,} characters, at most {limit:,}.")
    return value


async def _target(conn: Conn, actor: Actor, player_ref: str) -> tuple[PlayerRef, PlayerRef]:
    """(the moderator's player, the player named)."""
    mod = await ensure_player(conn, actor)
    return mod, await find_player(conn, player_ref, platform=actor.platform)


@dataclass(frozen=True)
class Banned:
    player: PlayerRef
    until: datetime  # PERMANENT for "until unbanned"
    replaced: datetime | None  # the end of the ban this one replaced, if one was in force

    @property
    def end_text(self) -> str:
        return ban_end_text(self.until)


async def ban(
    app: App, actor: Actor, player_ref: str, duration: timedelta | None, reason: str
) -> Banned:
    """Ban a player for ``duration`` (None: until unbanned): every paid or team command is refused
    with the end and the reason; read-only commands still answer. A new ban replaces one in force."""
    require_moderator(app.settings, actor)
    reason = _clean(reason, "The reason", MAX_REASON)
    now = app.clock()
    until = PERMANENT if duration is None else now + duration
    async with app.uow() as uow:
        conn = uow.conn
        mod, target = await _target(conn, actor, player_ref)
        if target.id == mod.id:
            raise NotPermitted("You cannot ban yourself.")
        if await player_is_moderator(conn, app.settings, target.id):
            raise NotPermitted(
                f"{target.display_name} (#{target.id}) is a moderator: moderators cannot be banned "
                "here. Take away their moderator right first."
            )
        row = (
            await conn.execute(
                "SELECT banned_until, ban_reason FROM players WHERE id = :id FOR UPDATE",
                {"id": target.id},
            )
        ).one()
        in_force = row.banned_until is not None and row.banned_until > now
        await conn.execute(
            (
                "UPDATE player_bans SET lifted_at = :now, lifted_by = :by WHERE player_id = :p AND lifted_at IS NULL "
                "AND (ends_at IS NULL OR ends_at > :now)"
            ),
            {"now": now, "by": f"{actor.label} (replaced by a new ban)", "p": target.id},
        )
        ban_id = (
            await conn.execute(
                (
                    "INSERT INTO player_bans (player_id, moderator, reason, created_at, ends_at) "
                    "VALUES (:p, :m, :r, :now, :e) RETURNING id"
                ),
                {
                    "p": target.id,
                    "m": f"{actor.label} ({mod.display_name})",
                    "r": reason,
                    "now": now,
                    "e": None if duration is None else until,
                },
            )
        ).scalar_one()
        await conn.execute(
            "UPDATE players SET banned_until = :u, ban_reason = :r WHERE id = :id",
            {"u": until, "r": reason, "id": target.id},
        )
        await audit(
            conn,
            mod,
            actor,
            "ban",
            f"#{target.id}",
            {"ban_id": ban_id, "duration": describe(duration) if duration else "until unbanned"},
            target_player_id=target.id,
            reason=reason,
            before={
                "banned_until": _when(row.banned_until) if in_force else None,
                "ban_reason": row.ban_reason if in_force else None,
            },
            after={
                "banned_until": _when(until) if duration else "until unbanned",
                "ban_reason": reason,
            },
        )
        await notices.notify(
            conn,
            target.id,
            "You are banned",
            f"A moderator banned you {ban_end_text(until)}: {reason}\n"
            "Paid and team commands are refused meanwhile; you can still look around.",
            key=f"ban:{ban_id}",
            tone="danger",
        )
    return Banned(target, until, row.banned_until if in_force else None)


async def unban(app: App, actor: Actor, player_ref: str, reason: str | None) -> PlayerRef:
    """Lift a player's ban now."""
    require_moderator(app.settings, actor)
    reason = (reason or "").strip()[:MAX_REASON] or None
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        mod, target = await _target(conn, actor, player_ref)
        row = (
            await conn.execute(
                "SELECT banned_until, ban_reason FROM players WHERE id = :id FOR UPDATE",
                {"id": target.id},
            )
        ).one()
        if row.banned_until is None or row.banned_until <= now:
            raise InvalidArgument(f"{target.display_name} (#{target.id}) is not banned.")
        await conn.execute(
            "UPDATE players SET banned_until = NULL, ban_reason = NULL WHERE id = :id",
            {"id": target.id},
        )
        await conn.execute(bans.FORGET, {"p": target.id})  # kept for an erased player's return
        await conn.execute(
            (
                "UPDATE player_bans SET lifted_at = :now, lifted_by = :by WHERE player_id = :p AND lifted_at IS NULL "
                "AND (ends_at IS NULL OR ends_at > :now)"
            ),
            {"now": now, "by": f"{actor.label} ({mod.display_name})", "p": target.id},
        )
        await audit(
            conn,
            mod,
            actor,
            "unban",
            f"#{target.id}",
            {},
            target_player_id=target.id,
            reason=reason,
            before={
                "banned_until": _when(row.banned_until)
                if row.banned_until < PERMANENT
                else "until unbanned",
                "ban_reason": row.ban_reason,
            },
            after={"banned_until": None},
        )
        await notices.notify(
            conn,
            target.id,
            "Your ban was lifted",
            "You can play again.",
            key=f"unban:{target.id}:{now.isoformat()}",
            tone="success",
        )
    return target


async def add_note(app: App, actor: Actor, player_ref: str, body: str) -> PlayerRef:
    """Keep a moderator's note about a player (shown in /admin audit)."""
    require_moderator(app.settings, actor)
    body = _clean(body, "The note", MAX_NOTE)
    async with app.uow() as uow:
        conn = uow.conn
        mod, target = await _target(conn, actor, player_ref)
        note_id = (
            await conn.execute(
                "INSERT INTO player_notes (player_id, author, body, created_at) VALUES (:p, :a, :b, :now) RETURNING id",
                {
                    "p": target.id,
                    "a": f"{actor.label} ({mod.display_name})",
                    "b": body,
                    "now": app.clock(),
                },
            )
        ).scalar_one()
        await audit(
            conn,
            mod,
            actor,
            "note",
            f"#{target.id}",
            {"note_id": note_id, "text": body},
            target_player_id=target.id,
            after={"note": body},
        )
    return target


async def announce(app: App, actor: Actor, body: str) -> int:
    """Post to every announcement channel on every platform, through the outbox; the announcement's id."""
    require_moderator(app.settings, actor)
    body = _clean(body, "The announcement", MAX_ANNOUNCEMENT)
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        announcement_id = await rounds.announce(
            conn, "moderator", "Announcement from the moderators", body
        )
        await audit(
            conn,
            mod,
            actor,
            "announce",
            f"announcement #{announcement_id}",
            {"announcement_id": announcement_id},
            after={"text": body},
        )
    return announcement_id


# --- /admin audit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    player: PlayerRef
    identities: tuple[str, ...]
    joined_from: tuple[int, ...]  # players /link merged into this one
    balance: int
    is_demo: bool
    attempts: int
    paid: int
    banned: str | None  # "until ...: reason" while a ban is in force
    bans: int
    excluded_until: datetime | None
    daily_limit: int | None
    notes: int
    is_moderator: bool


@dataclass(frozen=True)
class AuditPage:
    standing: Standing
    entries: tuple[str, ...]  # newest first
    page: int
    pages: int


def _fmt(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M}"


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None, demo: bool) -> str:
    if not before and not after:
        return ""
    keys = list(dict.fromkeys([*(before or {}), *(after or {})]))
    parts = []
    for k in keys:
        b, a = (before or {}).get(k), (after or {}).get(k)
        if k in ("balance", "daily_limit"):
            b, a = (
                (usdc(b, demo=demo) if b is not None else None),
                (usdc(a, demo=demo) if a is not None else None),
            )
        parts.append(f"{k}: {b} -> {a}" if before else f"{k}: {a}")
    return " [" + "; ".join(str(p) for p in parts) + "]"


async def player_audit(app: App, actor: Actor, player_ref: str, page: int = 1) -> AuditPage:
    """A player's standing and record, newest first: bans, notes, grants, refunds, limits, links."""
    require_moderator(app.settings, actor)
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        mod, target = await _target(conn, actor, player_ref)
        ids = [
            target.id,
            *(
                await conn.execute(
                    "SELECT id FROM players WHERE merged_into = :p ORDER BY id", {"p": target.id}
                )
            )
            .scalars()
            .all(),
        ]
        p = (
            await conn.execute(
                "SELECT banned_until, ban_reason, excluded_until, daily_limit FROM players WHERE id = :id",
                {"id": target.id},
            )
        ).one()
        account = await app.accounts.get(conn, ledger.PLAYER, target.id)
        balance = await ledger.balance(conn, account)
        counts = (
            await conn.execute(
                (
                    "SELECT (SELECT count(*) FROM attempts WHERE player_id = ANY(:ids) AND status <> 'refunded') AS n, "
                    "(SELECT COALESCE(SUM(fee), 0) FROM attempts WHERE player_id = ANY(:ids) AND status <> 'refunded') AS paid, "
                    "(SELECT count(*) FROM player_bans WHERE player_id = ANY(:ids)) AS bans, "
                    "(SELECT count(*) FROM player_notes WHERE player_id = ANY(:ids)) AS notes, "
                    "EXISTS (SELECT 1 FROM game_meta WHERE key = 'demo') AS demo"
                ),
                {"ids": ids},
            )
        ).one()
        entries: list[tuple[datetime, int, str]] = []
        for r in (
            await conn.execute(
                (
                    "SELECT id, created_at, actor, action, target, details, reason, before, after FROM audit_log "
                    "WHERE (target_player_id = ANY(:ids) OR (target_player_id IS NULL AND target = ANY(:targets))) "
                    "AND action <> 'audit' ORDER BY id DESC LIMIT 1000"
                ),
                {"ids": ids, "targets": [f"#{i}" for i in ids]},
            )
        ).all():
            entries.append((r.created_at, 2, _audit_line(r, bool(counts.demo))))
        for r in (
            await conn.execute(
                (
                    "SELECT a.created_at, a.finished_at, a.number, a.fee, a.verdict_reason, b.name, b.is_demo FROM attempts a "
                    "JOIN bounties b ON b.id = a.bounty_id WHERE a.player_id = ANY(:ids) AND a.status = 'refunded' "
                    "AND COALESCE(a.verdict_reason, '') NOT LIKE 'refunded by a moderator:%' ORDER BY a.id DESC LIMIT 1000"
                ),
                {"ids": ids},
            )
        ).all():
            when = r.finished_at or r.created_at
            entries.append(
                (
                    when,
                    1,
                    f"{_fmt(when)} refund of attempt #{r.number + 1} in {r.name}: "
                    f"{usdc(r.fee, demo=r.is_demo)} ({r.verdict_reason or 'no reason'})",
                )
            )
        for r in (
            await conn.execute(
                (
                    "SELECT p.id, p.amount, p.status, p.wallet_address, p.requested_at, p.decided_by, "
                    "p.reason, p.paid_by, (SELECT string_agg(a.moderator_label, ', ' ORDER BY a.created_at) "
                    "FROM payout_approvals a WHERE a.payout_id = p.id) AS approvers "
                    "FROM payouts p WHERE p.player_id = ANY(:ids) ORDER BY p.id DESC LIMIT 1000"
                ),
                {"ids": ids},
            )
        ).all():
            entries.append((r.requested_at, 1, _payout_line(r, bool(counts.demo))))
        for r in (
            await conn.execute(
                (
                    "SELECT created_at, ends_at, lifted_at, lifted_by, reason, moderator FROM player_bans "
                    "WHERE player_id = ANY(:ids) AND (lifted_at IS NOT NULL OR ends_at <= :now) ORDER BY id DESC LIMIT 1000"
                ),
                {"ids": ids, "now": now},
            )
        ).all():
            if r.lifted_at is not None:
                entries.append(
                    (
                        r.lifted_at,
                        0,
                        f"{_fmt(r.lifted_at)} ban of {_fmt(r.created_at)} lifted by {r.lifted_by}",
                    )
                )
            else:
                entries.append(
                    (
                        r.ends_at,
                        0,
                        f"{_fmt(r.ends_at)} ban of {_fmt(r.created_at)} ended ({r.reason})",
                    )
                )
        await audit(
            conn, mod, actor, "audit", f"#{target.id}", {"page": page}, target_player_id=target.id
        )
        names = [
            i.label() + ("" if i.platform == "console" else f" ({i.external_id})")
            for i in await identities(conn, target.id)
        ]
        is_mod = await player_is_moderator(conn, app.settings, target.id)
    entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
    pages = max(1, -(-len(entries) // AUDIT_PAGE))
    if page > pages:
        raise InvalidArgument(
            f"There {'is' if pages == 1 else 'are'} only {pages} page{'s' if pages != 1 else ''}."
        )
    shown = tuple(e[2] for e in entries[(page - 1) * AUDIT_PAGE : page * AUDIT_PAGE])
    banned = None
    if p.banned_until is not None and p.banned_until > now:
        banned = f"{ban_end_text(p.banned_until)}: {p.ban_reason or 'no reason given'}"
    standing = Standing(
        player=target,
        identities=tuple(names),
        joined_from=tuple(ids[1:]),
        balance=balance,
        is_demo=counts.demo,
        attempts=counts.n,
        paid=int(counts.paid),
        banned=banned,
        bans=counts.bans,
        excluded_until=p.excluded_until if p.excluded_until and p.excluded_until > now else None,
        daily_limit=p.daily_limit,
        notes=counts.notes,
        is_moderator=is_mod,
    )
    return AuditPage(standing, shown, page, pages)


_ACTIONS = {
    "grant": "grant",
    "ban": "banned",
    "unban": "unbanned",
    "note": "note",
    "refund": "refund",
    "grant.request": "grant asked for (waits for a second moderator)",
    "grant.reject": "grant turned down",
    "link": "accounts linked",
    "unlink": "account unlinked",
    "wallet.link": "wallet linked",
    "wallet.unlink": "wallet unlinked",
    "limits.daily": "daily limit set",
    "limits.exclude": "self-exclusion",
}


def _payout_line(r, demo: bool) -> str:
    """A payout and who decided it: the approving moderators, or who turned it down and why."""
    wallet = f"{r.wallet_address[:4]}…{r.wallet_address[-4:]}"
    line = f"{_fmt(r.requested_at)} payout #{r.id} of {usdc(r.amount, demo=demo)} to {wallet}: {r.status}"
    if r.approvers:
        line += f"; approved by {r.approvers}"
    if r.status == "rejected" and r.decided_by:
        line += f"; turned down by {r.decided_by}" + (f" — {r.reason}" if r.reason else "")
    if r.paid_by:
        line += "; sent by the worker" if r.paid_by == "worker" else f"; marked paid by {r.paid_by}"
    return line


def _audit_line(r, demo: bool) -> str:
    details = r.details or {}
    what = _ACTIONS.get(r.action, r.action)
    line = f"{_fmt(r.created_at)} {what} by {r.actor}"
    if r.action in ("grant", "grant.request", "grant.reject"):
        line += f": {usdc(details.get('amount', 0), demo=demo)}"
        if r.action != "grant.request" and details.get("requested_by"):
            line += f" (asked for by {details['requested_by']})"
    elif r.action == "ban":
        line += f" ({details.get('duration', '?')})"
    elif r.action == "note":
        line += f": {details.get('text', '')}"
    elif r.action == "refund":
        line += f" of {r.target}: {usdc(details.get('amount', 0), demo=demo)}"
    elif r.action == "link" and "merged_into" in details:
        line += f": joined into #{details['merged_into']}"
    if r.reason and r.action != "note":
        line += f" — {r.reason}"
    return line + ("" if r.action in ("note",) else _change(r.before, r.after, demo))
