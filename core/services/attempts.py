"""The attempt: quote the fee, confirm, pay, ask the guardian, record — refund in full on failure.

Payment and outcome are two transactions with the guardian call between them, outside any
transaction. A crash after payment leaves a pending attempt that ``recover_stale_attempts``
refunds, so an interrupted attempt ends either answered and paid, or refunded.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.db import Conn, Refused
from core.db.batch import Batch, arrays
from core.errors import (
    ConfirmationExpired,
    CooldownActive,
    FeeChanged,
    InsufficientFunds,
    InvalidArgument,
    LimitReached,
    NotFound,
    NotPermitted,
)
from core.money import usdc
from core.ports.discounts import DiscountPolicy
from core.ports.guardian import GuardianRequest, GuardianUnavailable, Turn, Verdict
from core.rules import BUYBACK_SHARE_BPS, PRIZE_SHARE_BPS, STAKING_SHARE_BPS, apply_discount
from core.services import rounds
from core.services.players import (
    PlayerRef,
    StaleIdentity,
    check_ban,
    forget_identity,
    identity_current,
    identity_params,
    owner_changed,
    resolve_player,
)

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)

HISTORY_TURNS = 10


@dataclass(frozen=True)
class Quote:
    id: str
    bounty_id: int
    bounty_name: str
    fee: int
    list_fee: int
    discount_bps: int
    number: int
    expires_at: datetime
    is_demo: bool
    message: str
    max_fee: int


@dataclass(frozen=True)
class Outcome:
    attempt_id: int
    bounty_id: int
    number: int
    fee: int
    status: str  # pending, rejected, won, refunded, late
    reply: str | None
    guardian: str | None
    similar_count: int
    is_demo: bool
    prize: int = 0
    replayed: bool = False
    # "identical": earlier attempts with exactly this text (enhanced context off); "semantic":
    # earlier attempts at least ``similarity_threshold`` similar by embedding (the memory on).
    similar_kind: str = "identical"
    similarity_threshold: float | None = None


def clean_message(app: App, message: str | None) -> str:
    text_ = (message or "").strip()
    if not text_:
        raise InvalidArgument("Your message is empty: write what you want to tell the guardian.")
    limit = app.settings.ATTEMPT_MAX_CHARS
    if len(text_) > limit:
        raise InvalidArgument(
            f"Your message is {len(text_):,} characters; the limit is {limit:,}. Nothing was charged."
        )
    if "\x00" in text_:
        raise InvalidArgument("Your message contains a NUL character.")
    return text_


async def _spent_today(conn: Conn, player_id: int, now: datetime) -> int:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        await conn.execute(
            (
                "SELECT COALESCE(SUM(fee), 0) FROM attempts WHERE player_id = :p AND created_at >= :s "
                "AND status <> 'refunded'"
            ),
            {"p": player_id, "s": start},
        )
    ).scalar_one()


def _check_standing(app: App, row, now: datetime) -> None:
    check_ban(row.banned_until, row.ban_reason, now)
    if row.excluded_until is not None and row.excluded_until > now:
        raise LimitReached(
            f"You excluded yourself from paying until {row.excluded_until:%Y-%m-%d %H:%M} UTC."
        )
    cooldown = app.settings.ATTEMPT_COOLDOWN_SECONDS
    if row.last_attempt_at is not None and cooldown:
        wait = (row.last_attempt_at + timedelta(seconds=cooldown) - now).total_seconds()
        if wait > 0:
            raise CooldownActive(f"Slow down: you can attempt again in {int(wait) + 1} s.")


async def _check_daily(
    conn: Conn, player_id: int, daily_limit: int | None, fee: int, now: datetime, demo: bool
) -> None:
    if daily_limit is None:
        return
    spent = await _spent_today(conn, player_id, now)
    if spent + fee > daily_limit:
        raise LimitReached(
            f"This attempt ({usdc(fee, demo=demo)}) would pass your daily limit of {usdc(daily_limit, demo=demo)} "
            f"(spent today: {usdc(spent, demo=demo)})."
        )


@dataclass(frozen=True)
class Payer:
    """Who pays an attempt: the player's own account, or a team pool (with the team's id)."""

    account: ledger.AccountRef
    team_id: int | None = None


async def quote_attempt(
    app: App, actor: Actor, message: str, *, payer: Payer | None = None
) -> Quote:
    """Check everything a payment needs and show the exact fee for this player; nothing is charged.

    ``payer`` defaults to the player's own account; the teams feature passes the team pool, after
    checking that this player may spend it."""
    msg = clean_message(app, message)
    now = app.clock()
    return await _quote_for(app, actor, msg, now, payer)


async def _quote_for(app: App, actor: Actor, msg: str, now: datetime, payer: Payer | None) -> Quote:
    """A quote binds nothing (paying re-checks everything), so it needs no transaction of its own."""
    for _ in range(2):
        player = await _player(app, actor)
        try:
            quote, row, terms = await _new_quote(app, player, msg, now, payer, actor=actor)
        except StaleIdentity:  # linked or unlinked by another process since this one cached it
            forget_identity(app, actor)
            continue
        await _batch(app, "quotes", lambda: _write_quotes).submit(row)
        _remember_terms(app, quote.id, terms)
        return quote
    raise StaleIdentity(player.id)


async def _player(app: App, actor: Actor) -> PlayerRef:
    """The player, from the process's cache, or created atomically in a short transaction of its own."""
    ref = app.player_cache.get((actor.platform, actor.external_id))
    if ref is not None:
        return ref
    async with app.uow() as uow:
        return await resolve_player(app, uow.conn, actor)


# The quote's one read, for many concurrent quotes at once (core/db/batch): each row is one quote's
# player, payer, the round, the next attempt number, whether the identity still names the player,
# and the discount's input when the policy gives it as SQL (DiscountPolicy.quote_sql).
_QUOTE_STATES = (
    "SELECT r.i, p.banned_until, p.ban_reason, p.excluded_until, p.daily_limit, p.last_attempt_at, "
    "a.balance, b.id AS bounty_id, b.status AS bounty_status, b.name, b.system_prompt, b.prompt_sha256, b.seed, "
    "b.base_fee, b.growth_bps, b.fee_cap, b.is_demo, b.created_at, b.ended_at, b.winner_attempt_id, "
    "pg_sequence_last_value(CAST('bounty_attempt_numbers_' || b.id AS regclass)) AS last_number, "
    f"{identity_current('r.platform', 'r.external')} AS identity_current, "
    "{discount} AS discount_input "
    "FROM unnest(CAST(:player AS bigint[]), CAST(:payer AS bigint[]), CAST(:platform AS text[]), "
    "CAST(:external AS text[])) WITH ORDINALITY AS r(player, payer, platform, external, i) "
    "JOIN players p ON p.id = r.player JOIN accounts a ON a.id = r.payer "
    "LEFT JOIN LATERAL (SELECT * FROM bounties ORDER BY (status IN ('active','paused')) DESC, id DESC "
    "LIMIT 1) b ON true ORDER BY r.i"
)


def _state_reader(policy: DiscountPolicy):
    statement = _QUOTE_STATES.format(discount=policy.quote_sql("r.player") or "NULL")

    async def read(conn: Conn, quotes: Sequence[tuple]) -> list:
        rows = (
            await conn.execute(
                statement, arrays(quotes, ("player", "payer", "platform", "external"))
            )
        ).all()
        by_position = {row.i: row for row in rows}
        return [by_position.get(i + 1) for i in range(len(quotes))]

    return read


# A quote binds nothing: losing the last ones in a crash only means asking again, so its commit does
# not wait for the disk (synchronous_commit off, for this statement alone). Concurrent quotes are
# written together (core/db/batch), one row per quote.
_INSERT_QUOTES = (
    "INSERT INTO attempt_quotes (id, player_id, bounty_id, payer_account_id, team_id, message, max_fee, "
    "discount_bps, first_number, expires_at, status) "
    "SELECT q.id, q.p, q.b, q.a, q.t, q.m, q.f, q.d, q.n, q.e, 'open' FROM unnest(CAST(:id AS text[]), "
    "CAST(:p AS bigint[]), CAST(:b AS bigint[]), CAST(:a AS bigint[]), CAST(:t AS bigint[]), CAST(:m AS text[]), "
    "CAST(:f AS bigint[]), CAST(:d AS integer[]), CAST(:n AS bigint[]), CAST(:e AS timestamptz[])) "
    "AS q(id, p, b, a, t, m, f, d, n, e), (SELECT set_config('synchronous_commit', 'off', true)) AS quote_commit"
)
_QUOTE_COLUMNS = ("id", "p", "b", "a", "t", "m", "f", "d", "n", "e")


async def _write_quotes(conn: Conn, quotes: Sequence[tuple]) -> list[None]:
    await conn.execute(_INSERT_QUOTES, arrays(quotes, _QUOTE_COLUMNS))
    return [None] * len(quotes)


def _batch(app: App, name: str, make_run: Callable[[], Callable]) -> Batch:
    """This process's batch ``name``, made on first use with the statement ``make_run()`` returns."""
    batch = app.batches.get(name)
    if batch is None:
        batch = app.batches[name] = Batch(app.db, make_run())
    return batch


@dataclass(frozen=True)
class _Terms:
    """What paying a quote needs besides its row, kept by the process that quoted (else read back)."""

    bounty: rounds.BountyRow
    first_number: int
    max_fee: int
    discount_bps: int


async def _new_quote(
    app: App,
    player: PlayerRef,
    msg: str,
    now: datetime,
    payer_: Payer | None = None,
    *,
    actor: Actor | None = None,
) -> tuple[Quote, tuple, _Terms]:
    """The quote, the row that records it, and the terms paying it needs; nothing is written yet."""
    if payer_ is not None and not payer_.account.guarded:
        raise ValueError("attempts are paid from player or team accounts only")
    if payer_ is not None:
        payer = payer_.account
    else:
        payer = app.accounts.cached(ledger.PLAYER, player.id)
        if payer is None:
            async with app.db.autocommit() as conn:
                payer = await app.accounts.get(conn, ledger.PLAYER, player.id)
    policy = app.discounts
    identity = identity_params(actor)
    state = await _batch(app, "quote-reads", lambda: _state_reader(policy)).submit(
        (player.id, payer.id, identity["identity_platform"], identity["identity_external"])
    )
    if state is None:
        raise LookupError(f"player {player.id} or account {payer.id} does not exist")
    if not state.identity_current:
        raise StaleIdentity(player.id)
    _check_standing(app, state, now)
    bounty = rounds.require_active(
        rounds.bounty_from(state) if state.bounty_id is not None else None
    )
    number = 0 if state.last_number is None else state.last_number + 1
    discount = policy.from_quote(state.discount_input)
    if discount is None:  # the policy does not read with the quote
        async with app.db.autocommit() as conn:
            discount = await policy.discount_bps(conn, player.id)
    list_fee = bounty.fee(number)
    fee = apply_discount(list_fee, discount)
    if state.daily_limit is not None:
        async with app.db.autocommit() as conn:
            await _check_daily(conn, player.id, state.daily_limit, fee, now, bounty.is_demo)
    if state.balance < fee:
        whose = "the team pool holds" if payer.kind == ledger.TEAM_POOL else "your balance is"
        raise InsufficientFunds(
            f"This attempt costs {usdc(fee, demo=bounty.is_demo)} and {whose} {usdc(state.balance, demo=bounty.is_demo)}."
        )
    # The player confirms a maximum: the current fee plus a small, visible tolerance, or, when many
    # attempt at once, the fee after the attempts others will likely pay first (core/services/pace).
    # They pay the actual fee; past the maximum they are asked again.
    max_fee = max(
        fee + fee * app.settings.ATTEMPT_FEE_TOLERANCE_BPS // 10_000,
        apply_discount(bounty.fee(number + app.pace.expected_others(bounty.id)), discount),
    )
    quote_id = secrets.token_urlsafe(12)
    expires = now + timedelta(seconds=app.settings.ATTEMPT_CONFIRM_SECONDS)
    row = (
        quote_id,
        player.id,
        bounty.id,
        payer.id,
        payer_.team_id if payer_ else None,
        msg,
        max_fee,
        discount,
        number,
        expires,
    )
    quote = Quote(
        quote_id,
        bounty.id,
        bounty.name,
        fee,
        list_fee,
        discount,
        number,
        expires,
        bounty.is_demo,
        msg,
        max_fee,
    )
    return quote, row, _Terms(bounty, number, max_fee, discount)


MAX_REMEMBERED_QUOTES = 50_000


def _remember_terms(app: App, quote_id: str, terms: _Terms) -> None:
    cache = app.quote_terms
    if len(cache) >= MAX_REMEMBERED_QUOTES:
        for key in list(cache)[
            : MAX_REMEMBERED_QUOTES // 10
        ]:  # the oldest tenth (dicts keep order)
            del cache[key]
    cache[quote_id] = terms


async def cancel_quote(app: App, actor: Actor, quote_id: str) -> None:
    async with app.uow() as uow:
        player = await resolve_player(app, uow.conn, actor)
        row = (
            await uow.conn.execute(
                "SELECT player_id, status FROM attempt_quotes WHERE id = :id FOR UPDATE",
                {"id": quote_id},
            )
        ).first()
        if row is None:
            raise ConfirmationExpired("That confirmation is unknown or expired.")
        if row.player_id != player.id:
            if not await owner_changed(uow.conn, actor, player.id):
                raise NotPermitted("This button is not for you.")
            forget_identity(app, actor)  # a stale cache: the identity belongs to another player now
            player = await resolve_player(app, uow.conn, actor)
            if row.player_id != player.id:
                raise NotPermitted("This button is not for you.")
        if row.status != "open":
            raise ConfirmationExpired("That confirmation was already used.")
        await uow.conn.execute(
            "UPDATE attempt_quotes SET status = 'cancelled' WHERE id = :id", {"id": quote_id}
        )


class _FeeMoved(Exception):
    """Inside payment: the fee passed the confirmed maximum; the transaction rolls back."""

    def __init__(self, message: str, payer: Payer) -> None:
        super().__init__("fee moved")
        self.message = message
        self.payer = payer


@dataclass
class _Paid:
    attempt_id: int
    bounty: rounds.BountyRow
    number: int
    fee: int
    history: tuple[Turn, ...]
    similar: int
    player: PlayerRef
    message: str


async def confirm_attempt(
    app: App, actor: Actor, quote_id: str, *, team_checked: bool = False
) -> Outcome:
    """Pay the confirmed quote (once, whatever the retries), ask the guardian, record the answer.
    A team's quote is paid only with ``team_checked``: its caller checked the player may spend the pool."""
    try:
        try:
            paid = await _pay(app, actor, quote_id, team_checked=team_checked)
        except StaleIdentity:  # this process cached the player before a link or unlink elsewhere
            forget_identity(app, actor)
            paid = await _pay(app, actor, quote_id, team_checked=team_checked)
    except _FeeMoved as moved:
        # The payment rolled back; offer the same message at the new fee.
        new_quote = await _quote_for(app, actor, moved.message, app.clock(), moved.payer)
        raise FeeChanged(
            f"Other attempts raised the fee to {usdc(new_quote.fee, demo=new_quote.is_demo)}. Confirm again to pay it.",
            new_quote,
        ) from None
    if isinstance(paid, Outcome):
        return paid  # a replay: already paid, nothing charged again
    recall = None
    if app.memory is not None:  # ENABLE_ENHANCED_CONTEXT: embed the attack, build its context
        recall = await app.memory.recall(
            app,
            bounty_id=paid.bounty.id,
            player_id=paid.player.id,
            message=paid.message,
            history=paid.history,
        )
    request = GuardianRequest(
        system_prompt=paid.bounty.system_prompt,
        message=paid.message,
        history=paid.history if recall is None else recall.history,
        player_name=paid.player.display_name,
        context=None if recall is None else recall.context,
    )
    try:
        verdict = await asyncio.wait_for(
            app.guardian.judge(request), app.settings.GUARDIAN_TIMEOUT_SECONDS
        )
    except (GuardianUnavailable, TimeoutError) as exc:
        log.warning("guardian failed on attempt %s: %s", paid.attempt_id, type(exc).__name__)
        await refund_attempt(app, paid.attempt_id, "the guardian did not answer")
        return await get_outcome(app, paid.attempt_id)
    except Exception:
        log.exception("guardian crashed on attempt %s", paid.attempt_id)
        await refund_attempt(app, paid.attempt_id, "the guardian failed")
        return await get_outcome(app, paid.attempt_id)
    note = None
    if recall is not None:
        from core.memory.context import redact

        # Other players' unrevealed attempts were in the context: none of their wording reaches a player.
        verdict = replace(verdict, reply=redact(verdict.reply, recall.confidential))
        memory, history_turns = app.memory, len(paid.history)

        async def note(conn: Conn) -> None:
            await memory.note(
                conn,
                recall,
                attempt_id=paid.attempt_id,
                bounty_id=paid.bounty.id,
                player_id=paid.player.id,
                number=paid.number,
                history_turns=history_turns,
            )

    status, prize = await record_verdict(app, paid.attempt_id, verdict, note=note)
    if status == "refunded":
        return await get_outcome(app, paid.attempt_id)
    return Outcome(
        attempt_id=paid.attempt_id,
        bounty_id=paid.bounty.id,
        number=paid.number,
        fee=paid.fee,
        status=status,
        reply=verdict.reply,
        guardian=verdict.provider,
        is_demo=paid.bounty.is_demo,
        prize=prize,
        similar_count=paid.similar if recall is None else recall.similar_count,
        similar_kind="identical" if recall is None else "semantic",
        similarity_threshold=None if recall is None else recall.threshold,
    )


def acceptable_fees(
    bounty: rounds.BountyRow, first: int, max_fee: int, discount_bps: int
) -> tuple[list[int], int | None]:
    """The list fees a quote accepts, for attempt numbers ``first``, ``first + 1``...: those whose fee
    after the discount stays within the confirmed maximum. Returns them and the list fee of every
    later number when it no longer changes (the cap, or no growth), else None."""
    fees: list[int] = []
    n = first
    while len(fees) < 100_000:
        list_fee = bounty.fee(n)
        if apply_discount(list_fee, discount_bps) > max_fee:
            return fees, None
        if list_fee >= bounty.fee_cap or bounty.growth_bps == 0:
            return fees, list_fee  # every number from here on costs the same
        fees.append(list_fee)
        n += 1
    return fees, None


_PAY = (
    "SELECT * FROM bounty_pay_attempt(:quote, :player, :now, :cooldown, :day_start, :base, :growth, :cap, "
    ":fees, :tail, :shared, :split, :guardian, :turns, :team_checked)"
)

_TERMS = (
    "SELECT q.message, q.max_fee, q.discount_bps, q.first_number, q.payer_account_id, q.team_id, "
    "b.id AS bounty_id, b.status AS bounty_status, b.name, b.system_prompt, b.prompt_sha256, b.seed, "
    "b.base_fee, b.growth_bps, b.fee_cap, b.is_demo, b.created_at, b.ended_at, b.winner_attempt_id "
    "FROM attempt_quotes q JOIN bounties b ON b.id = q.bounty_id WHERE q.id = :id"
)


async def _read_terms(conn: Conn, quote_id: str) -> _Terms | None:
    """A quote made by another process (or before a restart): its terms from the database."""
    row = (await conn.execute(_TERMS, {"id": quote_id})).first()
    if row is None:
        return None
    return _Terms(rounds.bounty_from(row), row.first_number, row.max_fee, row.discount_bps)


async def _pay(
    app: App, actor: Actor, quote_id: str, *, team_checked: bool = False
) -> _Paid | Outcome:
    """Pay a confirmed quote in one statement (``bounty_pay_attempt``, migration 0008): claim it,
    take the cooldown and the round's shared lock, take the attempt number, debit the payer, write the
    ledger entries and the pending attempt. Idempotent: a paid quote is never paid again."""
    now = app.clock()
    player = await _player(app, actor)
    terms = app.quote_terms.get(quote_id)
    async with app.db.autocommit() as conn:
        if terms is None:
            terms = await _read_terms(conn, quote_id)
            if terms is None:
                return await _explain_unclaimable(conn, actor, player, quote_id, now)
        bounty = terms.bounty
        fees, tail = acceptable_fees(bounty, terms.first_number, terms.max_fee, terms.discount_bps)
        shared = [
            (await app.accounts.get(conn, kind, owner)).id
            for kind, owner in (
                (ledger.PRIZE_POOL, bounty.id),
                (ledger.STAKING_POOL, None),
                (ledger.BUYBACK_RESERVE, None),
                (ledger.OPERATIONS, None),
            )
        ]
        params = {
            "quote": quote_id,
            "player": player.id,
            "now": now,
            "cooldown": app.settings.ATTEMPT_COOLDOWN_SECONDS,
            "day_start": now.replace(hour=0, minute=0, second=0, microsecond=0),
            "base": bounty.base_fee,
            "growth": bounty.growth_bps,
            "cap": bounty.fee_cap,
            "fees": fees,
            "tail": tail,
            "shared": shared,
            "split": [
                PRIZE_SHARE_BPS,
                STAKING_SHARE_BPS,
                BUYBACK_SHARE_BPS,
            ],  # core/rules.split_payment
            "guardian": app.guardian.name,
            "turns": HISTORY_TURNS // 2 * 2,
            "team_checked": team_checked,
        }
        try:
            if terms.discount_bps:
                # The discount's use is recorded in the payment's own transaction.
                async with conn.transaction():
                    row = (await conn.execute(_PAY, params)).one()
                    await app.discounts.record_use(
                        conn, row.attempt_id, player.id, terms.discount_bps
                    )
            else:
                row = (await conn.execute(_PAY, params)).one()
        except Refused as exc:
            if exc.code == "BB006" and exc.detail.isdigit():
                app.pace.drifted(
                    bounty.id, terms.first_number, int(exc.detail)
                )  # the fee outran this one
            return await _refused(app, conn, actor, player, quote_id, bounty, exc, now)
    app.quote_terms.pop(quote_id, None)
    app.pace.drifted(bounty.id, terms.first_number, row.number)
    turns: list[Turn] = []
    for message, reply in reversed(row.history or []):
        turns += [Turn("player", message), Turn("guardian", reply or "")]
    return _Paid(
        row.attempt_id,
        bounty,
        row.number,
        row.fee,
        tuple(turns),
        row.similar_count,
        player,
        row.message,
    )


async def _refused(
    app: App,
    conn: Conn,
    actor: Actor,
    player: PlayerRef,
    quote_id: str,
    bounty: rounds.BountyRow,
    exc: Refused,
    now: datetime,
) -> Outcome:
    """Why ``bounty_pay_attempt`` refused (it changed nothing), in the player's words; a replay of a paid
    quote returns its outcome instead."""
    code, detail = exc.code, exc.detail
    demo = bounty.is_demo
    if code == "BB001":
        return await _explain_unclaimable(conn, actor, player, quote_id, now)
    if code == "BB002":
        rounds.require_active(replace(bounty, status=detail))
    if code == "BB009":
        raise NotPermitted("A team attempt is confirmed with its own button (/team attempt).")
    if code in ("BB003", "BB004", "BB005"):
        state = (
            await conn.execute(
                "SELECT banned_until, ban_reason, excluded_until, last_attempt_at FROM players WHERE id = :id",
                {"id": player.id},
            )
        ).one()
        _check_standing(app, state, now)
        raise CooldownActive(
            f"Slow down: one attempt every {app.settings.ATTEMPT_COOLDOWN_SECONDS} s."
        )
    if code in ("BB006", "BB008"):
        q = (
            await conn.execute(
                "SELECT message, payer_account_id, team_id FROM attempt_quotes WHERE id = :id",
                {"id": quote_id},
            )
        ).one()
        payer = app.accounts.known(q.payer_account_id) or await ledger.account_by_id(
            conn, q.payer_account_id
        )
        if code == "BB006":
            raise _FeeMoved(q.message, Payer(payer, q.team_id))
        whose = "the team pool holds" if payer.kind == ledger.TEAM_POOL else "your balance"
        raise InsufficientFunds(
            f"This attempt costs {usdc(int(detail), demo=demo)}, more than {whose}. Nothing was charged."
        )
    if code == "BB007":
        spent, fee, limit = (int(x) for x in detail.split())
        raise LimitReached(
            f"This attempt ({usdc(fee, demo=demo)}) would pass your daily limit of {usdc(limit, demo=demo)} "
            f"(spent today: {usdc(spent, demo=demo)})."
        )
    raise exc


async def _explain_unclaimable(
    conn: Conn, actor: Actor, player: PlayerRef, quote_id: str, now: datetime
) -> Outcome:
    """Why a confirmation could not be claimed; a replay of a paid one returns its outcome instead."""
    q = (
        await conn.execute(
            "SELECT player_id, status, expires_at FROM attempt_quotes WHERE id = :id",
            {"id": quote_id},
        )
    ).first()
    if q is None:
        raise ConfirmationExpired("That confirmation is unknown or expired. Send /attempt again.")
    if q.player_id != player.id:
        if await owner_changed(conn, actor, player.id):
            raise StaleIdentity(player.id)
        raise NotPermitted("This button is not for you.")
    if q.status == "paid":
        attempt_id = (
            await conn.execute("SELECT id FROM attempts WHERE quote_id = :q", {"q": quote_id})
        ).scalar_one()
        outcome = await _outcome(conn, attempt_id)
        return replace(outcome, replayed=True)
    if q.status != "open":
        raise ConfirmationExpired("That confirmation was already used or cancelled.")
    raise ConfirmationExpired(
        "That confirmation expired. Send /attempt again to see the current fee."
    )


async def _history(conn: Conn, bounty_id: int, player_id: int, before_id: int) -> tuple[Turn, ...]:
    """The player's own recent exchanges with the guardian in this round (the plain conversation)."""
    rows = (
        await conn.execute(
            (
                "SELECT message, reply FROM attempts WHERE bounty_id = :b AND player_id = :p AND id < :id "
                "AND status IN ('rejected','late') ORDER BY id DESC LIMIT :n"
            ),
            {"b": bounty_id, "p": player_id, "id": before_id, "n": HISTORY_TURNS},
        )
    ).all()
    turns: list[Turn] = []
    for row in reversed(rows):
        turns.append(Turn("player", row.message))
        turns.append(Turn("guardian", row.reply or ""))
    return tuple(turns)


async def record_verdict(
    app: App,
    attempt_id: int,
    verdict: Verdict,
    *,
    note: Callable[[Conn], Awaitable[None]] | None = None,
) -> tuple[str, int]:
    """Store the guardian's answer; a real approve_transfer call wins the round.
    Returns the attempt's status and the prize it won (0 unless won). ``note`` runs in the same
    transaction once the answer is stored (the memory's note and jobs)."""
    from core.services.wins import settle_win

    now = app.clock()
    if not verdict.approved and note is None:
        # A rejection is one row's update, moving no money: no transaction of its own, and a commit
        # that does not wait for the disk. Lost in a database crash, it leaves the attempt pending,
        # which the recovery refunds (the player keeps the reply, and gets the fee back). Concurrent
        # rejections are written together (core/db/batch).
        updated = await _batch(app, "rejections", lambda: _write_rejections).submit(
            (attempt_id, verdict.reply, verdict.reason, verdict.provider, now)
        )
        return ("rejected", 0) if updated else ("refunded", 0)
    async with app.uow() as uow:
        conn = uow.conn
        status, bounty = "rejected", None
        if verdict.approved:
            row = (
                await conn.execute(
                    "SELECT bounty_id FROM attempts WHERE id = :id", {"id": attempt_id}
                )
            ).one()
            bounty = await rounds.lock_round_exclusive(conn, row.bounty_id)
            status = "won" if bounty.open else "late"
        updated = (
            await conn.execute(_RECORD, _record_params(attempt_id, status, verdict, now))
        ).first()
        if updated is None:
            return (
                "refunded",
                0,
            )  # refunded meanwhile (e.g. recovered as stale): the answer is kept out
        prize = await settle_win(app, conn, bounty, attempt_id) if status == "won" and bounty else 0
        if note is not None:
            await note(conn)
    return status, prize


_RECORD = (
    "UPDATE attempts SET status = :s, reply = :r, verdict_reason = :why, guardian = :g, finished_at = :now "
    "WHERE id = :id AND status = 'pending' RETURNING id"
)
_RECORD_REJECTIONS = (
    "UPDATE attempts a SET status = 'rejected', reply = v.r, verdict_reason = v.why, guardian = v.g, finished_at = v.now "
    "FROM unnest(CAST(:id AS bigint[]), CAST(:r AS text[]), CAST(:why AS text[]), CAST(:g AS text[]), "
    "CAST(:now AS timestamptz[])) AS v(id, r, why, g, now), "
    "(SELECT set_config('synchronous_commit', 'off', true)) AS rejection_commit "
    "WHERE a.id = v.id AND a.status = 'pending' RETURNING a.id"
)


async def _write_rejections(conn: Conn, rejections: Sequence[tuple]) -> list[bool]:
    """Each rejection's row, if still pending (a refund meanwhile keeps the answer out)."""
    rows = await conn.execute(
        _RECORD_REJECTIONS, arrays(rejections, ("id", "r", "why", "g", "now"))
    )
    updated = {row.id for row in rows.all()}
    return [r[0] in updated for r in rejections]


def _record_params(attempt_id: int, status: str, verdict: Verdict, now: datetime) -> dict:
    return {
        "s": status,
        "r": verdict.reply,
        "why": verdict.reason,
        "g": verdict.provider,
        "now": now,
        "id": attempt_id,
    }


async def refund_attempt(
    app: App, attempt_id: int, reason: str, *, allowed: tuple[str, ...] = ("pending",)
) -> bool:
    """Give the payer back everything the attempt took. Idempotent; False if nothing to refund."""
    now = app.clock()
    async with app.uow() as uow:
        conn = uow.conn
        row = (
            await conn.execute(
                (
                    "UPDATE attempts SET status = 'refunded', verdict_reason = :why, finished_at = :now "
                    "WHERE id = :id AND status = ANY(:allowed) RETURNING bounty_id, quote_id"
                ),
                {"why": reason, "now": now, "id": attempt_id, "allowed": list(allowed)},
            )
        ).first()
        if row is None:
            return False
        bounty = await rounds.get_bounty(conn, row.bounty_id)
        paid = (
            await conn.execute(
                (
                    "SELECT e.account_id, e.amount, a.kind, a.owner_id, a.guarded FROM entries e "
                    "JOIN transfers t ON t.id = e.transfer_id JOIN accounts a ON a.id = e.account_id "
                    "WHERE t.idempotency_key = :k"
                ),
                {"k": f"attempt:{row.quote_id}"},
            )
        ).all()
        operations = await app.accounts.get(conn, ledger.OPERATIONS)
        legs: list[tuple[ledger.AccountRef, int]] = []
        for e in paid:
            acc = ledger.AccountRef(e.account_id, e.kind, e.owner_id, e.guarded)
            if acc.kind == ledger.PRIZE_POOL and not bounty.open:
                acc = operations  # the pool was already paid out: the house carries this refund
            legs.append((acc, -e.amount))
        await ledger.transfer(conn, f"refund:{attempt_id}", "refund", legs, memo=reason)
    return True


async def recover_stale_attempts(app: App) -> list[int]:
    """Refund attempts left pending past the guardian timeout (a crash or kill between payment and
    answer). Run at start and by the beat schedule."""
    cutoff = app.clock() - timedelta(seconds=app.settings.GUARDIAN_TIMEOUT_SECONDS + 30)
    async with app.uow() as uow:
        ids = (
            (
                await uow.conn.execute(
                    "SELECT id FROM attempts WHERE status = 'pending' AND created_at < :c ORDER BY id",
                    {"c": cutoff},
                )
            )
            .scalars()
            .all()
        )
    refunded = []
    for attempt_id in ids:
        if await refund_attempt(
            app, attempt_id, "the attempt was interrupted before the guardian answered"
        ):
            refunded.append(attempt_id)
    return refunded


async def _outcome(conn: Conn, attempt_id: int) -> Outcome:
    row = (
        await conn.execute(
            (
                "SELECT a.id, a.bounty_id, a.number, a.fee, a.status, a.reply, a.guardian, a.similar_count, b.is_demo, "
                "b.winner_attempt_id, m.similar_count AS semantic_count, m.similarity_threshold "
                "FROM attempts a JOIN bounties b ON b.id = a.bounty_id "
                "LEFT JOIN attempt_memory m ON m.attempt_id = a.id AND m.enhanced_context WHERE a.id = :id"
            ),
            {"id": attempt_id},
        )
    ).first()
    if row is None:
        raise NotFound(f"No attempt #{attempt_id}.")
    prize = 0
    if row.status == "won":
        prize = (
            await conn.execute(
                (
                    "SELECT COALESCE(SUM(e.amount), 0) FROM entries e JOIN transfers t ON t.id = e.transfer_id "
                    "WHERE t.idempotency_key = :k AND e.amount > 0"
                ),
                {"k": f"win:{row.bounty_id}"},
            )
        ).scalar_one()
    semantic = row.semantic_count is not None
    return Outcome(
        attempt_id=row.id,
        bounty_id=row.bounty_id,
        number=row.number,
        fee=row.fee,
        status=row.status,
        reply=row.reply,
        guardian=row.guardian,
        is_demo=row.is_demo,
        prize=prize,
        similar_count=row.semantic_count if semantic else row.similar_count,
        similar_kind="semantic" if semantic else "identical",
        similarity_threshold=row.similarity_threshold,
    )


async def get_outcome(app: App, attempt_id: int) -> Outcome:
    async with app.uow() as uow:
        return await _outcome(uow.conn, attempt_id)
