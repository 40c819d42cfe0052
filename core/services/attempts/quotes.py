"""The quote: everything a payment needs checked, and the exact fee shown; nothing is charged.

A quote binds nothing (the payment checks everything again under its locks, with the same rules:
core/services/refusals.py), so it needs no transaction of its own. Under load many quotes read and
write in shared statements (core/db/batch).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core import ledger
from core.actors import Actor
from core.db import Conn
from core.db.batch import Batch, arrays
from core.errors import (
    ConfirmationExpired,
    InsufficientFunds,
    InvalidArgument,
    NotFound,
    NotPermitted,
)
from core.money import usdc
from core.ports.discounts import DiscountPolicy
from core.rules import apply_discount, attempt_fee
from core.services import commitment, refusals, rounds
from core.services.players import (
    PlayerRef,
    StaleIdentity,
    forget_identity,
    identity_current,
    owner_changed,
    resolve_player,
)
from core.services.teams.common import current_team_id

if TYPE_CHECKING:
    from core.app import App


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
    team_id: int | None = None


@dataclass(frozen=True)
class Payer:
    """Who pays an attempt: the player's own account, or a team pool (with the team's id)."""

    account: ledger.AccountRef
    team_id: int | None = None


@dataclass(frozen=True)
class Terms:
    """What paying a quote needs besides its row, kept by the process that quoted (else read back)."""

    bounty: rounds.BountyRow
    first_number: int
    max_fee: int
    discount_bps: int


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


async def quote_attempt(
    app: App, actor: Actor, message: str, *, payer: Payer | None = None
) -> Quote:
    """Check everything a payment needs and show the exact fee for this player; nothing is charged.
    ``payer`` defaults to the player's own account."""
    msg = clean_message(app, message)
    return await _quote_for(app, actor, msg, app.clock(), payer)


async def quote_team_attempt(app: App, actor: Actor, message: str) -> Quote:
    """A team attempt's quote: checked like any attempt (and the caller's right to spend the pool),
    paid from the team pool when confirmed with the team's button."""
    msg = clean_message(app, message)
    async with app.db.autocommit() as conn:
        player = await resolve_player(app, conn, actor)
        team_id = await current_team_id(conn, player.id)
        if team_id is None:
            raise NotFound(
                "You are not in a team. /team create <name> starts one; /team join <code> joins one."
            )
        pool = await app.accounts.get(conn, ledger.TEAM_POOL, team_id)
    return await _quote_for(app, actor, msg, app.clock(), Payer(pool, team_id))


async def _quote_for(app: App, actor: Actor, msg: str, now: datetime, payer: Payer | None) -> Quote:
    for _ in range(2):
        player = await player_of(app, actor)
        try:
            quote, row, terms = await new_quote(app, actor, player, msg, now, payer)
        except StaleIdentity:  # linked or unlinked by another process since this one cached it
            forget_identity(app, actor)
            continue
        await batch(app, "quotes", lambda: _write_quotes).submit(row)
        app.quote_terms[quote.id] = terms
        return quote
    raise StaleIdentity(player.id)


async def player_of(app: App, actor: Actor) -> PlayerRef:
    """The player, from the process's cache, or created atomically in a short transaction of its own."""
    ref = app.player_cache.get((actor.platform, actor.external_id))
    if ref is not None:
        return ref
    async with app.uow() as uow:
        return await resolve_player(app, uow.conn, actor)


def batch(app: App, name: str, make_run: Callable[[], Callable]) -> Batch:
    """This process's batch ``name``, made on first use with the statement ``make_run()`` returns."""
    return app.batches.get(name, lambda: Batch(app.db, make_run()))


# The quote's one read, for many concurrent quotes at once (core/db/batch): each row is one quote's
# payer balance, the round, the number the next payment takes, whether the identity still names the
# player, the discount's input (DiscountPolicy.quote_sql), and the rules' verdicts (migration 0012).
_QUOTE_STATES = (
    "SELECT r.i, a.balance, b.id AS bounty_id, b.status AS bounty_status, b.name, b.system_prompt, "
    "b.prompt_sha256, b.seed, b.base_fee, b.growth_bps, b.fee_cap, b.is_demo, b.created_at, b.ended_at, "
    "b.winner_attempt_id, b.commitment_sha256, b.config_sha256, "
    "CASE WHEN b.id IS NOT NULL THEN bounty_next_number(b.id) END AS next_number, "
    f"{identity_current('r.platform', 'r.external')} AS identity_current, "
    "{discount} AS discount_input, s.code AS spend_code, s.detail AS spend_detail, s.extra AS spend_extra, "
    "x.code AS attempt_code, x.detail AS attempt_detail, x.extra AS attempt_extra, d.daily_limit, d.spent "
    "FROM unnest(CAST(:player AS bigint[]), CAST(:payer AS bigint[]), CAST(:platform AS text[]), "
    "CAST(:external AS text[]), CAST(:team AS bigint[]), CAST(:now AS timestamptz[]), "
    "CAST(:cooldown AS integer[])) WITH ORDINALITY AS r(player, payer, platform, external, team, now, cooldown, i) "
    "JOIN players p ON p.id = r.player JOIN accounts a ON a.id = r.payer "
    "LEFT JOIN LATERAL (SELECT * FROM bounties ORDER BY (status IN ('active','paused')) DESC, id DESC "
    "LIMIT 1) b ON true "
    "LEFT JOIN LATERAL bounty_spend_refusal(r.player, r.now) s ON true "
    "LEFT JOIN LATERAL bounty_attempt_refusal(r.player, r.team, b.id, r.now, r.cooldown) x ON true "
    "LEFT JOIN LATERAL bounty_daily_room(r.player, date_trunc('day', r.now, 'UTC')) d ON r.team IS NULL "
    "ORDER BY r.i"
)
_STATE_COLUMNS = ("player", "payer", "platform", "external", "team", "now", "cooldown")


def _state_reader(policy: DiscountPolicy):
    statement = _QUOTE_STATES.format(discount=policy.quote_sql("r.player") or "NULL")

    async def read(conn: Conn, quotes: Sequence[tuple]) -> list:
        rows = (await conn.execute(statement, arrays(quotes, _STATE_COLUMNS))).all()
        by_position = {row.i: row for row in rows}
        return [by_position.get(i + 1) for i in range(len(quotes))]

    return read


# A quote binds nothing: losing the last ones in a crash only means asking again, so its commit does
# not wait for the disk (synchronous_commit off, for this statement alone).
_INSERT_QUOTES = (
    "INSERT INTO attempt_quotes (id, player_id, bounty_id, payer_account_id, team_id, message, max_fee, "
    "discount_bps, first_number, expires_at, salt, status) "
    "SELECT q.id, q.p, q.b, q.a, q.t, q.m, q.f, q.d, q.n, q.e, q.s, 'open' FROM unnest(CAST(:id AS text[]), "
    "CAST(:p AS bigint[]), CAST(:b AS bigint[]), CAST(:a AS bigint[]), CAST(:t AS bigint[]), CAST(:m AS text[]), "
    "CAST(:f AS bigint[]), CAST(:d AS integer[]), CAST(:n AS bigint[]), CAST(:e AS timestamptz[]), "
    "CAST(:s AS text[])) AS q(id, p, b, a, t, m, f, d, n, e, s), "
    "(SELECT set_config('synchronous_commit', 'off', true)) AS quote_commit"
)
_QUOTE_COLUMNS = ("id", "p", "b", "a", "t", "m", "f", "d", "n", "e", "s")


async def _write_quotes(conn: Conn, quotes: Sequence[tuple]) -> list[None]:
    await conn.execute(_INSERT_QUOTES, arrays(quotes, _QUOTE_COLUMNS))
    return [None] * len(quotes)


async def new_quote(
    app: App, actor: Actor, player: PlayerRef, msg: str, now: datetime, payer_: Payer | None = None
) -> tuple[Quote, tuple, Terms]:
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
    team_id = payer_.team_id if payer_ else None
    policy = app.discounts
    state = await batch(app, "quote-reads", lambda: _state_reader(policy)).submit(
        (player.id, payer.id, actor.platform, actor.external_id, team_id, now,
         app.settings.ATTEMPT_COOLDOWN_SECONDS)
    )  # fmt: skip
    if state is None:
        raise LookupError(f"player {player.id} or account {payer.id} does not exist")
    if not state.identity_current:
        raise StaleIdentity(player.id)
    demo = bool(state.is_demo)
    if state.spend_code is not None:
        raise refusals.error(state.spend_code, state.spend_detail, state.spend_extra, demo=demo)
    if state.attempt_code is not None:
        raise refusals.error(
            state.attempt_code, state.attempt_detail, state.attempt_extra, demo=demo
        )
    bounty = rounds.bounty_from(state)
    commitment.check_config(app, bounty.config_sha256, bounty.name)
    number = state.next_number
    discount = policy.from_quote(state.discount_input)
    if discount is None:  # the policy does not read with the quote
        async with app.db.autocommit() as conn:
            discount = await policy.discount_bps(conn, player.id)
    list_fee = bounty.fee(number)
    fee = apply_discount(list_fee, discount)
    if state.daily_limit is not None and state.spent + fee > state.daily_limit:
        raise refusals.error(
            "daily_limit", f"{state.spent} {fee}", str(state.daily_limit), demo=demo
        )
    if state.balance < fee:
        whose = "the team pool holds" if team_id is not None else "your balance is"
        raise InsufficientFunds(
            f"This attempt costs {usdc(fee, demo=demo)} and {whose} {usdc(state.balance, demo=demo)}."
        )
    # The player confirms a maximum: the current fee plus a small, visible tolerance, or, when many
    # attempt at once, the fee after the attempts others will likely pay first (attempts/pace.py).
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
        team_id,
        msg,
        max_fee,
        discount,
        number,
        expires,
        secrets.token_hex(16),  # the attempt's hash salt: a guessed text cannot be confirmed
    )
    quote = Quote(
        quote_id, bounty.id, bounty.name, fee, list_fee, discount, number, expires, bounty.is_demo,
        msg, max_fee, team_id,
    )  # fmt: skip
    return quote, row, Terms(bounty, number, max_fee, discount)


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
        await _check_owner(app, uow.conn, actor, player, row.player_id)
        if row.status != "open":
            raise ConfirmationExpired("That confirmation was already used.")
        await uow.conn.execute(
            "UPDATE attempt_quotes SET status = 'cancelled' WHERE id = :id", {"id": quote_id}
        )


async def _check_owner(
    app: App, conn: Conn, actor: Actor, player: PlayerRef, owner: int
) -> PlayerRef:
    if owner == player.id:
        return player
    if await owner_changed(conn, actor, player.id):
        forget_identity(app, actor)  # a stale cache: the identity belongs to another player now
        player = await resolve_player(app, conn, actor)
        if owner == player.id:
            return player
    raise NotPermitted("This button is not for you.")


@dataclass(frozen=True)
class Successor:
    """After the fee moved past a confirmed maximum: the one confirmation that replaces it.
    ``shown_before``: another tap already offered it (the message shows it; it is not offered twice)."""

    quote: Quote
    shown_before: bool


_CHAIN = (
    "SELECT q.id, q.player_id, q.status, q.successor_id, q.message, q.max_fee, q.discount_bps, q.first_number, "
    "q.expires_at, q.payer_account_id, q.team_id, b.name, b.is_demo, b.base_fee, b.growth_bps, b.fee_cap, "
    "q.bounty_id FROM attempt_quotes q JOIN bounties b ON b.id = q.bounty_id WHERE q.id = :id FOR UPDATE OF q"
)


async def supersede(app: App, actor: Actor, quote_id: str) -> Successor | str:
    """The fee moved past what ``quote_id`` confirmed: its successor, made once whatever the taps.
    Returns the id of the paid quote of the chain instead when one was paid (a replay)."""
    async with app.db.autocommit() as conn:
        player = await resolve_player(app, conn, actor)
        row = (await conn.execute(_CHAIN.replace(" FOR UPDATE OF q", ""), {"id": quote_id})).first()
        if row is None:
            raise ConfirmationExpired(
                "That confirmation is unknown or expired. Send /attempt again."
            )
        player = await _check_owner(app, conn, actor, player, row.player_id)
        account = app.accounts.known(row.payer_account_id) or await ledger.account_by_id(
            conn, row.payer_account_id
        )
    # The new quote is made before anything is locked (it reads on connections of its own).
    quote, new_row, terms = await new_quote(
        app, actor, player, row.message, app.clock(), Payer(account, row.team_id)
    )
    async with app.uow() as uow:
        conn = uow.conn
        row = (await conn.execute(_CHAIN, {"id": quote_id})).one()
        while row.status == "superseded" and row.successor_id is not None:
            row = (await conn.execute(_CHAIN, {"id": row.successor_id})).one()
        if row.status == "paid":
            return row.id
        if row.status != "open":
            raise ConfirmationExpired("That confirmation was cancelled. Send /attempt again.")
        if row.id != quote_id:  # another tap made the successor already
            return Successor(_quote_of(row), shown_before=True)
        await _write_quotes(conn, [new_row])
        await conn.execute(
            "UPDATE attempt_quotes SET status = 'superseded', successor_id = :s WHERE id = :id",
            {"s": quote.id, "id": quote_id},
        )
    app.quote_terms[quote.id] = terms
    app.quote_terms.pop(quote_id)
    return Successor(quote, shown_before=False)


def _quote_of(row) -> Quote:
    list_fee = attempt_fee(row.first_number, row.base_fee, row.growth_bps, row.fee_cap)
    return Quote(
        row.id, row.bounty_id, row.name, apply_discount(list_fee, row.discount_bps), list_fee,
        row.discount_bps, row.first_number, row.expires_at, row.is_demo, row.message, row.max_fee,
        row.team_id,
    )  # fmt: skip
