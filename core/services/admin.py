"""Moderator actions, each checked in core and written to the append-only audit log."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core import ledger
from core.actors import Actor
from core.db import Conn, locks
from core.db.locks import Lock
from core.errors import InvalidArgument, NotFound, NotPermitted, RoundNotActive
from core.services import oversight, rounds
from core.services.attempts.settlement import refund_in
from core.services.audit import audit
from core.services.meta import is_demo_install
from core.services.players import PlayerRef, ensure_player, find_player, hold, require_moderator

if TYPE_CHECKING:
    from core.app import App


@dataclass(frozen=True)
class Granted:
    player: PlayerRef
    amount: int
    balance: int | None  # after the grant; None while it waits for a second moderator
    demo: bool
    request_id: int | None = None  # waiting for a second moderator (/admin grants approve)
    exempt: bool = False  # the console's one operator


async def grant(app: App, actor: Actor, player_ref: str, amount: int, reason: str) -> Granted:
    """Credit a player from the grants account. Never to oneself; over ADMIN_GRANT_REVIEW_ABOVE it
    waits for a second moderator's approval."""
    require_moderator(app.settings, actor)
    if not reason.strip():
        raise InvalidArgument("A grant needs a reason (it goes to the audit log).")
    reason = reason.strip()[:500]
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        # Held: a concurrent /link of this player sees the grant, or the grant goes to the joined player.
        target = await hold(conn, await find_player(conn, player_ref, platform=actor.platform))
        oversight.refuse_own(actor, mod.id, target.id, "grant money")
        demo = await is_demo_install(conn)
        if oversight.grant_needs_review(app.settings, actor, amount):
            request_id = (
                await conn.execute(
                    "INSERT INTO grant_requests (player_id, amount, reason, requested_by, requested_by_label) "
                    "VALUES (:p, :a, :r, :by, :label) RETURNING id",
                    {
                        "p": target.id,
                        "a": amount,
                        "r": reason,
                        "by": mod.id,
                        "label": f"{actor.label} ({mod.display_name})",
                    },
                )  # fmt: skip
            ).scalar_one()
            await audit(
                conn, mod, actor, "grant.request", f"grant request #{request_id}",
                {"amount": amount, "reason": reason}, target_player_id=target.id, reason=reason,
            )  # fmt: skip
            return Granted(target, amount, None, demo, request_id)
        after = await _credit(
            app, conn, mod, actor, target, amount, reason, f"grant:{secrets.token_hex(8)}"
        )
        return Granted(target, amount, after, demo, exempt=oversight.exempt(actor))


async def _credit(
    app: App, conn: Conn, mod: PlayerRef, actor: Actor, target: PlayerRef, amount: int, reason: str,
    key: str, *, approved_by: str | None = None,
) -> int:  # fmt: skip
    source = await app.accounts.get(conn, ledger.GRANTS)
    dest = await app.accounts.get(conn, ledger.PLAYER, target.id)
    before = await ledger.balance(conn, dest)
    await ledger.transfer(conn, key, "grant", [(source, -amount), (dest, amount)], memo=reason)
    after = await ledger.balance(conn, dest)
    details = {"amount": amount, "reason": reason, "transfer": key}
    if approved_by:
        details["requested_by"] = approved_by
    await audit(
        conn, mod, actor, "grant", f"#{target.id}", details, target_player_id=target.id,
        reason=reason, before={"balance": before}, after={"balance": after},
    )  # fmt: skip
    return after


@dataclass(frozen=True)
class GrantRequestRow:
    id: int
    player: PlayerRef
    amount: int
    reason: str
    requested_by: str
    created_at: datetime


async def grant_requests(app: App, actor: Actor) -> list[GrantRequestRow]:
    """The grants waiting for a second moderator, oldest first."""
    require_moderator(app.settings, actor)
    async with app.db.autocommit() as conn:
        rows = (
            await conn.execute(
                "SELECT g.id, g.player_id, p.display_name, g.amount, g.reason, g.requested_by_label, g.created_at "
                "FROM grant_requests g JOIN players p ON p.id = g.player_id WHERE g.status = 'open' ORDER BY g.id"
            )
        ).all()
    return [
        GrantRequestRow(r.id, PlayerRef(r.player_id, r.display_name), r.amount, r.reason,
                        r.requested_by_label, r.created_at)
        for r in rows
    ]  # fmt: skip


async def decide_grant(
    app: App, actor: Actor, request_id: int, approve: bool, reason: str = ""
) -> Granted:
    """A second moderator approves (the grant is made) or rejects a waiting grant. Neither the one who
    asked nor the player it credits may decide it."""
    require_moderator(app.settings, actor)
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        row = (
            await conn.execute(
                "SELECT id, player_id, amount, reason, requested_by, requested_by_label, status "
                "FROM grant_requests WHERE id = :id FOR UPDATE",
                {"id": request_id},
            )
        ).first()
        if row is None:
            raise NotFound(f"No grant request #{request_id}. /admin grants lists them.")
        if row.status != "open":
            raise InvalidArgument(f"Grant request #{request_id} was {row.status} already.")
        if row.requested_by == mod.id and not oversight.exempt(actor):
            raise NotPermitted(
                "You asked for this grant: another moderator approves or rejects it."
            )
        target = await hold(conn, PlayerRef(row.player_id, ""))
        if approve:  # turning down a grant to oneself moves nothing
            oversight.refuse_own(actor, mod.id, target.id, "approve a grant")
        label = f"{actor.label} ({mod.display_name})"
        await conn.execute(
            "UPDATE grant_requests SET status = :s, decided_by = :by, decided_by_label = :label, "
            "decided_at = now(), decision_reason = :r WHERE id = :id",
            {"s": "approved" if approve else "rejected", "by": mod.id, "label": label,
             "r": reason[:500] or None, "id": request_id},
        )  # fmt: skip
        demo = await is_demo_install(conn)
        if not approve:
            await audit(
                conn, mod, actor, "grant.reject", f"grant request #{request_id}",
                {"amount": row.amount, "requested_by": row.requested_by_label},
                target_player_id=target.id, reason=reason[:500] or None,
            )  # fmt: skip
            return Granted(target, row.amount, None, demo, request_id)
        after = await _credit(
            app, conn, mod, actor, target, row.amount, row.reason, f"grant-request:{request_id}",
            approved_by=row.requested_by_label,
        )  # fmt: skip
        return Granted(target, row.amount, after, demo, request_id)


async def new_bounty(
    app: App,
    actor: Actor,
    *,
    name: str,
    prompt: str,
    seed: int,
    base_fee: int | None,
    growth_bps: int | None,
    fee_cap: int | None,
) -> rounds.BountyRow:
    require_moderator(app.settings, actor)
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)

        demo = await is_demo_install(conn)
        bounty = await rounds.create_bounty(
            app,
            conn,
            name=name,
            system_prompt=prompt,
            seed=seed,
            base_fee=base_fee or rounds.DEFAULT_BASE_FEE,
            growth_bps=rounds.DEFAULT_GROWTH_BPS if growth_bps is None else growth_bps,
            fee_cap=fee_cap or rounds.DEFAULT_FEE_CAP,
            is_demo=demo,
            seed_from=ledger.DEMO_FAUCET if demo else ledger.TREASURY,
        )
        await audit(
            conn,
            mod,
            actor,
            "bounty.new",
            f"round #{bounty.id}",
            {
                "name": name,
                "seed": seed,
                "base_fee": bounty.base_fee,
                "growth_bps": bounty.growth_bps,
                "fee_cap": bounty.fee_cap,
                "prompt_sha256": bounty.prompt_sha256,
            },
        )
        return bounty


BOUNTY_SETTABLE = ("name", "base_fee", "growth_bps", "fee_cap")


async def set_bounty(app: App, actor: Actor, field: str, value: Any) -> rounds.BountyRow:
    """Change one rule of the open round (its prompt is committed and cannot change)."""
    require_moderator(app.settings, actor)
    if field not in BOUNTY_SETTABLE:
        raise InvalidArgument(f"Only these can be set: {', '.join(BOUNTY_SETTABLE)}.")
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        current = await rounds.current_bounty(conn)
        if current is None or not current.open:
            raise RoundNotActive("There is no open round to change.")
        bounty = await rounds.lock_round_exclusive(conn, current.id)
        new = {
            "name": bounty.name,
            "base_fee": bounty.base_fee,
            "growth_bps": bounty.growth_bps,
            "fee_cap": bounty.fee_cap,
        }
        new[field] = value
        rounds.validate_fee_rules(new["base_fee"], new["growth_bps"], new["fee_cap"])
        await conn.execute(
            "UPDATE bounties SET name = :name, base_fee = :base_fee, growth_bps = :growth_bps, fee_cap = :fee_cap WHERE id = :id",
            {**new, "id": bounty.id},
        )
        await audit(
            conn,
            mod,
            actor,
            "bounty.set",
            f"round #{bounty.id}",
            {"field": field, "old": getattr(bounty, field), "new": value},
            before={field: getattr(bounty, field)},
            after={field: value},
        )
        return await rounds.get_bounty(conn, bounty.id)


async def set_paused(app: App, actor: Actor, paused: bool) -> rounds.BountyRow:
    require_moderator(app.settings, actor)
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        current = await rounds.current_bounty(conn)
        if current is None or not current.open:
            raise RoundNotActive("There is no open round.")
        bounty = await rounds.lock_round_exclusive(conn, current.id)
        want, have = ("paused", "active") if paused else ("active", "paused")
        if bounty.status != have:
            raise InvalidArgument(f"Round {bounty.name} is already {bounty.status}.")
        await conn.execute(
            "UPDATE bounties SET status = :s WHERE id = :id", {"s": want, "id": bounty.id}
        )
        await audit(
            conn,
            mod,
            actor,
            "pause" if paused else "resume",
            f"round #{bounty.id}",
            {},
            before={"status": bounty.status},
            after={"status": want},
        )
        await rounds.announce(
            conn,
            "round_paused" if paused else "round_resumed",
            f"Round {bounty.name} {'paused' if paused else 'resumed'}",
            "Moderators paused the round; attempts wait until it resumes."
            if paused
            else "Attempts are open again.",
        )
        return await rounds.get_bounty(conn, bounty.id)


async def refund(app: App, actor: Actor, attempt_ref: int, reason: str) -> int:
    """Refund an attempt of the open round in full (not a winning one, not one's own), by the number
    players and /bounty log show (#1 is the first); returns the amount. An ended round takes no
    refunds: its pool was shared."""
    require_moderator(app.settings, actor)
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        bounty = await rounds.current_bounty(conn)
        if bounty is None:
            raise NotFound("No round yet: nothing to refund.")
        if not bounty.open:
            raise RoundNotActive(
                f"Round {bounty.name} has ended ({bounty.status}) and its pool was shared: it takes no refunds."
            )
        row = (
            await conn.execute(
                "SELECT id, fee, status, player_id FROM attempts WHERE bounty_id = :b AND number = :n",
                {"b": bounty.id, "n": attempt_ref - 1},
            )
        ).first()
        if row is None:
            raise NotFound(f"No attempt #{attempt_ref} in the current round (see /bounty log).")
        if row.status == "won":
            raise InvalidArgument("A winning attempt cannot be refunded.")
        if row.status == "refunded":
            raise InvalidArgument(f"Attempt #{attempt_ref} was already refunded.")
        oversight.refuse_own(actor, mod.id, row.player_id, "refund an attempt")
        done = await refund_in(
            app, conn, row.id, f"refunded by a moderator: {reason}"[:500],
            ("pending", "rejected", "late"),
        )  # fmt: skip
        if not done:
            raise InvalidArgument(f"Attempt #{attempt_ref} changed meanwhile; look again.")
        await audit(
            conn, mod, actor, "refund", f"attempt #{attempt_ref} (id {row.id})",
            {"amount": row.fee, "reason": reason[:500]}, target_player_id=row.player_id,
            reason=reason[:500], before={"status": row.status}, after={"status": "refunded"},
        )  # fmt: skip
    return row.fee


async def seed_demo(app: App, actor: Actor, *, credits: int, prompt: str) -> bool:
    """On a fresh local database: mark it a demo, open a demo round, credit the console player.
    Returns False when the database already has a round (nothing is changed)."""
    async with app.uow() as uow:
        conn = uow.conn
        await locks.xact(conn, Lock.DEMO_SEED)
        if (await conn.execute("SELECT count(*) FROM bounties")).scalar_one():
            return False
        await conn.execute(
            "INSERT INTO game_meta (key, value) VALUES ('demo', 'true') ON CONFLICT (key) DO NOTHING"
        )
        player = await hold(conn, await ensure_player(conn, actor))
        await rounds.create_bounty(
            app,
            conn,
            name="Demo round",
            system_prompt=prompt,
            seed=1_000 * 1_000_000,
            is_demo=True,
            seed_from=ledger.DEMO_FAUCET,
        )
        faucet = await app.accounts.get(conn, ledger.DEMO_FAUCET)
        dest = await app.accounts.get(conn, ledger.PLAYER, player.id)
        await ledger.transfer(
            conn, f"demo-credits:{player.id}", "demo_credit", [(faucet, -credits), (dest, credits)]
        )
        return True
