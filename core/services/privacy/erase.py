"""``/privacy delete``: a player's identities, texts and usernames removed; what the ledger and the
game's fairness need kept under a pseudonym ("erased player #12", the player's id, which is all the
ledger ever held of them).

Refused while the player holds money, a stake, a team place, an open payout, an attempt still being
answered, or paid attempts in a round that may still share its pool with them: money must never land
on a player nobody can reach (``bounty check``'s promise). On a demo installation the demo credits go
back to the demo faucet instead (they are not money).

Removed: platform accounts (ids, names, usernames), attempt texts and the guardian's replies, their
vectors and summaries, team chat messages, wallet signatures and challenges, link codes, notices.
Kept: every ledger entry and transfer (amounts), attempts' numbers, fees and hashes (the round's
public log), team memberships and contributions (pool shares), deposits, payouts and stakes (amounts,
transaction signatures and wallet addresses: where money came from and went, on chain), moderators'
notes and bans and the audit log, with the player's names replaced by the pseudonym. A ban in force
outlives the erasure (``bans``).

The audit log is append-only; its trigger lets exactly this transaction (the one that writes the
``player_erasures`` row) rewrite the names in the rows about the player, and nothing else."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import ledger
from core.actors import Actor
from core.db import Conn
from core.errors import ConfirmationExpired, NotPermitted
from core.money import usdc
from core.services import outbox
from core.services.players import PERMANENT, ensure_player, forget_identity
from core.services.privacy import bans
from core.services.privacy.export import player_ids

if TYPE_CHECKING:
    from core.app import App

SUMMARISE_JOB = "bounty.memory.summarise"  # workers/tasks/memory.py


def pseudonym(player_id: int) -> str:
    return f"erased player #{player_id}"


# --- what stops an erasure --------------------------------------------------------------------


async def blockers(conn: Conn, ids: list[int], now: datetime, *, demo: bool) -> list[str]:
    """What the player must settle first, each with what to do; empty: nothing stops the erasure."""
    found: list[str] = []
    if not demo:
        for r in (
            await conn.execute(
                "SELECT currency, balance FROM accounts WHERE kind = 'player' AND owner_id = ANY(:ids) "
                "AND balance > 0 ORDER BY id",
                {"ids": ids},
            )
        ).all():
            held = usdc(r.balance) if r.currency == "USDC" else f"{r.balance} {r.currency}"
            found.append(
                f"You hold {held}: withdraw it to your verified wallet with /withdraw <amount> "
                "(/wallet link first if you have none), or spend it."
            )
    team = (
        await conn.execute(
            "SELECT t.name FROM team_members m JOIN teams t ON t.id = m.team_id "
            "WHERE m.player_id = ANY(:ids) AND m.left_at IS NULL LIMIT 1",
            {"ids": ids},
        )
    ).first()
    if team is not None:
        found.append(
            f"You are in team {team.name}: /team leave first (your share of its pool comes back "
            "to your balance)."
        )
    for s in (
        await conn.execute(
            "SELECT id, unlocks_at FROM stakes WHERE player_id = ANY(:ids) AND unstaked_at IS NULL ORDER BY id",
            {"ids": ids},
        )
    ).all():
        if s.unlocks_at > now:
            found.append(
                f"Your stake #{s.id} is locked until {s.unlocks_at.astimezone(UTC):%Y-%m-%d}: "
                f"/unstake {s.id} once it unlocks."
            )
        else:
            found.append(f"Your stake #{s.id} has unlocked: /unstake {s.id} first.")
    for month, stake_id in await _undistributed(conn, ids, now):
        found.append(
            f"Your stake #{stake_id} still earns a share of {month}, paid when the moderators "
            "distribute that month: ask again after that."
        )
    for p in (
        await conn.execute(
            "SELECT id, amount, status FROM payouts WHERE player_id = ANY(:ids) "
            "AND status IN ('requested','approved','sending') ORDER BY id",
            {"ids": ids},
        )
    ).all():
        found.append(
            f"Your payout #{p.id} of {usdc(p.amount)} is {p.status}: wait until it is paid or rejected."
        )
    pending = (
        await conn.execute(
            "SELECT count(*) FROM attempts WHERE player_id = ANY(:ids) AND status = 'pending'",
            {"ids": ids},
        )
    ).scalar_one()
    if pending:
        found.append("An attempt of yours is still being answered: wait a minute.")
    if not demo:
        for r in (
            await conn.execute(
                "SELECT DISTINCT b.name FROM attempts a JOIN bounties b ON b.id = a.bounty_id "
                "JOIN accounts acc ON acc.id = a.payer_account_id "
                "WHERE acc.kind = 'player' AND acc.owner_id = ANY(:ids) "
                "AND b.status IN ('active','paused') AND a.status <> 'refunded'",
                {"ids": ids},
            )
        ).all():
            found.append(
                f"You paid for attempts in round {r.name}, which is still open: if it expires without "
                "a winner its pool is shared among those who paid, you included. Ask again once it has ended."
            )
    return found


def _months(start: datetime, end: datetime) -> list[str]:
    """The calendar months (UTC) that [start, end) touches, as "YYYY-MM"."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    out = []
    y, m = start.year, start.month
    while datetime(y, m, 1, tzinfo=UTC) < end:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


async def _undistributed(conn: Conn, ids: list[int], now: datetime) -> list[tuple[str, int]]:
    """(month, stake id) for ended stakes' months not shared yet: a share would land on nobody."""
    stakes = (
        await conn.execute(
            "SELECT id, started_at, unlocks_at FROM stakes WHERE player_id = ANY(:ids) "
            "AND unstaked_at IS NOT NULL ORDER BY id",
            {"ids": ids},
        )
    ).all()
    if not stakes:
        return []
    shared = set((await conn.execute("SELECT month FROM staking_distributions")).scalars().all())
    out = []
    for s in stakes:
        months = [m for m in _months(s.started_at, min(s.unlocks_at, now)) if m not in shared]
        if months:
            out.append((months[0], s.id))
    return out


# --- replacing names in what is kept ----------------------------------------------------------


class Redactor:
    """Replaces a player's platform labels, ids, usernames and names in text by their pseudonym."""

    def __init__(self, pseudonym: str, identities: Iterable[Any], names: Iterable[str]) -> None:
        self.pseudonym = pseudonym
        labels, words = set(), set()
        for i in identities:
            label = f"{i.platform}:{i.external_id}"
            labels.add(label)
            labels |= {f"{label} ({n})" for n in {i.display_name, *names} if n}
            if i.platform == "discord":
                labels |= {f"<@{i.external_id}>", f"<@!{i.external_id}>"}
            if i.platform != "console":
                words.add(i.external_id)
            if i.username:
                labels.add("@" + i.username)
                words.add(i.username)
            words.add(i.display_name)
        words |= set(names)
        self.labels = sorted(labels, key=len, reverse=True)
        # "telegram:4242 (Mona)" is how the game names someone in moderators' records: the name in
        # brackets goes with the label, whatever the person was called then.
        parts = [
            re.escape(x) + (r"(?: \([^()\n]{0,70}\))?" if ":" in x else "") for x in self.labels
        ]
        # Bare names and ids only as whole words, and only long enough not to hit ordinary words.
        parts += [
            rf"(?<![\w@]){re.escape(w)}(?!\w)"
            for w in sorted((w for w in words if w and len(w) >= 3), key=len, reverse=True)
        ]
        self._pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def text(self, value: str | None) -> str | None:
        if value is None or self._pattern is None:
            return value
        return self._pattern.sub(self.pseudonym, value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value


async def _rewrite(
    conn: Conn,
    table: str,
    key: str,
    columns: tuple[str, ...],
    where: str,
    params: dict,
    r: Redactor,
) -> int:
    """Rewrite ``columns`` of the rows ``where`` selects through ``r``; how many rows changed."""
    cols = ", ".join(columns)
    rows = (
        await conn.execute(f"SELECT {key} AS k, {cols} FROM {table} WHERE {where}", params)
    ).all()
    changed = 0
    for row in rows:
        new = {c: r.json(row[c]) for c in columns}
        if all(new[c] == row[c] for c in columns):
            continue
        sets = ", ".join(f"{c} = :{c}" for c in columns)
        await conn.execute(f"UPDATE {table} SET {sets} WHERE {key} = :k", {**new, "k": row["k"]})
        changed += 1
    return changed


def _labels_like(r: Redactor) -> list[str]:
    return [f"%{label}%" for label in r.labels if ":" in label]


# --- the erasure ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What an erasure would remove and keep, shown before the player confirms."""

    player_id: int
    blockers: tuple[str, ...]
    identities: tuple[str, ...]  # "Telegram @alice"
    attempts: int
    entries: int
    demo_balance: int  # demo credits going back to the demo faucet
    banned: bool


async def _is_demo(conn: Conn) -> bool:
    return bool(
        (await conn.execute("SELECT value FROM game_meta WHERE key = 'demo'")).scalar_one_or_none()
    )


async def _plan(conn: Conn, player_id: int, ids: list[int], now: datetime) -> Plan:
    demo = await _is_demo(conn)
    found = await blockers(conn, ids, now, demo=demo)
    idents = (
        await conn.execute(
            "SELECT platform, username, display_name FROM player_identities WHERE player_id = ANY(:ids) ORDER BY id",
            {"ids": ids},
        )
    ).all()
    counts = (
        await conn.execute(
            "SELECT (SELECT count(*) FROM attempts WHERE player_id = ANY(:ids)) AS attempts, "
            "(SELECT count(*) FROM entries e JOIN accounts a ON a.id = e.account_id "
            " WHERE a.kind = 'player' AND a.owner_id = ANY(:ids)) AS entries, "
            "(SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE kind = 'player' AND owner_id = ANY(:ids)) AS balance, "
            "EXISTS (SELECT 1 FROM players WHERE id = ANY(:ids) AND banned_until > :now) AS banned",
            {"ids": ids, "now": now},
        )
    ).one()
    return Plan(
        player_id,
        tuple(found),
        tuple(
            f"{i.platform.capitalize()} " + (f"@{i.username}" if i.username else i.display_name)
            for i in idents
        ),
        counts.attempts,
        counts.entries,
        int(counts.balance) if demo else 0,
        counts.banned,
    )


async def plan(app: App, actor: Actor) -> Plan:
    """What erasing the player behind ``actor`` would do, and what stops it now."""
    async with app.uow() as uow:
        conn = uow.conn
        player = await ensure_player(conn, actor)
        return await _plan(conn, player.id, await player_ids(conn, player.id), app.clock())


@dataclass(frozen=True)
class Erased:
    player_id: int
    pseudonym: str
    kept: dict[str, int]
    banned: bool  # the ban in force outlives the erasure


async def erase(app: App, actor: Actor, player_id: int) -> Erased:
    """Erase the player behind ``actor``, who must be ``player_id`` (the one who was asked)."""
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        if (
            await conn.execute(
                "SELECT 1 FROM player_erasures WHERE player_id = :p", {"p": player_id}
            )
        ).first():
            raise ConfirmationExpired("Your data was deleted already.")
        player = await ensure_player(conn, actor)
        if player.id != player_id:
            raise NotPermitted("This button is not for you.")
        ids = await player_ids(conn, player_id)
        # Serialise with everything that gives this player something (players.hold shares the row).
        await conn.execute(
            "SELECT id FROM players WHERE id = ANY(:ids) ORDER BY id FOR UPDATE", {"ids": ids}
        )
        await conn.execute(
            "SELECT id FROM accounts WHERE kind = 'player' AND owner_id = ANY(:ids) ORDER BY id FOR UPDATE",
            {"ids": ids},
        )
        p = await _plan(conn, player_id, ids, now)
        if p.blockers:
            raise NotPermitted("Your data cannot be deleted yet:\n" + "\n".join(p.blockers))
        accounts = (
            await conn.execute(
                "SELECT platform, external_id FROM player_identities WHERE player_id = ANY(:ids)",
                {"ids": ids},
            )
        ).all()
        erased = await _erase(app, conn, player_id, ids, now)

        def forget() -> None:  # this process's caches; others notice the identity is gone
            forget_identity(app, actor)
            for a in accounts:
                app.player_cache.pop((a.platform, a.external_id))
                app.seen_identities.pop((a.platform, a.external_id))

        conn.after_commit(forget)
    return erased


async def _erase(app: App, conn: Conn, player_id: int, ids: list[int], now: datetime) -> Erased:
    name = pseudonym(player_id)
    params = {"ids": ids}
    identities = (
        await conn.execute(
            "SELECT platform, external_id, display_name, username FROM player_identities "
            "WHERE player_id = ANY(:ids) ORDER BY id",
            params,
        )
    ).all()
    names = (
        (await conn.execute("SELECT display_name FROM players WHERE id = ANY(:ids)", params))
        .scalars()
        .all()
    )
    r = Redactor(name, identities, names)
    # Written first: the audit log's trigger allows the rewrites below in this transaction only.
    await conn.execute(
        "INSERT INTO player_erasures (player_id, joined, erased_at, kept) VALUES (:p, :j, now(), '{}')",
        {"p": player_id, "j": ids[1:]},
    )

    ban = (
        await conn.execute(
            "SELECT banned_until, ban_reason FROM players WHERE id = ANY(:ids) AND banned_until > :now "
            "ORDER BY banned_until DESC LIMIT 1",
            {"ids": ids, "now": now},
        )
    ).first()
    if ban is not None:
        await bans.keep_ban(
            conn,
            player_id,
            ids,
            None if ban.banned_until >= PERMANENT else ban.banned_until,
            r.text(ban.ban_reason) or "no reason given",
        )
    await conn.execute("DELETE FROM banned_identities WHERE ends_at <= now()")

    # Demo credits are not money: they go back where they came from.
    if await _is_demo(conn):
        faucet = await app.accounts.get(conn, ledger.DEMO_FAUCET)
        for acc in (
            await conn.execute(
                "SELECT id, balance FROM accounts WHERE kind = 'player' AND owner_id = ANY(:ids) "
                "AND currency = 'USDC' AND balance > 0",
                params,
            )
        ).all():
            ref = await ledger.account_by_id(conn, acc.id)
            await ledger.transfer(
                conn,
                f"privacy:{player_id}:{acc.id}",
                "demo_returned",
                [(ref, -acc.balance), (faucet, acc.balance)],
                memo=f"demo credits of {name}, erased",
            )

    # Texts: attempts, quotes, the memory made from them, team chat.
    attempt_rounds = (
        (
            await conn.execute(
                "SELECT DISTINCT bounty_id FROM attempts WHERE player_id = ANY(:ids) "
                "AND status IN ('rejected','won','late')",
                params,
            )
        )
        .scalars()
        .all()
    )
    await conn.execute(
        "UPDATE attempts SET message = '', reply = NULL, "
        "verdict_reason = CASE WHEN status = 'refunded' THEN verdict_reason END WHERE player_id = ANY(:ids)",
        params,
    )
    await _rewrite(
        conn,
        "attempts",
        "id",
        ("verdict_reason",),
        "player_id = ANY(:ids) AND status = 'refunded'",
        params,
        r,
    )
    await conn.execute(
        "UPDATE attempt_quotes SET message = '', status = CASE WHEN status = 'open' THEN 'cancelled' "
        "ELSE status END WHERE player_id = ANY(:ids)",
        params,
    )
    await conn.execute(
        "DELETE FROM attack_embeddings WHERE attempt_id IN (SELECT id FROM attempts WHERE player_id = ANY(:ids))",
        params,
    )
    await conn.execute(
        "DELETE FROM memory_summaries WHERE (scope = 'thread' AND player_id = ANY(:ids)) "
        "OR (scope = 'round' AND bounty_id = ANY(:rounds))",
        {**params, "rounds": attempt_rounds},
    )
    for bounty_id in attempt_rounds:  # the round's summary is written again without their texts
        await outbox.enqueue_job(
            conn,
            SUMMARISE_JOB,
            key=f"privacy.summarise:{player_id}:{bounty_id}",
            bounty_id=bounty_id,
        )
    await conn.execute(
        "UPDATE team_messages SET body = '', author_name = :n, author_external_id = '' "
        "WHERE author_player_id = ANY(:ids) OR (platform, author_external_id) IN "
        "(SELECT platform, external_id FROM player_identities WHERE player_id = ANY(:ids))",
        {**params, "n": name},
    )
    await conn.execute(
        "UPDATE team_invitations SET status = 'cancelled' WHERE player_id = ANY(:ids) AND status = 'open'",
        params,
    )

    # Wallet: unlinked; the address stays with the deposits, payouts and stakes that name it.
    await conn.execute(
        "UPDATE wallets SET unlinked_at = COALESCE(unlinked_at, :now), signature = '', challenge_nonce = '' "
        "WHERE player_id = ANY(:ids)",
        {**params, "now": now},
    )
    await conn.execute("DELETE FROM wallet_challenges WHERE player_id = ANY(:ids)", params)

    # Codes and notices.
    labels = [f"{i.platform}:{i.external_id}" for i in identities]
    await conn.execute(
        "DELETE FROM link_codes WHERE player_id = ANY(:ids) OR used_by = ANY(:labels)",
        {**params, "labels": labels},
    )
    await conn.execute(
        "DELETE FROM outbox WHERE topic = 'notice' AND CAST(payload->>'player_id' AS bigint) = ANY(:ids)",
        params,
    )
    # Answers a bot keeps to send later (an export among them) are addressed by platform account.
    await conn.execute(
        "DELETE FROM outbox WHERE topic = 'answer' AND ("
        "(channel = 'telegram' AND payload->>'chat_id' = ANY(:telegram)) OR "
        "(channel = 'discord' AND payload->>'user_id' = ANY(:discord)))",
        {
            "telegram": [i.external_id for i in identities if i.platform == "telegram"],
            "discord": [i.external_id for i in identities if i.platform == "discord"],
        },
    )

    # What moderators keep (notes, bans, the audit log) and money records: names replaced.
    like = {"like": _labels_like(r) or ["\x00"]}
    audit_rows = await _rewrite(
        conn,
        "audit_log",
        "id",
        ("actor", "target", "details", "reason", "before", "after"),
        "actor_player_id = ANY(:ids) OR target_player_id = ANY(:ids)",
        params,
        r,
    )
    await _rewrite(conn, "player_notes", "id", ("body",), "player_id = ANY(:ids)", params, r)
    await _rewrite(conn, "player_notes", "id", ("author",), "author LIKE ANY(:like)", like, r)
    await _rewrite(conn, "player_bans", "id", ("reason",), "player_id = ANY(:ids)", params, r)
    await _rewrite(conn, "players", "id", ("ban_reason",), "id = ANY(:ids)", params, r)
    await _rewrite(
        conn,
        "player_bans",
        "id",
        ("moderator", "lifted_by"),
        "moderator LIKE ANY(:like) OR lifted_by LIKE ANY(:like)",
        like,
        r,
    )
    await _rewrite(
        conn,
        "transfers",
        "id",
        ("memo",),
        "id IN (SELECT e.transfer_id FROM entries e JOIN accounts a ON a.id = e.account_id "
        "WHERE a.kind = 'player' AND a.owner_id = ANY(:ids)) AND memo IS NOT NULL",
        params,
        r,
    )
    await _rewrite(
        conn,
        "payouts",
        "id",
        ("decided_by", "paid_by", "reason"),
        "player_id = ANY(:ids) OR decided_by LIKE ANY(:like) OR paid_by LIKE ANY(:like)",
        {**params, **like},
        r,
    )
    await _rewrite(conn, "buybacks", "id", ("moderator",), "moderator LIKE ANY(:like)", like, r)
    await _rewrite(
        conn,
        "staking_distributions",
        "month",
        ("distributed_by",),
        "distributed_by LIKE ANY(:like)",
        like,
        r,
    )

    # Last, the accounts themselves.
    await conn.execute("DELETE FROM player_identities WHERE player_id = ANY(:ids)", params)
    await conn.execute(
        "UPDATE players SET display_name = :n WHERE id = ANY(:ids)", {**params, "n": name}
    )

    kept = dict(
        (
            await conn.execute(
                "SELECT "
                "(SELECT count(*) FROM entries e JOIN accounts a ON a.id = e.account_id "
                " WHERE a.kind = 'player' AND a.owner_id = ANY(:ids)) AS ledger_entries, "
                "(SELECT count(*) FROM attempts WHERE player_id = ANY(:ids)) AS attempts, "
                "(SELECT count(*) FROM team_members WHERE player_id = ANY(:ids)) AS team_memberships, "
                "(SELECT count(*) FROM team_contributions WHERE player_id = ANY(:ids)) AS team_contributions, "
                "(SELECT count(*) FROM deposits WHERE player_id = ANY(:ids)) AS deposits, "
                "(SELECT count(*) FROM payouts WHERE player_id = ANY(:ids)) AS payouts, "
                "(SELECT count(*) FROM stakes WHERE player_id = ANY(:ids)) AS stakes, "
                "(SELECT count(*) FROM player_bans WHERE player_id = ANY(:ids)) AS bans, "
                "(SELECT count(*) FROM player_notes WHERE player_id = ANY(:ids)) AS notes, "
                "(SELECT count(*) FROM audit_log WHERE actor_player_id = ANY(:ids) "
                " OR target_player_id = ANY(:ids)) AS audit_rows, "
                "(SELECT count(*) FROM banned_identities WHERE player_id = :p) AS banned_account_hashes",
                {**params, "p": player_id},
            )
        )
        .one()
        .items()
    )
    kept["audit_rows_pseudonymised"] = audit_rows
    await conn.execute(
        "UPDATE player_erasures SET kept = :k WHERE player_id = :p", {"k": kept, "p": player_id}
    )
    await conn.execute(
        "INSERT INTO audit_log (actor_player_id, actor, action, target, details, target_player_id) "
        "VALUES (:p, :n, 'privacy.erase', :t, :d, :p)",
        {"p": player_id, "n": name, "t": f"#{player_id}", "d": {"kept": kept, "joined": ids[1:]}},
    )
    return Erased(player_id, name, kept, ban is not None)
