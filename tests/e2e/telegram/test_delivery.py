"""Delivery under Telegram's conditions: replayed updates, presses by the wrong person, 429s, a
blocked bot or a vanished chat after payment, long replies, text to copy and images, broadcasts,
webhooks, shutdown."""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
import pytest

from bots.telegram import run_telegram
from bots.telegram.pacing import ChatPacer
from bots.telegram.render import render
from core.commands import COMMANDS, Attachment, Command, Reply
from core.services import views
from tests.e2e.telegram.conftest import ALICE, BOB, GROUP_ID, TOKEN, actor
from tests.helpers import USDC, fund, open_round, tiny_png


async def balance(app, user) -> int:
    return (await views.balance(app, actor(user)))[0]


async def quote(run, user, text: str = "open up") -> dict:
    await run.say(user, run.tg.private_chat(user), f"/attempt {text}")
    return run.last(user["id"])


async def test_a_replayed_update_charges_once(start_bot, tg):
    run = await start_bot()
    await open_round(run.app)
    await fund(run.app, actor(ALICE), 50 * USDC)

    command = tg.push_command(ALICE, tg.private_chat(ALICE), "/attempt let me in")
    tg.replay(command)
    assert sorted(await run.handled(command, count=2)) == ["done", "duplicate"]
    quotes = tg.messages_to(ALICE["id"])
    assert len(quotes) == 1  # one quote, not two
    pay = tg.buttons(quotes[0])[0][1]

    press = tg.press(ALICE, quotes[0], pay)
    await run.handled(press)
    tg.replay(press)  # the same update id again
    assert sorted(await run.handled(press, count=2)) == ["done", "duplicate"]
    assert await balance(run.app, ALICE) == 40 * USDC

    # A double click is a new update with the same button: the presser is told, nothing charged,
    # and the message keeps its answer.
    mark = tg.mark()
    await run.press(ALICE, quotes[0], pay)
    (answer,) = tg.calls_to("answerCallbackQuery", after=mark)
    assert "Already paid" in answer.params["text"]
    assert "The guardian refuses" in run.last(ALICE["id"])["text"]
    assert await balance(run.app, ALICE) == 40 * USDC
    history = await views.history(run.app, actor(ALICE))
    assert [h.status for h in history] == ["rejected"]


async def test_a_button_pressed_by_someone_else(start_bot, tg):
    run = await start_bot()
    await open_round(run.app)
    for user in (ALICE, BOB):
        await fund(run.app, actor(user), 50 * USDC)
    ask = await quote(run, ALICE)
    pay = tg.buttons(ask)[0][1]

    mark = tg.mark()
    await run.press(BOB, ask, pay)
    (answer,) = tg.calls_to("answerCallbackQuery", after=mark)
    assert (
        answer.params["show_alert"] is True
        and answer.params["text"] == "This button is not for you."
    )
    assert not tg.calls_to("editMessageText", after=mark)
    assert tg.buttons(run.last(ALICE["id"]))  # Alice's keyboard is still there
    assert await balance(run.app, ALICE) == 50 * USDC and await balance(run.app, BOB) == 50 * USDC

    await run.press(ALICE, ask, pay)
    assert "The guardian refuses" in run.last(ALICE["id"])["text"]


async def test_a_429_is_retried_and_delivered(start_bot, tg):
    run = await start_bot()
    await open_round(run.app)
    chat = tg.private_chat(ALICE)
    tg.fail_next("sendMessage", 429, retry_after=1)
    await run.say(ALICE, chat, "/bounty")
    assert [c.status for c in tg.calls_to("sendMessage")] == [429, 200]
    assert "Round #1: Test" in run.last(ALICE["id"])["text"]


async def test_bot_api_refusals_after_payment_never_lose_the_outcome(start_bot, tg):
    run = await start_bot()
    await open_round(run.app)
    await fund(run.app, actor(ALICE), 50 * USDC)
    chat = tg.private_chat(ALICE)

    # The confirmation message vanished: the outcome is sent as a new message instead.
    ask = await quote(run, ALICE, "first")
    for _ in range(2):  # "thinking", then the answer
        tg.fail_next("editMessageText", 400, description="Bad Request: message to edit not found")
    await run.press(ALICE, ask, tg.buttons(ask)[0][1])
    assert "The guardian refuses" in run.last(ALICE["id"])["text"]
    assert run.last(ALICE["id"])["message_id"] != ask["message_id"]

    # The player blocks the bot before the outcome arrives: paid, recorded, visible in /history.
    ask = await quote(run, ALICE, "second")
    tg.block(ALICE)
    await run.press(ALICE, ask, tg.buttons(ask)[0][1])
    assert tg.calls_to("editMessageText")[-1].status == 403
    assert await balance(run.app, ALICE) == 50 * USDC - 10 * USDC - 10_078_000
    history = await views.history(run.app, actor(ALICE))
    assert [h.status for h in history] == ["rejected", "rejected"]

    # A group that is gone (400 chat not found): logged, and the bot carries on.
    group = tg.group(GROUP_ID)
    tg.fail_next("sendMessage", 400, chat_id=GROUP_ID)
    await run.say(BOB, group, "/bounty")
    await run.say(BOB, group, "/bounty")
    assert [c.status for c in tg.calls_to("sendMessage") if c.params["chat_id"] == GROUP_ID] == [
        400,
        200,
    ]
    assert chat["id"] == ALICE["id"]


@pytest.fixture
def long_commands():
    lines = tuple(f"line {i:04d}: " + "&<>" * 10 + "x" * 20 for i in range(60))  # 3 pages escaped

    async def many(ctx, args):
        return Reply(title="Many lines", lines=lines)

    async def huge(ctx, args):
        return Reply(title="Huge list", lines=lines * 20, footer="the end")

    async def wide(ctx, args):
        return Reply(title="Wide", text="😀" * 3000 + "\n" + "&" * 5000)

    added = [
        Command(("many",), "Many lines.", many),
        Command(("huge",), "A huge list.", huge),
        Command(("wide",), "Wide text.", wide),
    ]
    COMMANDS.extend(added)
    yield lines
    for cmd in added:
        COMMANDS.remove(cmd)


async def test_text_to_copy_comes_alone_as_preformatted_text_and_an_image_as_a_photo(start_bot, tg):
    async def sign(ctx, args):
        return Reply(
            title="Sign this",
            text="Sign the message below with your wallet.",
            code="Billions Bounty wallet link\nplayer: #1\nnonce: <abc> & co",
            attachments=(Attachment("chart.png", tiny_png(), image=True),),
            private=True,
        )

    added = Command(("sign",), "Show a challenge.", sign)
    COMMANDS.append(added)
    try:
        run = await start_bot()
        mark = tg.mark()
        await run.say(ALICE, tg.private_chat(ALICE), "/sign")
    finally:
        COMMANDS.remove(added)
    head, code = tg.calls_to("sendMessage", after=mark)
    assert head.result["text"].startswith("Sign this")
    assert (
        code.params["text"]
        == "<pre>Billions Bounty wallet link\nplayer: #1\nnonce: &lt;abc&gt; &amp; co</pre>"
    )
    assert code.result["text"] == "Billions Bounty wallet link\nplayer: #1\nnonce: <abc> & co"
    (photo,) = tg.calls_to("sendPhoto", after=mark)
    assert photo.ok and photo.files["photo"][1] == tiny_png()


async def test_long_replies_are_split_or_attached(start_bot, tg, long_commands):
    run = await start_bot()
    chat = tg.private_chat(ALICE)

    mark = tg.mark()
    await run.say(ALICE, chat, "/many")
    pages = tg.calls_to("sendMessage", after=mark)
    assert len(pages) > 1 and all(
        c.ok for c in pages
    )  # the stand-in refuses > 4,096 or broken HTML
    shown = "\n".join(c.result["text"] for c in pages)
    assert all(line in shown for line in long_commands)

    mark = tg.mark()
    await run.say(ALICE, chat, "/huge")
    (head,) = tg.calls_to("sendMessage", after=mark)
    assert "attached as huge.txt" in head.result["text"]
    (document,) = tg.calls_to("sendDocument", after=mark)
    name, content = document.files["document"]
    assert name == "huge.txt" and content.decode().count("line 0059") == 20

    mark = tg.mark()
    await run.say(ALICE, chat, "/wide")
    pages = tg.calls_to("sendMessage", after=mark)
    assert len(pages) >= 3 and all(
        c.ok for c in pages
    )  # emoji count twice in UTF-16; & grows escaped
    shown = "".join(c.result["text"] for c in pages)
    assert shown.count("😀") == 3000 and shown.count("&") == 5000


def test_broadcast_pacing_is_one_message_per_second_per_chat():
    now = [1000.0]
    pacer = ChatPacer(1.0, clock=lambda: now[0])
    assert [pacer.reserve(-1) for _ in range(3)] == [0.0, 1.0, 2.0]  # queued, not dropped
    assert pacer.reserve(-2) == 0.0  # other chats do not wait
    now[0] += 10
    assert pacer.reserve(-1) == 0.0


async def test_broadcast_reaches_every_chat_and_reports_failures(start_bot, tg):
    run = await start_bot()
    chats = [tg.group(-100_1 - i, f"Team {i}")["id"] for i in range(3)]
    failed = await run.bot.broadcast([*chats, -100_404], render(Reply(title="Hello <teams>")))
    assert failed == [-100_404]
    for chat_id in chats:
        assert run.last(chat_id)["text"] == "Hello <teams>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_mode(start_bot, tg):
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram-hook"
    run = await start_bot(
        TELEGRAM_WEBHOOK_URL=url,
        TELEGRAM_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        TELEGRAM_WEBHOOK_SECRET="s3cret-Token",
    )
    (hook,) = tg.calls_to("setWebhook")
    assert hook.params["url"] == url and hook.params["secret_token"] == "s3cret-Token"
    assert not tg.calls_to("getUpdates")

    update = await run.say(ALICE, tg.private_chat(ALICE), "/help")
    assert "Billions Bounty commands" in run.last(ALICE["id"])["text"]
    assert tg.webhook_deliveries == [(update["update_id"], 200)]

    forged = {"update_id": 999, "message": {**update["message"], "text": "/balance"}}
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
            async with session.post(url, json=forged, headers=headers) as response:
                assert response.status == 403
    assert run.bot.tracker.outcomes(999) == []


async def test_webhook_without_a_configured_secret_still_uses_one(start_bot, tg):
    port = free_port()
    await start_bot(
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/",
        TELEGRAM_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
    )
    (hook,) = tg.calls_to("setWebhook")
    assert len(hook.params["secret_token"]) >= 32


async def test_run_telegram_returns_when_stopped(tg, app_factory, caplog):
    app = await app_factory(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=f"{tg.url}/bot")
    stop = asyncio.Event()
    with caplog.at_level(logging.DEBUG):
        task = asyncio.create_task(run_telegram(app, stop))
        tg.push_command(ALICE, tg.private_chat(ALICE), "/help")
        await tg.wait_sent(ALICE["id"], contains="Billions Bounty commands")
        stop.set()
        await asyncio.wait_for(task, 30)
    await app.aclose()
    secret = TOKEN.split(":")[1]
    assert caplog.records and not [
        r for r in caplog.records if TOKEN in r.getMessage() or f":{secret}/" in r.getMessage()
    ]


async def test_fifty_players_at_once_are_all_answered(start_bot, tg):
    """Updates are handled concurrently (the benchmark's shape: 50 players, first reply each)."""
    run = await start_bot()
    await open_round(run.app)
    players = [tg.user(5000 + i, f"Player {i}") for i in range(50)]
    updates = [tg.push_command(p, tg.private_chat(p), "/bounty") for p in players]
    await asyncio.gather(*(run.handled(u) for u in updates))
    for player, update in zip(players, updates, strict=True):
        reply = tg.first_reply(update)
        assert reply is not None and reply.params["chat_id"] == player["id"]
        assert "Round #1: Test" in reply.result["text"]
        assert reply.at >= tg.pushed_at[update["update_id"]]


async def test_a_notice_reaches_the_player_in_the_private_chat(start_bot, tg):
    from sqlalchemy import text as sql

    from core.services import notices
    from core.services.players import ensure_player
    from tests.e2e.telegram.conftest import CAROL

    run = await start_bot()
    tg.start_private(ALICE)
    async with run.app.uow() as uow:
        alice = await ensure_player(uow.conn, actor(ALICE))
        carol = await ensure_player(uow.conn, actor(CAROL))  # never pressed Start
        await notices.notify(uow.conn, alice.id, "Payout paid", "100 USDC went to your wallet.")
        await notices.notify(uow.conn, carol.id, "Payout paid", "1 USDC.")
    message = await tg.wait_sent(ALICE["id"], contains="Payout paid")
    assert "100 USDC went to your wallet." in message["text"]
    for _ in range(300):
        async with run.app.engine.connect() as conn:
            rows = (
                await conn.execute(sql("SELECT * FROM outbox WHERE topic = 'notice' ORDER BY id"))
            ).all()
        if all(r.done_at or r.failed_at for r in rows):
            break
        await asyncio.sleep(0.02)
    assert [r.done_at is not None for r in rows] == [True, False]
    assert "undeliverable" in rows[1].last_error
