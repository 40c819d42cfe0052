"""Moderator actions, each checked in core and written to the append-only audit log."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from core import ledger
from core.actors import Actor
from core.db import Conn
from core.errors import InvalidArgument, NotFound, RoundNotActive
from core.services import rounds
from core.services.players import PlayerRef, ensure_player, find_player, hold, require_moderator

if TYPE_CHECKING:
    from core.app import App


async def audit(
    conn: Conn,
    moderator: PlayerRef,
    actor: Actor,
    action: str,
    target: str | None,
    details: dict[str, Any],
    *,
    target_player_id: int | None = None,
    reason: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """One append-only audit row: who (``actor``), what (``action``), about whom (``target``, and
    ``target_player_id`` when it is a player), why, and the state before and after."""
    await conn.execute(
        (
            "INSERT INTO audit_log (actor_player_id, actor, action, target, details, target_player_id, reason, "
            "before, after) VALUES (:p, :a, :act, :t, :d, :tp, :r, :b, :af)"
        ),
        {
            "p": moderator.id,
            "a": f"{actor.label} ({moderator.display_name})",
            "act": action,
            "t": target,
            "d": details,
            "tp": target_player_id,
            "r": reason,
            "b": before,
            "af": after,
        },
    )


async def grant(
    app: App, actor: Actor, player_ref: str, amount: int, reason: str
) -> tuple[PlayerRef, int, bool]:
    """Credit a player from the grants account; returns the player, new balance, demo flag."""
    require_moderator(app.settings, actor)
    if not reason.strip():
        raise InvalidArgument("A grant needs a reason (it goes to the audit log).")
    async with app.uow() as uow:
        conn = uow.conn
        mod = await ensure_player(conn, actor)
        # Held: a concurrent /link of this player sees the grant, or the grant goes to the joined player.
        target = await hold(conn, await find_player(conn, player_ref, platform=actor.platform))
        source = await app.accounts.get(conn, ledger.GRANTS)
        dest = await app.accounts.get(conn, ledger.PLAYER, target.id)
        before = await ledger.balance(conn, dest)
        key = f"grant:{secrets.token_hex(8)}"
        await ledger.transfer(
            conn, key, "grant", [(source, -amount), (dest, amount)], memo=reason[:500]
        )
        after = await ledger.balance(conn, dest)
        await audit(
            conn,
            mod,
            actor,
            "grant",
            f"#{target.id}",
            {"amount": amount, "reason": reason[:500], "transfer": key},
            target_player_id=target.id,
            reason=reason[:500],
            before={"balance": before},
            after={"balance": after},
        )
        from core.services.views import is_demo_install

        return target, after, await is_demo_install(conn)


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
        from core.services.views import is_demo_install

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
    """Refund an attempt of the current round in full (not a winning one), by the number players and
    /bounty log show (#1 is the first); returns the amount."""
    from core.services.attempts import refund_attempt

    require_moderator(app.settings, actor)
    async with app.uow() as uow:
        bounty = await rounds.current_bounty(uow.conn)
        row = None
        if bounty is not None:
            row = (
                await uow.conn.execute(
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
    done = await refund_attempt(
        app,
        row.id,
        f"refunded by a moderator: {reason}"[:500],
        allowed=("pending", "rejected", "late"),
    )
    if not done:
        raise InvalidArgument(f"Attempt #{attempt_ref} changed meanwhile; look again.")
    async with app.uow() as uow:
        mod = await ensure_player(uow.conn, actor)
        await audit(
            uow.conn,
            mod,
            actor,
            "refund",
            f"attempt #{attempt_ref} (id {row.id})",
            {"amount": row.fee, "reason": reason[:500]},
            target_player_id=row.player_id,
            reason=reason[:500],
            before={"status": row.status},
            after={"status": "refunded"},
        )
    return row.fee


async def seed_demo(app: App, actor: Actor, *, credits: int, prompt: str) -> bool:
    """On a fresh local database: mark it a demo, open a demo round, credit the console player.
    Returns False when the database already has a round (nothing is changed)."""
    async with app.uow() as uow:
        conn = uow.conn
        await conn.execute("SELECT pg_advisory_xact_lock(2, 0)")
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
