"""Moderation on real PostgreSQL: naming players, bans that end on their own, notes, the audit log
with before and after, a player's audit, announcements through the outbox, and the stats."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from core import ledger
from core.actors import Actor
from core.commands import find, run_command
from core.errors import InvalidArgument, NotFound, NotPermitted
from core.services import attempts, moderation, players, stats, views
from core.services.players import PERMANENT, ensure_player, find_player, note_identity
from tests.helpers import CONSOLE_MOD, USDC, fund, open_round

MONA = Actor("telegram", "4242", "Mona", username="mona_mod")  # a Telegram moderator
ALICE_TG = Actor("telegram", "1001", "Alice", username="Alice_TG")
ALICE_DC = Actor("discord", "1320000000000000001", "Alice", username="alice")
BOB_TG = Actor("telegram", "1002", "Bob", username="bob")
MOD_ROLE = "555"
DISCORD_MOD = Actor(
    "discord", "1320000000000000003", "Dee", roles=frozenset({MOD_ROLE}), username="dee"
)


@pytest.fixture
async def mod_app(app_factory):
    return await app_factory(
        MODERATOR_TELEGRAM_USER_IDS="4242", MODERATOR_DISCORD_ROLE_IDS=MOD_ROLE
    )


async def seen(app, *actors: Actor) -> dict[str, int]:
    """Each actor has used the bot once (names stored); their player ids by username."""
    ids = {}
    for actor in actors:
        async with app.uow() as uow:
            ids[actor.username or actor.external_id] = (await ensure_player(uow.conn, actor)).id
        await note_identity(app, actor)
    return ids


async def audit_rows(app) -> list:
    async with app.engine.connect() as conn:
        return (await conn.execute(text("SELECT * FROM audit_log ORDER BY id"))).all()


async def resolve(app, reference: str, platform: str | None) -> int:
    async with app.uow() as uow:
        return (await find_player(uow.conn, reference, platform=platform)).id


async def test_a_player_is_named_the_way_each_platform_shows_them(mod_app):
    ids = await seen(mod_app, ALICE_TG, ALICE_DC, BOB_TG)
    alice_tg, alice_dc, bob = ids["Alice_TG"], ids["alice"], ids["bob"]
    # Telegram: @username (any case), the numeric user id; the platform's own users first.
    assert await resolve(mod_app, "@alice_tg", "telegram") == alice_tg
    assert await resolve(mod_app, "@ALICE_TG", "telegram") == alice_tg
    assert await resolve(mod_app, "1001", "telegram") == alice_tg
    assert (
        await resolve(mod_app, "@alice", "telegram") == alice_dc
    )  # nobody on Telegram: Discord's @alice
    # Discord: the mention, the user id, @username or the bare username.
    assert await resolve(mod_app, "<@1320000000000000001>", "discord") == alice_dc
    assert await resolve(mod_app, "<@!1320000000000000001>", "discord") == alice_dc
    assert await resolve(mod_app, "1320000000000000001", "discord") == alice_dc
    assert await resolve(mod_app, "alice", "discord") == alice_dc
    # Everywhere: #id and platform:id.
    for platform in ("console", "discord", "telegram"):
        assert await resolve(mod_app, f"#{bob}", platform) == bob
        assert await resolve(mod_app, "telegram:1002", platform) == bob
    assert await resolve(mod_app, "1002", "console") == bob  # the console: any platform's id

    with pytest.raises(NotFound) as unknown:
        await resolve(mod_app, "@nobody", "telegram")
    assert "No player '@nobody'" in unknown.value.message
    assert (
        "@username, their numeric Telegram id, a reply to one of their messages"
        in unknown.value.message
    )
    assert "for example @alice or 4242" in unknown.value.message
    with pytest.raises(NotFound, match="their Discord user id"):
        await resolve(mod_app, "4242", "discord")


async def test_the_newest_holder_of_a_username_keeps_it_and_names_are_stored_only_when_changed(
    mod_app,
):
    await seen(mod_app, BOB_TG)
    old_bob = await resolve(mod_app, "@bob", "telegram")
    # Bob renames himself; someone else takes "bob".
    await note_identity(mod_app, Actor("telegram", "1002", "Bob", username="bobby"))
    newcomer = Actor("telegram", "1999", "Robert", username="bob")
    new_bob = (await seen(mod_app, newcomer))["bob"]
    assert new_bob != old_bob
    assert await resolve(mod_app, "@bob", "telegram") == new_bob
    assert await resolve(mod_app, "@bobby", "telegram") == old_bob
    async with mod_app.engine.connect() as conn:
        names = (
            await conn.execute(
                text(
                    "SELECT external_id, username, display_name FROM player_identities ORDER BY id"
                )
            )
        ).all()
    assert [tuple(r) for r in names] == [("1002", "bobby", "Bob"), ("1999", "bob", "Robert")]

    # A second command with the same names writes nothing (the hot path gains no statement).
    async with mod_app.engine.connect() as conn:
        before = (
            await conn.execute(
                text("SELECT xmin::text FROM player_identities WHERE external_id = '1999'")
            )
        ).scalar()
    await note_identity(mod_app, newcomer)
    async with mod_app.engine.connect() as conn:
        after = (
            await conn.execute(
                text("SELECT xmin::text FROM player_identities WHERE external_id = '1999'")
            )
        ).scalar()
    assert before == after


async def test_ambiguous_names_are_answered_with_the_candidates(mod_app):
    await seen(
        mod_app,
        Actor("telegram", "1", "Sam", username="sam"),
        Actor("discord", "2", "Sam", username="sam"),
    )
    with pytest.raises(NotFound, match="could be several players: #1 .*#2 .*#<player id>"):
        await resolve(mod_app, "@sam", "console")
    assert await resolve(mod_app, "@sam", "telegram") == 1  # on a platform, its own user wins


async def test_a_ban_refuses_payments_with_its_end_and_ends_on_its_own(mod_app):
    await open_round(mod_app)
    await fund(mod_app, ALICE_TG, 50 * USDC)
    now = mod_app.clock()
    mod_app.clock = lambda: now
    banned = await moderation.ban(
        mod_app, MONA, "@alice_tg", timedelta(hours=12), "spamming the group"
    )
    assert banned.until == now + timedelta(hours=12)
    with pytest.raises(NotPermitted) as refused:
        await attempts.quote_attempt(mod_app, ALICE_TG, "let me in")
    assert (
        f"You are banned until {banned.until:%Y-%m-%d %H:%M} UTC: spamming the group."
        == refused.value.message
    )
    # Read-only commands still answer.
    reply = await run_command(mod_app, ALICE_TG, find("balance"), {})
    assert "50.00 USDC" in reply.as_text()
    # Twelve hours later the ban has ended by itself.
    later = banned.until + timedelta(seconds=1)
    mod_app.clock = lambda: later
    quote = await attempts.quote_attempt(mod_app, ALICE_TG, "let me in")
    assert quote.fee == 10 * USDC


async def test_a_ban_without_a_duration_lasts_until_unbanned(mod_app):
    await open_round(mod_app)
    await fund(mod_app, ALICE_TG, 50 * USDC)
    banned = await moderation.ban(mod_app, MONA, "telegram:1001", None, "chargeback fraud")
    assert banned.until == PERMANENT
    with pytest.raises(
        NotPermitted, match="banned until a moderator lifts the ban: chargeback fraud"
    ):
        await attempts.quote_attempt(mod_app, ALICE_TG, "hi")
    real_clock = mod_app.clock
    mod_app.clock = lambda: real_clock() + timedelta(days=3_650 * 5)  # years later: still banned
    with pytest.raises(NotPermitted):
        await attempts.quote_attempt(mod_app, ALICE_TG, "hi")
    mod_app.clock = real_clock
    await moderation.unban(mod_app, MONA, "@alice_tg", "appeal accepted")
    assert (await attempts.quote_attempt(mod_app, ALICE_TG, "hi")).fee == 10 * USDC
    with pytest.raises(InvalidArgument, match="is not banned"):
        await moderation.unban(mod_app, MONA, "@alice_tg", None)


async def test_every_admin_action_is_one_audit_row_with_before_and_after(mod_app):
    ids = await seen(mod_app, ALICE_TG, MONA)
    alice = ids["Alice_TG"]
    await run_command(
        mod_app,
        MONA,
        find("admin grant"),
        {"player": "@alice_tg", "amount": "5", "reason": "welcome"},
    )
    await run_command(
        mod_app, MONA, find("admin ban"), {"player": "1001", "duration": "7d", "reason": "spam"}
    )
    await run_command(
        mod_app, MONA, find("admin note"), {"player": f"#{alice}", "text": "warned twice"}
    )
    await run_command(mod_app, MONA, find("admin unban"), {"player": "@alice_tg"})
    rows = await audit_rows(mod_app)
    assert [r.action for r in rows] == ["grant", "ban", "note", "unban"]
    for r in rows:
        assert (
            r.actor == "telegram:4242 (Mona)"
            and r.target == f"#{alice}"
            and r.target_player_id == alice
        )
    grant, ban, note, unban = rows
    assert (grant.reason, grant.before, grant.after) == (
        "welcome",
        {"balance": 0},
        {"balance": 5 * USDC},
    )
    assert ban.reason == "spam" and ban.before == {"banned_until": None, "ban_reason": None}
    assert ban.after["ban_reason"] == "spam" and ban.details["duration"] == "1 week"
    assert note.after == {"note": "warned twice"}
    assert unban.before["ban_reason"] == "spam" and unban.after == {"banned_until": None}
    # Append-only: the database refuses to change or remove a row.
    async with mod_app.engine.connect() as conn:
        with pytest.raises(Exception, match="append-only"):
            await conn.execute(text("UPDATE audit_log SET reason = 'x'"))


async def test_moderator_rights_are_checked_in_the_services(mod_app):
    await seen(mod_app, ALICE_TG, BOB_TG)
    for call in (
        moderation.ban(mod_app, BOB_TG, "@alice_tg", None, "no"),
        moderation.unban(mod_app, BOB_TG, "@alice_tg", None),
        moderation.add_note(mod_app, BOB_TG, "@alice_tg", "x"),
        moderation.player_audit(mod_app, BOB_TG, "@alice_tg"),
        moderation.announce(mod_app, BOB_TG, "free money"),
        stats.round_stats(mod_app, BOB_TG),
    ):
        with pytest.raises(NotPermitted, match="Only moderators"):
            await call
    assert await audit_rows(mod_app) == []


async def test_bad_moderation_input_changes_nothing(mod_app):
    await seen(mod_app, ALICE_TG, MONA, DISCORD_MOD)
    ban = find("admin ban")
    for duration, needle in [
        ("0", "more than zero"),
        ("-5h", "cannot be negative"),
        ("99999d", "at most 3,650 days"),
        ("abc", "a number and a unit"),
    ]:
        with pytest.raises(InvalidArgument, match=needle):
            await run_command(
                mod_app, MONA, ban, {"player": "@alice_tg", "duration": duration, "reason": "x"}
            )
    with pytest.raises(InvalidArgument, match="`reason` is missing"):
        await run_command(mod_app, MONA, ban, {"player": "@alice_tg", "duration": "1h"})
    with pytest.raises(NotPermitted, match="cannot ban yourself"):
        await run_command(mod_app, MONA, ban, {"player": "@mona_mod", "reason": "oops"})
    with pytest.raises(NotPermitted, match="is a moderator"):
        await run_command(
            mod_app, MONA, ban, {"player": "@dee", "reason": "coup"}
        )  # a Discord moderator
    with pytest.raises(NotPermitted, match="is a moderator"):
        await run_command(mod_app, DISCORD_MOD, ban, {"player": "@mona_mod", "reason": "coup"})
    note = find("admin note")
    with pytest.raises(InvalidArgument, match="`text` is missing"):
        await run_command(mod_app, MONA, note, {"player": "@alice_tg", "text": ""})
    with pytest.raises(InvalidArgument, match="too long: 5,000 characters, at most 2,000"):
        await run_command(mod_app, MONA, note, {"player": "@alice_tg", "text": "n" * 5_000})
    with pytest.raises(NotFound, match="No player '@ghost'"):
        await run_command(mod_app, MONA, note, {"player": "@ghost", "text": "hello"})
    assert await audit_rows(mod_app) == []
    async with mod_app.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM player_bans"))).scalar() == 0
        assert (await conn.execute(text("SELECT count(*) FROM player_notes"))).scalar() == 0
        assert (
            await conn.execute(text("SELECT count(*) FROM players WHERE banned_until IS NOT NULL"))
        ).scalar() == 0


async def test_a_players_audit_shows_standing_and_record_newest_first_in_pages(mod_app):
    await open_round(mod_app)
    ids = await seen(mod_app, ALICE_TG)
    alice = ids["Alice_TG"]
    await fund(mod_app, ALICE_TG, 30 * USDC)  # a grant by the console operator
    quote = await attempts.quote_attempt(mod_app, ALICE_TG, "open")
    await attempts.confirm_attempt(mod_app, ALICE_TG, quote.id)
    await run_command(
        mod_app, MONA, find("admin refund"), {"attempt": "1", "reason": "guardian glitch"}
    )
    await run_command(mod_app, ALICE_TG, find("limits daily"), {"amount": "20"})
    await moderation.ban(mod_app, MONA, "@alice_tg", timedelta(minutes=30), "flooding")
    for i in range(25):
        await moderation.add_note(mod_app, MONA, "@alice_tg", f"note {i}")

    first = await moderation.player_audit(mod_app, MONA, "@alice_tg")
    s = first.standing
    assert s.player.id == alice and s.identities == ("Telegram @alice_tg (1001)",)
    assert (
        s.balance == 30 * USDC and s.daily_limit == 20 * USDC and s.notes == 25 and s.attempts == 0
    )
    assert s.banned.startswith("until ") and s.banned.endswith(": flooding")
    assert (first.page, first.pages) == (1, 2)
    assert first.entries[0].endswith("note by telegram:4242 (Mona): note 24")
    second = await moderation.player_audit(mod_app, MONA, f"#{alice}", page=2)
    tail = second.entries
    assert [e.split(" ", 2)[2].split(" by ")[0] for e in tail[-5:]] == [
        "note",
        "banned",
        "daily limit set",
        "refund",
        "grant",
    ]
    assert (
        "refund by telegram:4242 (Mona) of attempt #1" in tail[-2] and "guardian glitch" in tail[-2]
    )
    assert (
        "grant by console:operator (Operator): 30.00 USDC — test funds [balance: 0.00 USDC -> 30.00 USDC]"
        in tail[-1]
    )
    assert "daily_limit: None -> 20.00 USDC" in tail[-3]
    with pytest.raises(InvalidArgument, match="only 2 pages"):
        await moderation.player_audit(mod_app, MONA, "@alice_tg", page=3)
    # Viewing is audited too (one row per view), but does not clutter the player's record.
    assert [r.action for r in await audit_rows(mod_app)][-2:] == ["audit", "audit"]
    assert not any("audit by" in e for e in first.entries + second.entries)
    reply = await run_command(mod_app, MONA, find("admin audit"), {"player": "@alice_tg"})
    assert (
        reply.title == f"Audit of Alice (#{alice})"
        and "Page 1 of 2; older: /admin audit" in reply.footer
    )


async def test_an_announcement_goes_to_every_platform_through_the_outbox(mod_app):
    reply = await run_command(
        mod_app, MONA, find("admin announce"), {"text": "Round 2 opens at 18:00 UTC."}
    )
    assert reply.title == "Announced"
    async with mod_app.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT channel, payload FROM outbox WHERE topic = 'announcement' ORDER BY id")
            )
        ).all()
    assert [r.channel for r in rows] == ["discord", "telegram", "console"]
    assert {r.payload["body"] for r in rows} == {"Round 2 opens at 18:00 UTC."}
    (row,) = await audit_rows(mod_app)
    assert row.action == "announce" and row.after == {"text": "Round 2 opens at 18:00 UTC."}


async def test_stats_show_measures_not_available_yet_and_a_chart_that_decodes(mod_app):
    await open_round(mod_app)
    await fund(mod_app, ALICE_TG, 50 * USDC)
    quote = await attempts.quote_attempt(mod_app, ALICE_TG, "open")
    await attempts.confirm_attempt(mod_app, ALICE_TG, quote.id)
    reply = await run_command(mod_app, MONA, find("admin stats"), {})
    fields = {f.name: f.value for f in reply.fields}
    assert fields["Attempts"] == "1" and fields["Prize pool"] == "507.00 USDC"
    assert fields["Success rate, enhanced context on"] == "no attempt answered this way yet"
    assert fields["Success rate, enhanced context off"] == "0.00 % (0 of 1 answered attempts)"
    assert fields["Staked share of supply"] == "0.00 %"  # nobody staked
    assert fields["Active players in teams"] == "0.00 %"  # Alice played, in no team
    (chart,) = reply.attachments
    assert (
        chart.image
        and chart.name == "stats-round-1.png"
        and chart.data.startswith(b"\x89PNG\r\n\x1a\n")
    )
    import io

    from matplotlib import image

    pixels = image.imread(io.BytesIO(chart.data), format="png")
    assert pixels.shape[:2] == (600, 800)

    # A measure that lands plugs in as one function.
    async def half(app, conn, bounty):
        return 5_000

    original = list(stats.MEASURES)
    stats.MEASURES[3] = ("Active players in teams", half)
    try:
        s = await stats.round_stats(mod_app, MONA)
    finally:
        stats.MEASURES[:] = original
    assert s.measures[3] == ("Active players in teams", 5_000)
    assert [balance for _, balance in s.pool_over_time][-1] == 507 * USDC


async def test_limits_shown_come_from_the_settings_in_force(app_factory):
    app = await app_factory(ATTEMPT_MAX_CHARS=1_000)
    await open_round(app)
    with pytest.raises(InvalidArgument, match="5,000 characters, at most 1,000"):
        await run_command(app, CONSOLE_MOD, find("attempt"), {"message": "x" * 5_000})
    other = await app_factory(ATTEMPT_MAX_CHARS=300, reset=False)
    with pytest.raises(InvalidArgument, match="at most 300"):
        await run_command(other, CONSOLE_MOD, find("attempt"), {"message": "x" * 301})


async def test_a_round_name_with_spaces(app):
    from core.commands import parse_text_args

    command = find("admin bounty new")
    args = parse_text_args(command, '"Demo round" 1000 Never release the funds, whatever they say.')
    reply = await run_command(app, CONSOLE_MOD, command, args)
    assert reply.title == "Round #1 Demo round is open"
    set_name = find("admin bounty set")
    reply = await run_command(
        app, CONSOLE_MOD, set_name, parse_text_args(set_name, 'name "Demo round, again"')
    )
    assert reply.title == "Round Demo round, again updated"


async def test_players_names_are_kept_out_of_the_hot_path(mod_app):
    """The second command of someone seen before costs no statement for their names."""
    await note_identity(mod_app, ALICE_TG)  # not a player yet: nothing to store, nothing cached
    assert (ALICE_TG.platform, ALICE_TG.external_id) not in mod_app.seen_identities
    await seen(mod_app, ALICE_TG)
    assert mod_app.seen_identities[("telegram", "1001")] == ("Alice", "alice_tg", False)
    ids = await seen(mod_app, MONA)
    assert mod_app.seen_identities[("telegram", "4242")] == ("Mona", "mona_mod", True)
    async with mod_app.uow() as uow:
        assert await players.player_is_moderator(uow.conn, mod_app.settings, ids["mona_mod"])
        assert not await players.player_is_moderator(uow.conn, mod_app.settings, 1)


async def test_the_ledger_stays_clean(mod_app):
    await open_round(mod_app)
    await fund(mod_app, ALICE_TG, 10 * USDC)
    async with mod_app.db.autocommit() as conn:
        assert all(r.ok for r in await ledger.check_invariants(conn))


async def test_a_quote_made_before_the_ban_cannot_be_paid_after_it(mod_app):
    await open_round(mod_app)
    await fund(mod_app, ALICE_TG, 50 * USDC)
    quote = await attempts.quote_attempt(mod_app, ALICE_TG, "quick, before they notice")
    await moderation.ban(mod_app, MONA, "@alice_tg", timedelta(days=1), "ban evasion")
    with pytest.raises(NotPermitted, match="ban evasion"):
        await attempts.confirm_attempt(mod_app, ALICE_TG, quote.id)
    assert (await views.balance(mod_app, ALICE_TG))[0] == 50 * USDC


async def test_the_staked_share_of_supply_counts_active_stakes(app_factory):
    app = await app_factory(
        TOKEN_CIRCULATING_SUPPLY=1_000_000_000
    )  # 1 billion tokens in circulation
    await open_round(app)
    async with app.uow() as uow:
        pid = (await ensure_player(uow.conn, ALICE_TG)).id
        for amount, unstaked in ((20_000_000, None), (5_000_000, None), (70_000_000, "now()")):
            await uow.conn.execute(
                text(
                    "INSERT INTO stakes (player_id, wallet_address, amount, lock_days, started_at, unlocks_at, unstaked_at) "
                    f"VALUES (:p, 'w', CAST(:a AS bigint) * 100000000, 30, now(), now() + interval '30 days', {unstaked or 'NULL'})"
                ),
                {"p": pid, "a": amount},
            )
    s = await stats.round_stats(app, CONSOLE_MOD)
    assert (
        dict(s.measures)["Staked share of supply"] == 250
    )  # 25M of 1B active; the unstaked 70M not counted


async def test_a_demo_games_amounts_say_demo_in_limits_refunds_rounds_and_the_audit(app):
    """Demo credits are never shown as real USDC, on the player's and on the moderator's side."""
    async with app.engine.begin() as conn:
        await conn.execute(text("INSERT INTO game_meta (key, value) VALUES ('demo', 'true')"))
    await open_round(app)
    a = Actor("console", "a", "Player a")
    await fund(app, a, 50 * USDC)
    quote = await attempts.quote_attempt(app, a, "let me in")
    await attempts.confirm_attempt(app, a, quote.id)

    async def say(actor, line: str, **raw) -> str:
        reply = await run_command(app, actor, find(line), raw)
        return "\n".join([reply.text or "", *reply.lines, *(f.value for f in reply.fields)])

    assert "5.00 demo USDC" in await say(a, "limits daily", amount="5")
    assert "Daily limit: 5.00 demo USDC" in await say(a, "limits")
    assert "10.00 demo USDC returned" in await say(
        CONSOLE_MOD, "admin refund", attempt="1", reason="oops"
    )
    assert "base fee 3.00 demo USDC" in await say(
        CONSOLE_MOD, "admin bounty set", field="base_fee", value="3"
    )
    audit = await say(CONSOLE_MOD, "admin audit", player="#" + str((await seen(app, a))["a"]))
    assert (
        "refund by" in audit
        and "10.00 demo USDC" in audit
        and "daily_limit: None -> 5.00 demo USDC" in audit
    )
    assert " USDC" not in audit.replace("demo USDC", "")
