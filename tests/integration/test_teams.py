"""Teams on real PostgreSQL: the whole lifecycle, every bad input answered with nothing changed, the
pool (contributions, team attempts, never overdrawn), the prize split, disbanding, and team chat
never reaching the guardian or another team."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from core import ledger
from core.commands import find, run_command, run_confirmation
from core.errors import InsufficientFunds, InvalidArgument, NotFound, NotPermitted
from core.services import attempts, outbox, teams, views
from core.services.players import ensure_player
from tests.fakes import ScriptedGuardian
from tests.helpers import PASSPHRASE, USDC, fund, open_round, player
from tests.helpers import books_ok as ledger_ok


async def pool_of(app, team_id: int) -> int:
    async with app.uow() as uow:
        return await ledger.balance(
            uow.conn, await app.accounts.get(uow.conn, ledger.TEAM_POOL, team_id)
        )


async def balance(app, actor) -> int:
    return (await views.balance(app, actor))[0]


async def pid(app, actor) -> int:
    async with app.uow() as uow:
        return (await ensure_player(uow.conn, actor)).id


async def snapshot(app) -> dict:
    """Everything a refused team command must leave untouched."""
    async with app.engine.connect() as conn:
        out = {}
        for table in (
            "teams",
            "team_members",
            "team_invitations",
            "team_contributions",
            "entries",
            "outbox",
        ):
            out[table] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
        out["teams_state"] = (
            await conn.execute(
                text(
                    "SELECT json_agg(t ORDER BY id)::text FROM (SELECT id, name, invite_code, captain_player_id, split_mode, "
                    "spend_mode, disbanded_at FROM teams) t"
                )
            )
        ).scalar_one()
        # Accounts holding money: a refused command may still open one of the game's shared accounts at
        # zero (the first payment of a round does), which moves nothing.
        out["balances"] = (
            await conn.execute(
                text(
                    "SELECT json_agg(a ORDER BY id)::text FROM (SELECT id, balance FROM accounts WHERE balance <> 0) a"
                )
            )
        ).scalar_one()
        out["attempts"] = (await conn.execute(text("SELECT count(*) FROM attempts"))).scalar_one()
    return out


async def cmd(app, actor, command: str, /, **raw):
    return await run_command(app, actor, find(command), raw)


A, B, C, D = (player(x) for x in "abcd")


async def test_the_whole_lifecycle(app):
    await open_round(app)
    for p in (A, B, C):
        await fund(app, p, 100 * USDC)
    made = await cmd(app, A, "team create", name="Vault Busters")
    assert made.code and "captain" in made.text
    team = (await teams.info(app, A)).team
    assert not team.private and team.split_mode == "proportional" and team.spend_mode == "members"

    # join by code (any case, with spaces) and, the team being public, by name
    await cmd(
        app, B, "team join", code=team.invite_code.lower()[:4] + " " + team.invite_code.lower()[4:]
    )
    await cmd(app, C, "team join", code="vault  busters")
    info = await teams.info(app, C)
    assert [m.display_name for m in info.members] == ["Player a", "Player b", "Player c"]

    # the pool: contributions per member
    await cmd(app, A, "team fund", amount="30")
    await cmd(app, B, "team fund", amount="10.5")
    assert await pool_of(app, team.id) == 40_500_000
    assert await balance(app, B) == 89_500_000
    info = await teams.info(app, A)
    assert [m.contributed for m in info.members] == [30 * USDC, 10_500_000, 0]

    # a team attempt: paid from the pool, recording who made it
    quote = await cmd(app, C, "team attempt", message="please, for the team")
    assert quote.confirm.token.startswith("teamattempt:") and "team pool" in quote.text
    out = await run_confirmation(app, C, quote.confirm.token, True)
    assert "The guardian refuses" in out.title and "team pool" in out.footer
    assert await pool_of(app, team.id) == 30_500_000 and await balance(app, C) == 100 * USDC
    async with app.engine.connect() as conn:
        row = (await conn.execute(text("SELECT player_id, team_id, fee FROM attempts"))).one()
    assert (row.player_id, row.team_id, row.fee) == (await pid(app, C), team.id, 10 * USDC)

    # captain settings; rotating the code kills the old one
    await cmd(app, A, "team split", mode="equal")
    await cmd(app, A, "team spend", who="captain")
    with pytest.raises(NotPermitted, match="only the captain spends"):
        await cmd(app, B, "team attempt", message="me too")
    old = team.invite_code
    rotated = await cmd(app, A, "team code", action="rotate")
    assert rotated.code != old
    shown = await cmd(app, A, "team code")
    assert shown.code == rotated.code
    with pytest.raises(NotFound, match="rotates"):
        await cmd(app, D, "team join", code=old)

    # invitation: told privately, accepted; it is one-use
    await cmd(app, C, "team leave")
    await cmd(app, A, "team invite", player=f"#{await pid(app, D)}")
    async with app.engine.connect() as conn:
        notice = (
            await conn.execute(
                text(
                    "SELECT payload FROM outbox WHERE topic = 'notice' AND payload->>'external_id' = 'pd'"
                )
            )
        ).scalar_one()
    assert "invites you to join team Vault Busters" in notice["body"]
    await cmd(app, D, "team accept")
    with pytest.raises(NotFound, match="no open team invitation"):
        await cmd(app, D, "team accept")
    # contributions stay on leaving
    assert await pool_of(app, team.id) == 30_500_000

    # kick, captain hand-over, captain leaving hands over to the longest-standing member
    await cmd(app, A, "team kick", player=f"#{await pid(app, D)}")
    assert [m.display_name for m in (await teams.info(app, A)).members] == ["Player a", "Player b"]
    await cmd(app, C, "team join", code=rotated.code)
    await cmd(app, A, "team captain", player=f"#{await pid(app, C)}")
    assert (await teams.info(app, A)).captain_name == "Player c"
    left = await cmd(app, C, "team leave")
    assert "Player a, the longest-standing member, is its captain now" in left.text
    assert (await teams.info(app, B)).captain_name == "Player a"

    # disband (confirmed): the pool goes back to the members by contribution, nothing is lost
    ask = await cmd(app, A, "team disband")
    done = await run_confirmation(app, A, ask.confirm.token, True)
    assert "disbanded" in done.title
    # A contributed 30, B 10.5 of the 30.5 left: 30.5 * 30/40.5 and 30.5 * 10.5/40.5, to the unit
    assert await pool_of(app, team.id) == 0
    assert await balance(app, A) == 70 * USDC + 22_592_593
    assert await balance(app, B) == 89_500_000 + 7_907_407
    with pytest.raises(NotFound, match="not in a team"):
        await teams.info(app, A)
    # the name is free again
    await cmd(app, B, "team create", name="vault busters")
    await ledger_ok(app)


async def test_a_captain_alone_leaving_disbands_and_gets_the_pool_back(app):
    await fund(app, A, 20 * USDC)
    await cmd(app, A, "team create", name="Solo")
    await cmd(app, A, "team fund", amount="5")
    out = await cmd(app, A, "team leave")
    assert "disbanded" in out.text and "5.00 USDC" in out.text
    assert await balance(app, A) == 20 * USDC
    await ledger_ok(app)


BAD_NAMES = [
    ("", "`name` is missing"),
    ("ab", "3 to 32"),
    ("x" * 33, "3 to 32"),
    ("@everyone team", "letters, digits"),
    ("<@123> crew", "letters, digits"),
    ("**bold**", "letters, digits"),
    ("team_one", "letters, digits"),
    ("http://evil.example", "letters, digits"),
    ("#general", "letters, digits"),
]


@pytest.mark.parametrize(("name", "needle"), BAD_NAMES)
async def test_bad_team_names_are_refused_and_change_nothing(app, name, needle):
    before = await snapshot(app)
    with pytest.raises(InvalidArgument, match=needle):
        await cmd(app, A, "team create", name=name)
    assert await snapshot(app) == before


async def test_every_bad_input_is_answered_and_changes_nothing(app):
    await open_round(app)
    for p in (A, B, C, D):
        await fund(app, p, 20 * USDC)
    await cmd(app, A, "team create", name="Alpha")
    await cmd(app, C, "team create", name="Gamma private")
    alpha = (await teams.info(app, A)).team
    gamma = (await teams.info(app, C)).team
    assert gamma.private and gamma.name == "Gamma"
    await cmd(app, B, "team join", code=alpha.invite_code)

    cases = [
        (D, "team create", {"name": "ALPHA"}, InvalidArgument, "exists already"),
        (A, "team create", {"name": "Second"}, NotPermitted, "one team at a time"),
        (D, "team join", {"code": "NOPE2345"}, NotFound, "No team has that"),
        (D, "team join", {"code": "gamma"}, NotPermitted, "private"),
        (A, "team join", {"code": gamma.invite_code}, NotPermitted, "one team at a time"),
        (A, "team join", {"code": alpha.invite_code}, InvalidArgument, "already in Alpha"),
        (B, "team kick", {"player": "#1"}, NotPermitted, "Only the captain"),
        (B, "team captain", {"player": "#1"}, NotPermitted, "Only the captain"),
        (B, "team split", {"mode": "equal"}, NotPermitted, "Only the captain"),
        (B, "team spend", {"who": "captain"}, NotPermitted, "Only the captain"),
        (B, "team code", {}, NotPermitted, "Only the captain"),
        (B, "team code", {"action": "rotate"}, NotPermitted, "Only the captain"),
        (B, "team disband", {}, NotPermitted, "Only the captain"),
        (A, "team split", {"mode": "random"}, InvalidArgument, "must be one of"),
        (A, "team kick", {"player": "#99999"}, NotFound, "No player"),
        (A, "team kick", {"player": f"#{await pid(app, C)}"}, NotFound, "not in Alpha"),
        (A, "team kick", {"player": f"#{await pid(app, A)}"}, InvalidArgument, "That is you"),
        (A, "team invite", {"player": f"#{await pid(app, C)}"}, NotPermitted, "in another team"),
        (
            A,
            "team invite",
            {"player": f"#{await pid(app, B)}"},
            InvalidArgument,
            "already in Alpha",
        ),
        (D, "team fund", {"amount": "5"}, NotFound, "not in a team"),
        (D, "team attempt", {"message": "hi"}, NotFound, "not in a team"),
        (B, "team fund", {"amount": "20.000001"}, InsufficientFunds, "cannot put"),
        (B, "team fund", {"amount": "0"}, InvalidArgument, "more than zero"),
        (B, "team fund", {"amount": "-3"}, InvalidArgument, "positive"),
        (B, "team fund", {"amount": "1.0000001"}, InvalidArgument, "at most 6 decimals"),
        (B, "team fund", {"amount": "lots"}, InvalidArgument, "not an amount"),
        (B, "team attempt", {"message": "  "}, InvalidArgument, "missing"),
        (B, "team attempt", {"message": "costly"}, InsufficientFunds, "team pool holds"),
        (D, "team accept", {}, NotFound, "no open team invitation"),
        (D, "team chat", {"text": "hi"}, NotFound, "not in a team"),
        (A, "team link", {}, InvalidArgument, "Telegram group"),
    ]
    for actor, name, raw, error, needle in cases:
        before = await snapshot(app)
        with pytest.raises(error, match=needle):
            await cmd(app, actor, name, **raw)
        assert await snapshot(app) == before, (name, raw)


async def test_a_full_team_and_a_second_team_are_refused(app_factory):
    app = await app_factory(TEAM_MAX_MEMBERS=3)
    await cmd(app, A, "team create", name="Trio")
    code = (await teams.info(app, A)).team.invite_code
    await cmd(app, B, "team join", code=code)
    await cmd(app, C, "team join", code=code)
    before = await snapshot(app)
    with pytest.raises(NotPermitted, match="full: a team has at most 3"):
        await cmd(app, D, "team join", code=code)
    with pytest.raises(NotPermitted, match="full"):
        await cmd(app, A, "team invite", player=f"#{await pid(app, D)}")
    assert await snapshot(app) == before


async def test_invitations_expire_after_seven_days(app):
    await cmd(app, A, "team create", name="Slowpokes")
    await cmd(app, A, "team invite", player=f"#{await pid(app, B)}")
    real = app.clock
    app.clock = lambda: real() + timedelta(days=7, minutes=1)
    before = await snapshot(app)
    with pytest.raises(NotFound, match="expired"):
        await cmd(app, B, "team accept")
    assert await snapshot(app) == before
    app.clock = lambda: real() + timedelta(days=6, hours=23)
    await cmd(app, B, "team accept")
    assert len((await teams.info(app, B)).members) == 2


async def test_two_players_racing_for_the_last_place_one_wins(app_factory):
    import asyncio

    app = await app_factory(TEAM_MAX_MEMBERS=2)
    await cmd(app, A, "team create", name="Duo")
    code = (await teams.info(app, A)).team.invite_code
    results = await asyncio.gather(
        *(cmd(app, p, "team join", code=code) for p in (B, C, D)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, NotPermitted) for r in results if isinstance(r, Exception))
    assert len((await teams.info(app, A)).members) == 2


async def test_a_team_win_is_split_among_the_members_at_the_time_of_the_win(app_factory):
    app = await app_factory(guardian=ScriptedGuardian("reject", "approve"))
    await open_round(app, seed=100 * USDC)
    for p in (A, B, C, D):
        await fund(app, p, 100 * USDC)
    await cmd(app, A, "team create", name="Winners")
    code = (await teams.info(app, A)).team.invite_code
    for p in (B, C, D):
        await cmd(app, p, "team join", code=code)
    await cmd(app, A, "team fund", amount="30")
    await cmd(app, B, "team fund", amount="10")
    await cmd(app, D, "team fund", amount="3")
    q = await cmd(app, C, "team attempt", message="first")
    await run_confirmation(app, C, q.confirm.token, True)
    # D leaves with their share of what is left (33 of the 43 contributed), and wins nothing
    await cmd(app, D, "team leave")
    q = await cmd(app, B, "team attempt", message="second")
    won = await run_confirmation(app, B, q.confirm.token, True)
    assert won.tone == "success" and "split among the members" in won.text
    async with app.engine.connect() as conn:
        bounty_id = (await conn.execute(text("SELECT id FROM bounties"))).scalar_one()
        prize = (
            await conn.execute(
                text(
                    "SELECT SUM(e.amount) FROM entries e JOIN transfers t ON t.id = e.transfer_id "
                    "WHERE t.idempotency_key = :k AND e.amount > 0"
                ),
                {"k": f"win:{bounty_id}"},
            )
        ).scalar_one()
        notices = (
            await conn.execute(
                text(
                    "SELECT payload->>'external_id' AS who, payload->>'body' AS body FROM outbox WHERE topic = 'notice' "
                    "AND payload->>'title' LIKE 'Team Winners won%' ORDER BY id"
                )
            )
        ).all()
    assert prize == 100 * USDC + 7 * USDC + 7_054_600  # seed + 70 % of the two fees
    # proportional: A 30, B 10, C 0 -> 3/4 and 1/4 of the prize; D left, gets nothing
    a_share, b_share = prize * 3 // 4, prize - prize * 3 // 4
    assert await balance(app, A) == 70 * USDC + a_share
    assert await balance(app, B) == 90 * USDC + b_share
    assert await balance(app, C) == 100 * USDC
    assert await balance(app, D) == 97 * USDC + 33 * USDC * 3 // 43
    assert [n.who for n in notices] == ["pa", "pb", "pc"]
    assert "your share is 0.00 USDC" in notices[2].body and "in proportion" in notices[0].body
    await ledger_ok(app)


async def test_an_equal_split_and_the_team_win_announcement(app_factory):
    app = await app_factory()
    await open_round(app, seed=10 * USDC + 3)
    for p in (A, B, C):
        await fund(app, p, 100 * USDC)
    await cmd(app, A, "team create", name="Equals")
    code = (await teams.info(app, A)).team.invite_code
    await cmd(app, B, "team join", code=code)
    await cmd(app, C, "team join", code=code)
    await cmd(app, A, "team fund", amount="50")
    await cmd(app, A, "team split", mode="equal")
    q = await cmd(app, B, "team attempt", message=f"the team says {PASSPHRASE}")
    await run_confirmation(app, B, q.confirm.token, True)
    prize = 10 * USDC + 3 + 7 * USDC
    share, extra = divmod(prize, 3)
    # ties by earliest join: the leftover unit goes to the captain, the longest-standing member
    assert extra == 2
    assert await balance(app, A) == 50 * USDC + share + 1
    assert await balance(app, B) == 100 * USDC + share + 1
    assert await balance(app, C) == 100 * USDC + share
    async with app.engine.connect() as conn:
        title = (
            await conn.execute(text("SELECT title FROM announcements WHERE kind = 'round_won'"))
        ).scalar_one()
    assert title == "Team Equals won round Test!"
    await ledger_ok(app)


async def test_a_kicked_member_cannot_pay_a_team_quote_made_before(app):
    await open_round(app)
    await fund(app, A, 50 * USDC)
    await cmd(app, A, "team create", name="Strict")
    await cmd(app, B, "team join", code=(await teams.info(app, A)).team.invite_code)
    await cmd(app, A, "team fund", amount="50")
    q = await cmd(app, B, "team attempt", message="before the kick")
    await cmd(app, A, "team kick", player=f"#{await pid(app, B)}")
    with pytest.raises(NotFound, match="not in a team"):
        await run_confirmation(app, B, q.confirm.token, True)
    assert await pool_of(app, (await teams.info(app, A)).team.id) == 50 * USDC


async def test_disbanding_waits_for_a_pending_team_attempt(app):
    await open_round(app)
    await fund(app, A, 50 * USDC)
    await cmd(app, A, "team create", name="Waiters")
    team_id = (await teams.info(app, A)).team.id
    await cmd(app, A, "team fund", amount="20")
    async with app.uow() as uow:  # an attempt paid, its answer not in yet
        pool = await app.accounts.get(uow.conn, ledger.TEAM_POOL, team_id)
    q = await attempts.quote_attempt(app, A, "pending", payer=attempts.Payer(pool, team_id))
    await attempts.pay(app, A, q.id, via_team=True)
    before = await snapshot(app)
    with pytest.raises(NotPermitted, match="waiting for the guardian"):
        await teams.disband(app, A)
    assert await snapshot(app) == before


CONCURRENT, AFFORDABLE = 100, 37


async def test_100_concurrent_team_attempts_on_a_pool_for_37(app_factory):
    """The pool holds exactly 37 fees: exactly 37 attempts are charged, the other 63 refused,
    the pool ends at zero, and the ledger sums to zero."""
    import asyncio

    app = await app_factory(TEAM_MAX_MEMBERS=CONCURRENT, guardian=ScriptedGuardian())
    from core.services import admin
    from tests.helpers import CONSOLE_MOD

    await admin.new_bounty(
        app,
        CONSOLE_MOD,
        name="Flat",
        prompt="Never.",
        seed=0,
        base_fee=10 * USDC,
        growth_bps=0,
        fee_cap=10 * USDC,
    )
    crowd = [player(f"t{i}") for i in range(CONCURRENT)]
    await cmd(app, crowd[0], "team create", name="Hundred")
    team = (await teams.info(app, crowd[0])).team
    for p in crowd[1:]:
        await cmd(app, p, "team join", code=team.invite_code)
    for p in crowd[:AFFORDABLE]:
        await fund(app, p, 10 * USDC)
        await cmd(app, p, "team fund", amount="10")
    assert await pool_of(app, team.id) == AFFORDABLE * 10 * USDC
    # every member is quoted while the pool still looks full, then all confirm at once
    quotes = [
        await cmd(app, p, "team attempt", message=f"all together {i}") for i, p in enumerate(crowd)
    ]
    outcomes = await asyncio.gather(
        *(
            run_confirmation(app, p, q.confirm.token, True)
            for p, q in zip(crowd, quotes, strict=True)
        ),
        return_exceptions=True,
    )
    charged = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(charged) == AFFORDABLE and all("guardian refuses" in o.title for o in charged)
    assert len(refused) == CONCURRENT - AFFORDABLE
    assert all(isinstance(e, InsufficientFunds) and "team pool" in e.message for e in refused), (
        refused[:3]
    )
    assert await pool_of(app, team.id) == 0
    async with app.engine.connect() as conn:
        paid = (
            await conn.execute(
                text("SELECT count(*), sum(fee) FROM attempts WHERE team_id = :t"), {"t": team.id}
            )
        ).one()
        total = (
            await conn.execute(text("SELECT COALESCE(SUM(amount), 0) FROM entries"))
        ).scalar_one()
        negative = (
            await conn.execute(text("SELECT count(*) FROM accounts WHERE guarded AND balance < 0"))
        ).scalar_one()
    assert (paid[0], paid[1]) == (AFFORDABLE, AFFORDABLE * 10 * USDC)
    assert total == 0 and negative == 0
    print(
        f"\nteam pool: {CONCURRENT} concurrent team attempts, money for {AFFORDABLE}: charged {len(charged)}, "
        f"refused {len(refused)} (InsufficientFunds), pool left {await pool_of(app, team.id)}, ledger sum {total}"
    )
    await ledger_ok(app)


async def test_team_chat_never_reaches_the_guardian_nor_another_team(app_factory):
    guardian = ScriptedGuardian()
    app = await app_factory(guardian=guardian)
    await open_round(app)
    await fund(app, A, 50 * USDC)
    await cmd(app, A, "team create", name="Red")
    await cmd(app, C, "team create", name="Blue")
    red = (await teams.info(app, A)).team
    blue = (await teams.info(app, C)).team
    await cmd(app, B, "team join", code=red.invite_code)
    for team, chat in ((red, "-100111"), (blue, "-100222")):
        await teams.record_chat(app, team.id, "telegram", chat, "group")
        await teams.record_chat(app, team.id, "discord", chat.replace("-", "9"), "channel")
    secret = "our plan: pretend to be the auditor ZXQV"
    await cmd(app, B, "team chat", text=secret)
    await teams.record_message(app, "telegram", "-100111", "5", B, "second part of the plan ZXQV")
    # the guardian hears attempts only, even the team's own
    q = await cmd(app, A, "team fund", amount="20")
    q = await cmd(app, A, "team attempt", message="hello guardian")
    await run_confirmation(app, A, q.confirm.token, True)
    q = await attempts.quote_attempt(app, A, "and my own attempt")
    await attempts.confirm_attempt(app, A, q.id)
    seen = " ".join(
        [
            r.message + " " + " ".join(t.text for t in r.history) + r.system_prompt
            for r in guardian.requests
        ]
    )
    assert len(guardian.requests) == 2 and "ZXQV" not in seen
    # relays went only to Red's chats, never to Blue's
    async with app.engine.connect() as conn:
        relays = (
            await conn.execute(
                text(
                    "SELECT o.channel, m.team_id FROM outbox o JOIN team_messages m ON m.id = CAST(o.payload->>'message_id' AS bigint) "
                    "WHERE o.topic = 'relay' ORDER BY o.id"
                )
            )
        ).all()
    assert [(r.channel, r.team_id) for r in relays] == [
        ("discord", red.id),
        ("telegram", red.id),
        ("discord", red.id),
    ]
    view = await teams.relay_view(app, 1, "discord")
    assert view.chat.chat_id == "9100111"


async def test_messages_are_recorded_once_and_edits_and_replies_map(app):
    await cmd(app, A, "team create", name="Echo")
    team = (await teams.info(app, A)).team
    await teams.record_chat(app, team.id, "telegram", "-1001", "group")
    await teams.record_chat(app, team.id, "discord", "555", "channel")
    first = await teams.record_message(app, "telegram", "-1001", "10", A, "hello")
    assert (
        await teams.record_message(app, "telegram", "-1001", "10", A, "hello") is None
    )  # redelivered
    assert await teams.record_message(app, "telegram", "-999", "11", A, "not a team chat") is None
    view = await teams.relay_view(app, first, "discord")
    assert (view.copy_id, view.version, view.label) == (None, 1, "Telegram")
    await teams.record_copy(app, first, "discord", "555", "9001", 1)
    # a reply on Discord to the relayed copy finds the Telegram original
    second = await teams.record_message(app, "discord", "555", "9002", A, "answer", reply_to="9001")
    view = await teams.relay_view(app, second, "telegram")
    assert (
        view.reply_author == "Player a"
        and view.reply_body == "hello"
        and view.reply_copy_id == "10"
    )
    # an edit where it was written moves the version; an edit of nothing new does nothing
    assert await teams.record_edit(app, "telegram", "-1001", "10", "hello, edited")
    assert not await teams.record_edit(app, "telegram", "-1001", "10", "hello, edited")
    assert not await teams.record_edit(
        app, "discord", "555", "9001", "the bot's copy is not an original"
    )
    view = await teams.relay_view(app, first, "discord")
    assert (view.body, view.version, view.copy_version) == ("hello, edited", 2, 1)
    async with app.engine.connect() as conn:
        keys = (
            (
                await conn.execute(
                    text("SELECT dedupe_key FROM outbox WHERE topic = 'relay' ORDER BY id")
                )
            )
            .scalars()
            .all()
        )
    assert keys == [
        f"relay:{first}:discord:1",
        f"relay:{second}:telegram:1",
        f"relay:{first}:discord:2",
    ]


async def test_team_events_are_queued_for_the_bots(app):
    await cmd(app, A, "team create", name="Signals")
    team = (await teams.info(app, A)).team
    await cmd(app, B, "team join", code=team.invite_code)
    await teams.record_chat(app, team.id, "telegram", "-77", "group")
    await cmd(app, A, "team kick", player=f"#{await pid(app, B)}")
    async with app.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT channel, payload FROM outbox WHERE topic = :t ORDER BY id"),
                {"t": teams.SYNC},
            )
        ).all()
    events = [(r.channel, r.payload["event"]) for r in rows]
    assert events == [
        ("discord", "created"),
        ("discord", "joined"),
        ("discord", "kicked"),
        ("telegram", "kicked"),
    ]
    assert rows[-1].payload["players"] == [await pid(app, B)] and rows[-1].payload["accounts"] == {}
    items = await outbox.claim(app, "telegram", worker="t", topics=[teams.SYNC])
    assert [i.payload["players"] for i in items] == [[await pid(app, B)]]


async def test_banned_players_are_refused_team_commands_that_change_things(app):
    await cmd(app, A, "team create", name="Outlaws")
    await fund(app, A, 5 * USDC)
    async with app.engine.begin() as conn:
        await conn.execute(
            text("UPDATE players SET banned_until = now() + interval '1 day', ban_reason = 'spam'")
        )
    before = await snapshot(app)
    for name, raw in (
        ("team fund", {"amount": "1"}),
        ("team leave", {}),
        ("team create", {"name": "Other"}),
    ):
        with pytest.raises(NotPermitted, match="banned"):
            await cmd(app, A, name, **raw)
    assert await snapshot(app) == before
    assert (await cmd(app, A, "team info")).title == "Team Outlaws"  # read-only still answers


async def test_help_lists_every_team_command_on_every_platform(app):
    names = [c.name for c in teams_commands()]
    assert len(names) == 16
    for platform in ("discord", "telegram", "console"):
        shown = "\n".join((await cmd(app, player("h", platform), "help")).lines)
        for name in names:
            assert f"/{name}" in shown, (platform, name)


def teams_commands():
    from core.commands import teams as team_commands

    return team_commands.COMMANDS


async def test_stats_count_active_players_in_teams_and_a_team_place_stops_a_link(app):
    from core.services import identity, stats
    from tests.helpers import CONSOLE_MOD

    await open_round(app)
    for actor in (A, B, C):
        await fund(app, actor, 50 * USDC)
        quote = await attempts.quote_attempt(app, actor, f"{actor.external_id} tries")
        await attempts.confirm_attempt(app, actor, quote.id)
    await cmd(app, A, "team create", name="Crew")
    s = await stats.round_stats(app, CONSOLE_MOD)
    assert dict(s.measures)["Active players in teams"] == 3_333  # one of the three players, in bps
    async with app.uow() as uow:
        assert await identity.has_state(uow.conn, await pid(app, D)) == []
        reasons = await identity.has_state(uow.conn, await pid(app, A))
    assert (
        "a place in team Crew" in reasons
    )  # so /link refuses to join A with another player that has state


async def test_a_team_quote_is_never_paid_through_the_plain_attempt_button(app):
    """Only the team's own confirmation (which checks membership and who may spend) pays a team quote."""
    from core.errors import NotPermitted as Refused

    await open_round(app)
    await fund(app, A, 50 * USDC)
    await cmd(app, A, "team create", name="Crafty")
    await cmd(app, A, "team fund", amount="20")
    quote = await cmd(app, A, "team attempt", message="open up")
    ref = quote.confirm.token.partition(":")[2]
    before = await snapshot(app)
    with pytest.raises(Refused, match="own button"):
        await run_confirmation(app, A, f"attempt:{ref}", True)
    assert await snapshot(app) == before
    assert "refuses" in (await run_confirmation(app, A, quote.confirm.token, True)).title


async def test_a_demo_games_team_money_is_labelled_demo(app):
    """Demo credits are never shown as real USDC: funding, refusals, leaving and disbanding say demo."""
    await open_round(app)
    async with app.engine.begin() as conn:
        await conn.execute(text("INSERT INTO game_meta (key, value) VALUES ('demo', 'true')"))
    await fund(app, A, 30 * USDC)
    await cmd(app, A, "team create", name="Owls")
    funded = await cmd(app, A, "team fund", amount="20")
    assert "20.00 demo USDC" in funded.text and all("demo USDC" in f.value for f in funded.fields)
    with pytest.raises(InsufficientFunds, match="demo USDC; you cannot put 500.00 demo USDC"):
        await cmd(app, A, "team fund", amount="500")
    asked = await cmd(app, A, "team disband")
    assert "You leave the team and the pool of 20.00 demo USDC comes back to you." == asked.text
    left = await cmd(app, A, "team leave")
    assert "20.00 demo USDC from its pool is back in your balance." in left.text


def test_only_attempt_confirmations_say_the_guardian_is_thinking():
    from core.commands import waiting_note

    assert (
        waiting_note("attempt:abc", True)
        == waiting_note("teamattempt:abc", True)
        == "Sent. The guardian is thinking…"
    )
    assert (
        waiting_note("teamdisband:3", True)
        == waiting_note("attempt:abc", False)
        == "Working on it…"
    )


async def test_an_old_disband_question_does_not_disband_a_changed_team_or_after_it_expired(app):
    """The attack: a captain's old "Disband?" message (answered later, or pressed by someone the
    captain's device was lent to) must not disband a team whose members or pool changed since it
    was asked; a question left alone expires."""
    from core.errors import ConfirmationExpired

    for p in (A, B):
        await fund(app, p, 50 * USDC)
    await cmd(app, A, "team create", name="Stale")
    await teams.fund(app, A, 5 * USDC)
    old = await cmd(app, A, "team disband")
    assert "pool of 5.00 USDC comes back to you" in old.text
    code = (await teams.info(app, A)).team.invite_code
    await cmd(app, B, "team join", code=code)
    await teams.fund(app, B, 20 * USDC)  # the team changed: two members, 25.00 in the pool

    again = await run_confirmation(app, A, old.confirm.token, True)
    assert again.title == "The team changed since you were asked" and again.confirm is not None
    assert "The 2 members leave the team and the pool of 25.00 USDC" in again.text
    assert len((await teams.info(app, B)).members) == 2  # nothing disbanded

    with pytest.raises(NotPermitted, match="not for you"):
        await run_confirmation(app, B, again.confirm.token, True)
    real = app.clock
    app.clock = lambda: real() + timedelta(minutes=11)
    with pytest.raises(ConfirmationExpired, match="expired"):
        await run_confirmation(app, A, again.confirm.token, True)
    app.clock = real
    assert len((await teams.info(app, B)).members) == 2

    fresh = await cmd(app, A, "team disband")
    done = await run_confirmation(app, A, fresh.confirm.token, True)
    assert "disbanded" in done.title
    assert [await balance(app, p) for p in (A, B)] == [50 * USDC, 50 * USDC]
    await ledger_ok(app)
