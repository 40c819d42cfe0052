"""One player on two platforms: /link codes, the join rules, standing that follows the player, and
another process (another App with its own cache) acting on the joined player at its next command."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from core.actors import Actor
from core.errors import (
    ConfirmationExpired,
    InsufficientFunds,
    InvalidArgument,
    LimitReached,
    NotFound,
    NotPermitted,
)
from core.services import admin, attempts, identity, limits, moderation, views
from core.services.players import ensure_player
from core.services.teams import membership
from tests.helpers import USDC, fund, open_round
from tests.helpers import books_ok as ledger_ok

TG = Actor("telegram", "1001", "Alice", username="alice_tg")
DC = Actor("discord", "1320000000000000001", "Alice", username="alice")
DC2 = Actor("discord", "1320000000000000002", "Eve", username="eve")
MONA = Actor("telegram", "4242", "Mona", username="mona_mod")


@pytest.fixture
async def app(app_factory):
    return await app_factory(MODERATOR_TELEGRAM_USER_IDS="4242")


async def player_id(app, actor: Actor) -> int:
    async with app.uow() as uow:
        return (await ensure_player(uow.conn, actor)).id


async def test_link_joins_the_empty_side_onto_the_one_with_money(app):
    await open_round(app)
    await fund(app, TG, 40 * USDC)
    tg_id = await player_id(app, TG)
    made = await identity.new_code(app, TG)
    assert len(made.code) == 9 and made.code[4] == "-"
    joined = await identity.join(app, DC, made.code.lower())  # typed in any case
    assert joined.player.id == tg_id and joined.balance == 40 * USDC
    assert {i.platform for i in joined.identities} == {"telegram", "discord"}
    assert (await views.balance(app, DC))[0] == (await views.balance(app, TG))[0] == 40 * USDC
    # One history: an attempt from Discord is the same player's.
    quote = await attempts.quote_attempt(app, DC, "from discord")
    await attempts.confirm_attempt(app, DC, quote.id)
    assert [h.message for h in await views.history(app, TG)] == ["from discord"]
    assert (await views.balance(app, TG))[0] == 30 * USDC
    # The emptied player points at the joined one; the link is in the audit log and both are told.
    async with app.engine.connect() as conn:
        merged = (
            await conn.execute(
                text("SELECT id, merged_into FROM players WHERE merged_into IS NOT NULL")
            )
        ).all()
        actions = (
            await conn.execute(text("SELECT action, target_player_id FROM audit_log ORDER BY id"))
        ).all()
        notices = (
            (
                await conn.execute(
                    text("SELECT channel FROM outbox WHERE topic = 'notice' ORDER BY id")
                )
            )
            .scalars()
            .all()
        )
    assert [(m.merged_into) for m in merged] == [tg_id]
    assert [a.action for a in actions if a.action == "link"] == ["link", "link"]
    assert notices == ["telegram", "discord"]
    await ledger_ok(app)


async def test_link_the_other_way_keeps_the_side_with_history(app):
    await open_round(app)
    await fund(app, DC, 20 * USDC)
    dc_id = await player_id(app, DC)
    await player_id(app, TG)
    made = await identity.new_code(app, TG)  # the empty side asks for the code
    joined = await identity.join(app, DC, made.code)  # the side with money enters it
    assert joined.player.id == dc_id
    assert (await views.balance(app, TG))[0] == 20 * USDC


async def test_codes_work_once_expire_and_are_checked(app):
    now = app.clock()
    app.clock = lambda: now
    made = await identity.new_code(app, TG)
    with pytest.raises(
        InvalidArgument, match="Enter the code on your other platform: it was made on Telegram"
    ):
        await identity.join(app, TG, made.code)
    other_tg = Actor("telegram", "777", "Tom")
    with pytest.raises(InvalidArgument, match="made on Telegram"):
        await identity.join(app, other_tg, made.code)
    for bad in ("", "ABCD", "ABCD-EFG0", "hello world", "ABCD-EFGH-IJKL"):
        with pytest.raises(InvalidArgument, match="not a link code"):
            await identity.join(app, DC, bad)
    with pytest.raises(NotFound, match="No such link code"):
        await identity.join(app, DC, "ABCD-EFGH")
    app.clock = lambda: now + timedelta(minutes=10, seconds=1)
    with pytest.raises(ConfirmationExpired, match="expired"):
        await identity.join(app, DC, made.code)
    app.clock = lambda: now
    fresh = await identity.new_code(app, TG)
    with pytest.raises(NotFound):
        await identity.join(
            app, DC, made.code.replace(made.code[0], "Z" if made.code[0] != "Z" else "Y", 1)
        )
    await identity.join(app, DC, fresh.code)
    with pytest.raises(ConfirmationExpired, match="already used"):
        await identity.join(app, DC2, fresh.code)
    # A newer code replaces an older unused one.
    first = await identity.new_code(app, MONA)
    await identity.new_code(app, MONA)
    with pytest.raises(ConfirmationExpired, match="already used"):
        await identity.join(app, DC2, first.code)


async def test_linking_to_itself_or_to_a_player_with_that_platform_is_refused(app):
    eve = await player_id(app, DC2)
    made = await identity.new_code(app, TG)
    await identity.join(app, DC, made.code)
    again = await identity.new_code(app, TG)
    with pytest.raises(InvalidArgument, match="already one player"):
        await identity.join(app, DC, again.code)
    # Eve (Discord) cannot join Alice, who already has a Discord account.
    with pytest.raises(InvalidArgument, match="both already have a Discord account"):
        await identity.join(app, DC2, again.code)
    async with app.engine.connect() as conn:
        owners = (
            await conn.execute(
                text("SELECT external_id, player_id FROM player_identities ORDER BY id")
            )
        ).all()
    alice = await player_id(app, TG)
    assert [tuple(o) for o in owners] == [
        (DC2.external_id, eve),
        (TG.external_id, alice),
        (DC.external_id, alice),
    ]


async def test_both_sides_with_money_or_history_are_refused_and_nothing_changes(app):
    await fund(app, TG, 5 * USDC)
    await fund(app, DC, 7 * USDC)
    made = await identity.new_code(app, TG)
    with pytest.raises(InvalidArgument) as refused:
        await identity.join(app, DC, made.code)
    assert refused.value.message == (
        "Both accounts already have money or history, so they cannot be joined: this one has a balance of "
        "7.00 USDC; the other has a balance of 5.00 USDC. Play on with one of them, or ask a moderator."
    )
    assert (await views.balance(app, TG))[0] == 5 * USDC and (await views.balance(app, DC))[
        0
    ] == 7 * USDC
    async with app.engine.connect() as conn:
        assert (
            await conn.execute(text("SELECT count(*) FROM players WHERE merged_into IS NOT NULL"))
        ).scalar() == 0
        assert (
            await conn.execute(text("SELECT used_at FROM link_codes"))
        ).scalar() is None  # still usable


async def test_history_without_money_counts_as_something(app):
    await open_round(app)
    await fund(app, TG, 10 * USDC)
    quote = await attempts.quote_attempt(app, TG, "all in")
    await attempts.confirm_attempt(app, TG, quote.id)  # spent everything: balance 0, one attempt
    empty = Actor("console", "guest", "Guest")
    async with app.uow() as uow:
        assert await identity.has_state(uow.conn, await player_id(app, TG)) == ["1 attempt"]
        assert await identity.has_state(uow.conn, await player_id(app, empty)) == []
    await fund(app, DC, 1 * USDC)
    made = await identity.new_code(app, TG)
    with pytest.raises(
        InvalidArgument, match="this one has a balance of 1.00 USDC; the other has 1 attempt"
    ):
        await identity.join(app, DC, made.code)


async def test_a_ban_and_a_self_exclusion_follow_the_player_through_a_link(app):
    await open_round(app)
    await fund(app, DC, 30 * USDC)
    await player_id(app, TG)
    banned = await moderation.ban(app, MONA, "telegram:1001", timedelta(days=7), "multi-accounting")
    made = await identity.new_code(app, TG)  # the banned, empty side joins the clean one with money
    joined = await identity.join(app, DC, made.code)
    assert joined.player.id == await player_id(app, DC)
    with pytest.raises(
        NotPermitted, match=f"banned until {banned.until:%Y-%m-%d %H:%M} UTC: multi-accounting"
    ):
        await attempts.quote_attempt(app, DC, "now from discord")

    # Self-exclusion: Eve excludes herself on Telegram, then links a Discord account with money.
    eve_tg = Actor("telegram", "2002", "Eve")
    await limits.exclude(app, eve_tg, 30)
    await fund(app, DC2, 10 * USDC)
    made = await identity.new_code(app, eve_tg)
    await identity.join(app, DC2, made.code)
    with pytest.raises(LimitReached, match="excluded yourself"):
        await attempts.quote_attempt(app, DC2, "let me pay")


async def test_another_process_acts_on_the_joined_player_at_its_next_command(app_factory):
    """Two Apps are two processes: each caches (platform, id) -> player. The Discord process cached
    Alice's empty Discord player; Telegram links it; the next Discord command pays from the joined
    balance, and a stale confirmation is answered, not refused as "not for you"."""
    telegram = await app_factory()
    discord = await app_factory(reset=False)
    await open_round(telegram)
    await fund(telegram, TG, 50 * USDC)
    from core.services.players import require_not_banned

    await require_not_banned(
        discord, DC
    )  # a command there: caches Alice's own, empty Discord player
    stale = discord.player_cache[("discord", DC.external_id)]
    made = await identity.new_code(telegram, TG)
    joined = await identity.join(telegram, DC, made.code)
    assert (
        discord.player_cache[("discord", DC.external_id)] == stale != joined.player
    )  # still stale there
    quote = await attempts.quote_attempt(discord, DC, "hello from discord")
    assert discord.player_cache[("discord", DC.external_id)].id == joined.player.id
    outcome = await attempts.confirm_attempt(discord, DC, quote.id)
    assert outcome.status == "rejected"
    assert (await views.balance(telegram, TG))[0] == 40 * USDC

    # A quote made before the cache went stale is still payable after another link moves identities.
    quote = await attempts.quote_attempt(discord, DC, "second")
    discord.player_cache[("discord", DC.external_id)] = stale  # as if cached before the link
    outcome = await attempts.confirm_attempt(discord, DC, quote.id)
    assert outcome.status == "rejected" and not outcome.replayed

    # Cancelling from a stale cache is the owner cancelling, not "not for you".
    quote = await attempts.quote_attempt(discord, DC, "third")
    discord.player_cache[("discord", DC.external_id)] = stale
    await attempts.cancel_quote(discord, DC, quote.id)

    # And the ban check of another process sees the joined player's ban.
    await moderation.ban(
        telegram, Actor("console", "operator", "Operator"), "telegram:1001", None, "enough"
    )
    discord.player_cache[("discord", DC.external_id)] = stale
    with pytest.raises(NotPermitted, match="enough"):
        await require_not_banned(discord, DC)
    await ledger_ok(telegram)


async def test_unlink_is_for_moderators_audited_and_starts_the_account_over(app, app_factory):
    await open_round(app)
    await fund(app, TG, 25 * USDC)
    made = await identity.new_code(app, TG)
    joined = await identity.join(app, DC, made.code)
    other = await app_factory(reset=False)
    await attempts.quote_attempt(other, DC, "cache me")  # another process caches the joined player

    with pytest.raises(NotPermitted, match="Only moderators"):
        await identity.unlink(app, TG, "telegram:1001", "discord", "mine")
    with pytest.raises(InvalidArgument, match="`platform` must be one of"):
        await identity.unlink(app, MONA, "telegram:1001", "myspace", "why")
    with pytest.raises(InvalidArgument, match="needs a reason"):
        await identity.unlink(app, MONA, "telegram:1001", "discord", "  ")
    done = await identity.unlink(app, MONA, "telegram:1001", "discord", "account sold")
    assert done.player.id == joined.player.id and done.new_player_id != joined.player.id
    assert (await views.balance(app, TG))[0] == 25 * USDC and (await views.balance(app, DC))[0] == 0
    with pytest.raises(InsufficientFunds, match="your balance is 0.00 USDC"):
        await attempts.quote_attempt(other, DC, "spend alice's money")  # the stale cache is noticed
    with pytest.raises(InvalidArgument, match="only account"):
        await identity.unlink(app, MONA, "telegram:1001", "telegram", "x")
    with pytest.raises(NotFound, match="has no Discord account"):
        await identity.unlink(app, MONA, "telegram:1001", "discord", "x")
    async with app.engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM audit_log WHERE action = 'unlink'"))).one()
    assert row.reason == "account sold" and row.target_player_id == joined.player.id
    assert row.before == {f"#{joined.player.id}": ["Telegram @alice_tg", "Discord @alice"]}
    assert row.after[f"#{done.new_player_id}"] == ["Discord @alice"]
    await ledger_ok(app)


async def _join_paused_in_its_checks(app, monkeypatch, code: str):
    """Start /link and stop it after it has locked both players and checked their money: the moment a
    grant or a team place that does not wait for it would be lost on the player it joins away."""
    checking, release = asyncio.Event(), asyncio.Event()

    async def pause(conn, player_id: int) -> list[str]:
        checking.set()
        await release.wait()
        return []

    monkeypatch.setattr(identity, "STATE_CHECKS", [*identity.STATE_CHECKS, pause])
    task = asyncio.create_task(identity.join(app, DC, code))
    await checking.wait()
    return task, release


@pytest.mark.parametrize("gives", ["grant", "team place"])
async def test_what_a_player_is_given_during_a_link_goes_to_the_joined_player(
    app, monkeypatch, gives
):

    await open_round(app)
    tg_id, dc_id = await player_id(app, TG), await player_id(app, DC)
    made = await identity.new_code(app, TG)
    join, release = await _join_paused_in_its_checks(
        app, monkeypatch, made.code
    )  # both empty: DC joins onto TG
    if gives == "grant":
        given = asyncio.create_task(
            admin.grant(app, MONA, f"#{dc_id}", 7 * USDC, "prize of the week")
        )
    else:
        given = asyncio.create_task(membership.create_team(app, DC, "Torchbearers", private=False))
    await asyncio.sleep(0.3)
    assert (
        not given.done()
    )  # it waits for the join instead of writing onto the player being joined away
    release.set()
    joined = await join
    assert joined.player.id == tg_id
    result = await given
    async with app.engine.connect() as conn:
        if gives == "grant":
            assert result.player.id == tg_id and result.balance == 7 * USDC
            balances = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT owner_id, balance FROM accounts WHERE kind = 'player' AND owner_id = ANY(:ids)"
                        ),
                        {"ids": [tg_id, dc_id]},
                    )
                ).all()
            )
            assert balances.get(tg_id) == 7 * USDC and not balances.get(dc_id)
        else:
            holders = (
                (
                    await conn.execute(
                        text("SELECT player_id FROM team_members WHERE team_id = :t"),
                        {"t": result.id},
                    )
                )
                .scalars()
                .all()
            )
            assert holders == [tg_id]
            captain = (
                await conn.execute(
                    text("SELECT captain_player_id FROM teams WHERE id = :t"), {"t": result.id}
                )
            ).scalar_one()
            assert captain == tg_id
    await ledger_ok(app)


# -- /link <code> through the command layer: the person typing the code is asked first (SPEC §10.3)


async def _typed(app, actor: Actor, line: str):
    from core.commands import find, parse_text_args, run_command

    command = find("link")
    return await run_command(app, actor, command, parse_text_args(command, line))


async def _press(app, actor: Actor, reply, accept: bool = True):
    from core.commands import run_confirmation

    return await run_confirmation(app, actor, reply.confirm.token, accept)


async def _joined(app, a: Actor, b: Actor) -> bool:
    return await player_id(app, a) == await player_id(app, b)


async def test_a_funded_player_talked_into_typing_a_strangers_code_is_asked_and_nothing_joins(app):
    """The attack: Eve (an empty Discord account) asks Alice to "verify" by typing Eve's code on
    Telegram. The side with money stays, so joining would give Eve's account Alice's balance."""
    await open_round(app)
    await fund(app, TG, 40 * USDC)
    made = await identity.new_code(app, DC2)
    asked = await _typed(app, TG, made.code)
    # The question names both accounts, what each holds and which one stays; nothing joined yet.
    assert asked.confirm is not None and asked.tone == "danger"
    assert "This account (Telegram @alice_tg) holds a balance of 40.00 USDC" in asked.text
    assert "The account that made the code (Discord @eve) holds nothing yet" in asked.text
    assert "Yours stays: Discord @eve becomes part of it and can spend your balance" in asked.text
    assert not await _joined(app, TG, DC2)
    assert (await views.balance(app, DC2))[0] == 0 and (await views.balance(app, TG))[
        0
    ] == 40 * USDC

    # Only Alice may answer it: Eve pressing it is refused, and nothing joins.
    with pytest.raises(NotPermitted, match="not for you"):
        await _press(app, DC2, asked)
    assert not await _joined(app, TG, DC2)

    # Alice declines: nothing joined, and the code is out of use (Eve cannot try it again).
    declined = await _press(app, TG, asked, accept=False)
    assert "Nothing was joined" in declined.text
    assert not await _joined(app, TG, DC2)
    with pytest.raises(ConfirmationExpired, match="already used"):
        await _typed(app, TG, made.code)
    await ledger_ok(app)


async def test_link_joins_only_when_the_question_still_reads_the_same(app):
    await open_round(app)
    await fund(app, TG, 40 * USDC)
    made = await identity.new_code(app, DC)
    asked = await _typed(app, TG, made.code)
    await fund(app, TG, 2 * USDC)  # what the question said changed: asked again, nothing joined
    again = await _press(app, TG, asked)
    assert again.title == "The accounts changed since you were asked" and again.confirm
    assert "42.00 USDC" in again.text and not await _joined(app, TG, DC)
    done = await _press(app, TG, again)
    assert done.title == "Accounts linked" and await _joined(app, TG, DC)
    assert (await views.balance(app, DC))[0] == 42 * USDC


async def test_an_empty_account_entering_a_code_is_told_it_joins_the_other(app):
    await open_round(app)
    await fund(app, DC, 5 * USDC)
    made = await identity.new_code(app, DC)
    asked = await _typed(app, TG, made.code)
    assert "This account (Telegram @alice_tg) holds nothing yet" in asked.text
    assert "Theirs stays: this account becomes part of Discord @alice" in asked.text
    assert asked.tone == "warning" and not await _joined(app, TG, DC)
    await _press(app, TG, asked)
    assert await _joined(app, TG, DC)


async def test_a_quote_made_before_an_unlink_cannot_be_paid_from_the_old_player(app, app_factory):
    """The attack: quote from the Discord side while it still shares the Telegram side's money; a
    moderator unlinks it; another process, still caching the old mapping, is asked to pay. The
    payment checks the identity itself: nothing is paid from the old player."""
    await open_round(app)
    await fund(app, TG, 25 * USDC)
    made = await identity.new_code(app, TG)
    joined = await identity.join(app, DC, made.code)
    other = await app_factory(reset=False)
    quote = await attempts.quote_attempt(other, DC, "spend it before the unlink")
    assert other.player_cache.get(("discord", DC.external_id)).id == joined.player.id
    await identity.unlink(app, MONA, "telegram:1001", "discord", "account sold")
    with pytest.raises(NotPermitted, match="not for you"):
        await attempts.confirm_attempt(other, DC, quote.id)
    assert (await views.balance(app, TG))[0] == 25 * USDC
    async with app.db.autocommit() as conn:
        assert (await conn.execute("SELECT count(*) FROM attempts")).scalar_one() == 0
    await ledger_ok(app)
