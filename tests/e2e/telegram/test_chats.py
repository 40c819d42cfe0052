"""Groups and private chats: commands for other bots, private answers asked for in a group, deep
links, escaping of everything a player typed, and update kinds the bot does not handle."""

from __future__ import annotations

from core.services import views
from tests.e2e.telegram.conftest import ALICE, BOB, CAROL, GROUP_ID, actor
from tests.helpers import USDC, fund, open_round


async def test_a_command_for_another_bot_is_ignored(start_bot, tg):
    run = await start_bot()
    await open_round(run.app)
    await fund(run.app, actor(ALICE), 50 * USDC)
    group = tg.group(GROUP_ID)
    tg.start_private(ALICE)
    for text in (
        "/attempt@OtherBot give me the money",
        "/bounty@OtherBot",
        "/start@OtherBot bounty",
    ):
        update = await run.say(ALICE, group, text)
        assert run.bot.tracker.outcomes(update["update_id"]) == ["done"]
    assert not tg.messages_to(GROUP_ID) and not tg.messages_to(ALICE["id"])
    await run.say(ALICE, group, "/bounty@bountytestbot")  # addressed to us (any case): answered
    assert "Round #1: Test" in run.last(GROUP_ID)["text"]


async def test_a_private_answer_asked_in_a_group_goes_to_the_private_chat(start_bot, tg):
    run = await start_bot()
    await fund(run.app, actor(ALICE), 42 * USDC)
    tg.start_private(ALICE)
    group = tg.group(GROUP_ID)
    await run.say(ALICE, group, "/balance")
    assert "Balance: 42.00 USDC" in run.last(ALICE["id"])["text"]
    note = run.last(GROUP_ID)
    assert "private chat" in note["text"] and "42.00" not in note["text"]


async def test_a_player_who_never_opened_a_private_chat_is_told_how_in_the_group(start_bot, tg):
    run = await start_bot()
    await fund(run.app, actor(CAROL), 7 * USDC)
    group = tg.group(GROUP_ID)
    await run.say(CAROL, group, "/balance")
    refused = [c for c in tg.calls_to("sendMessage") if c.params["chat_id"] == CAROL["id"]]
    assert [c.status for c in refused] == [403]  # Telegram refused: she never pressed Start
    notice = run.last(GROUP_ID)
    assert (
        "Carol" in notice["text"]
        and "private chat" in notice["text"]
        and "7.00" not in notice["text"]
    )
    assert tg.buttons(notice) == [
        ("Open a private chat", "https://t.me/BountyTestBot?start=balance")
    ]

    # The button's deep link: she presses Start, Telegram sends /start balance, she gets her answer.
    await run.say(CAROL, tg.private_chat(CAROL), "/start balance")
    assert "Balance: 7.00 USDC" in run.last(CAROL["id"])["text"]


async def test_deep_links(start_bot, tg):
    run = await start_bot()
    await open_round(run.app, name="Vault")
    chat = tg.private_chat(BOB)

    async def start(payload: str) -> str:
        await run.say(BOB, chat, f"/start {payload}".strip())
        return run.last(BOB["id"])["text"]

    welcome = await start("")
    assert "Welcome to Billions Bounty" in welcome and "/help" in welcome
    assert "Round #1: Vault" in await start("bounty")
    assert "Round #1: Vault" in await start("bounty_status")
    assert "Attempt log" in await start("bounty_log")
    assert "Billions Bounty commands" in await start("help")
    assert "malformed" in await start("bad!payload")
    assert "malformed" in await start("x" * 65)
    assert "does not open anything" in await start("nosuchthing")
    assert "does not open anything" in await start("admin_pause")  # never a moderator action
    assert "does not open anything" in await start("attempt")  # needs an argument


async def test_deep_link_kinds_plug_in(start_bot, tg):
    from bots.telegram import DeepLinks
    from core.commands import Reply

    links = DeepLinks()

    async def join(app, who, code):
        return Reply(title="Join", text=f"{who.display_name} would join with {code}")

    links.register("join", join)
    run = await start_bot(bot_options={"deep_links": links})
    await run.say(ALICE, tg.private_chat(ALICE), "/start join-AB12cd")
    assert run.last(ALICE["id"])["text"] == "Join\n\nAlice would join with AB12cd"


async def test_what_players_type_is_escaped(start_bot, tg):
    shady = tg.user(1666, "<script>alert(1)</script>", username="shady")
    run = await start_bot()
    await open_round(run.app)
    await fund(run.app, actor(shady), 50 * USDC)
    chat = tg.private_chat(shady)
    await run.say(shady, chat, "/attempt <b>x</b> & <i>open</i> the vault")
    ask = run.last(shady["id"])
    await run.press(shady, ask, tg.buttons(ask)[0][1])

    await run.say(shady, chat, "/history")
    call = tg.calls_to("sendMessage")[-1]
    assert (
        call.ok and call.params["parse_mode"] == "HTML"
    )  # the stand-in parses HTML as Telegram does
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &lt;i&gt;open&lt;/i&gt;" in call.params["text"]
    assert "<b>x</b> & <i>open</i> the vault" in run.last(shady["id"])["text"]  # shown literally

    await run.say(BOB, tg.group(GROUP_ID), "/leaderboard")
    board = tg.calls_to("sendMessage")[-1]
    assert board.ok and "&lt;script&gt;alert(1)&lt;/script&gt;" in board.params["text"]
    assert "<script>alert(1)</script>: 1 attempts" in run.last(GROUP_ID)["text"]


async def test_other_update_kinds_are_ignored_safely(start_bot, tg):
    run = await start_bot()
    await open_round(run.app)
    await fund(run.app, actor(ALICE), 50 * USDC)
    group = tg.group(GROUP_ID)
    chat = tg.private_chat(ALICE)
    sent = tg.push_command(ALICE, chat, "/bounty")
    await run.handled(sent)
    before = len(tg.messages_to(ALICE["id"]))
    edited = {**sent["message"], "text": "/attempt open sesame", "edit_date": 1}
    updates = [
        tg.push("edited_message", edited),
        tg.push_message(
            ALICE,
            chat,
            sticker={
                "file_id": "s1",
                "file_unique_id": "s1",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
        ),
        tg.push_message(
            ALICE, group, photo=[{"file_id": "p1", "file_unique_id": "p1", "width": 1, "height": 1}]
        ),
        tg.push_message(ALICE, group, text="just chatting, no command"),
        tg.push(
            "channel_post",
            {
                "message_id": 1,
                "date": 1,
                "text": "/bounty",
                "chat": {"id": -100_777, "type": "channel", "title": "News"},
            },
        ),
        tg.push(
            "my_chat_member",
            {
                "chat": group,
                "from": ALICE,
                "date": 1,
                "old_chat_member": {"status": "left", "user": tg.bot_user},
                "new_chat_member": {"status": "member", "user": tg.bot_user},
            },
        ),
        tg.push_message(
            tg.user(1087968824, "Group", username="GroupAnonymousBot", is_bot=True),
            group,
            text="/bounty",
            entities=[{"type": "bot_command", "offset": 0, "length": 7}],
        ),
    ]
    for update in updates:
        assert await run.handled(update) == ["done"]
    assert len(tg.messages_to(ALICE["id"])) == before and not tg.messages_to(GROUP_ID)
    assert (
        not tg.calls_to("editMessageText")
        and (await views.balance(run.app, actor(ALICE)))[0] == 50 * USDC
    )

    await run.say(ALICE, chat, "hello there")  # plain text in private: a pointer to the commands
    assert "/help" in run.last(ALICE["id"])["text"]
