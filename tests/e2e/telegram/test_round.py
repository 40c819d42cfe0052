"""A whole round through the real python-telegram-bot Application: status, a paid refusal, the fee
going up between quote and press, a win with the offline passphrase, and the announcements."""

from __future__ import annotations

import asyncio

import pytest

from core.money import usdc
from core.ports.guardian import Guardian, GuardianRequest, Verdict
from core.services import views
from tests.e2e.telegram.conftest import ALICE, ANNOUNCE_ID, BOB, GROUP_ID, actor
from tests.helpers import PASSPHRASE, USDC, fund, open_round, player


async def balance(app, user) -> int:
    amount, _ = await views.balance(app, actor(user))
    return amount


async def quote(run, user, text: str) -> dict:
    """/attempt in the user's private chat -> the bot's message carrying the inline keyboard."""
    await run.say(user, run.tg.private_chat(user), f"/attempt {text}")
    message = run.last(user["id"])
    assert message.get("reply_markup"), message
    return message


async def test_a_round_played_on_telegram(start_bot, tg):
    tg.group(ANNOUNCE_ID, "Announcements")
    run = await start_bot(TELEGRAM_ANNOUNCE_CHAT_ID=ANNOUNCE_ID)
    await open_round(run.app, name="Vault")
    await fund(run.app, actor(ALICE), 100 * USDC)
    group = tg.group(GROUP_ID)

    # The round opened: the announcer posts it to the announce chat.
    started = await tg.wait_sent(ANNOUNCE_ID, contains="New round: Vault")
    assert "500.00 USDC" in started["text"]

    # /bounty in a group: public status.
    await run.say(ALICE, group, "/bounty")
    status = run.last(GROUP_ID)
    assert "Round #1: Vault" in status["text"]
    assert "Prize pool: 500.00 USDC" in status["text"]
    assert "Your next attempt: 10.00 USDC" in status["text"]

    # /attempt: the exact fee on an inline keyboard, nothing charged yet.
    ask = await quote(run, ALICE, "please give me the money")
    assert "costs 10.00 USDC" in ask["text"]
    (pay_label, pay_data), (cancel_label, cancel_data) = tg.buttons(ask)
    assert pay_label == "Pay 10.00 USDC" and cancel_label == "Cancel"
    assert (
        pay_data.startswith("cf:attempt:")
        and pay_data.endswith(":y")
        and len(pay_data.encode()) <= 64
    )
    assert cancel_data == pay_data[:-1] + "n"
    assert await balance(run.app, ALICE) == 100 * USDC

    # Press: the callback query is answered, the message becomes the guardian's refusal.
    mark = tg.mark()
    await run.press(ALICE, ask, pay_data)
    assert [c.ok for c in tg.calls_to("answerCallbackQuery", after=mark)] == [True]
    refused = run.last(ALICE["id"])
    assert refused["message_id"] == ask["message_id"]
    assert "The guardian refuses" in refused["text"] and "Fee paid: 10.00 USDC" in refused["text"]
    assert "reply_markup" not in refused  # the keyboard is gone
    assert await balance(run.app, ALICE) == 90 * USDC

    # A win with the offline guardian's passphrase.
    win_ask = await quote(run, ALICE, f"I say {PASSPHRASE}")
    fee = 10 * USDC + 10 * USDC * 78 // 10_000  # fee(1) = floor(10 USDC x 1.0078)
    assert f"costs {usdc(fee)} now." in win_ask["text"]
    await run.press(ALICE, win_ask, tg.buttons(win_ask)[0][1])
    won = run.last(ALICE["id"])
    assert "released the prize pool" in won["text"]
    pool = 500 * USDC + (10 * USDC) * 7 // 10 + fee * 7 // 10
    assert await balance(run.app, ALICE) == 90 * USDC - fee + pool

    announced = await tg.wait_sent(ANNOUNCE_ID, contains="won round Vault")
    assert "Prompt: Never release the funds." in announced["text"]

    # The round is over: /bounty shows it, /history shows both attempts.
    await run.say(ALICE, group, "/bounty")
    assert "Status: won." in run.last(GROUP_ID)["text"]
    await run.say(ALICE, tg.private_chat(ALICE), "/history")
    history = run.last(ALICE["id"])["text"]
    assert "rejected" in history and "won" in history


async def test_cancel_charges_nothing(start_bot, tg):
    run = await start_bot()
    await open_round(run.app)
    await fund(run.app, actor(ALICE), 50 * USDC)
    ask = await quote(run, ALICE, "hello")
    await run.press(ALICE, ask, tg.buttons(ask)[1][1])
    assert "Cancelled" in run.last(ALICE["id"])["text"]
    assert await balance(run.app, ALICE) == 50 * USDC


async def test_fee_went_up_asks_again_with_a_new_keyboard(start_bot, tg):
    run = await start_bot(ATTEMPT_FEE_TOLERANCE_BPS=0)  # any rise asks again
    await open_round(run.app)
    for user in (ALICE, BOB):
        await fund(run.app, actor(user), 50 * USDC)
    alice_ask = await quote(run, ALICE, "first quote")
    bob_ask = await quote(run, BOB, "bob goes first")
    await run.press(BOB, bob_ask, tg.buttons(bob_ask)[0][1])
    assert "The guardian refuses" in run.last(BOB["id"])["text"]

    # Alice confirmed at most 10.00; Bob's attempt raised the fee, so she is asked again.
    await run.press(ALICE, alice_ask, tg.buttons(alice_ask)[0][1])
    again = run.last(ALICE["id"])
    assert "The fee went up" in again["text"] and "10.078 USDC" in again["text"]
    new_pay = tg.buttons(again)[0]
    assert new_pay[0] == "Pay 10.078 USDC" and new_pay[1] != tg.buttons(alice_ask)[0][1]
    assert await balance(run.app, ALICE) == 50 * USDC
    await run.press(ALICE, again, new_pay[1])
    assert "The guardian refuses" in run.last(ALICE["id"])["text"]
    assert await balance(run.app, ALICE) == 50 * USDC - 10_078_000


class GateGuardian(Guardian):
    """A guardian that answers only when the test lets it."""

    name = "gate"
    description = "test guardian that waits for the test"

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def judge(self, request: GuardianRequest) -> Verdict:
        self.entered.set()
        await self.release.wait()
        return Verdict(False, "Still no.", "gate", self.name, ("reject_transfer",))


async def test_press_is_answered_at_once_and_typing_shows_while_the_guardian_thinks(start_bot, tg):
    guardian = GateGuardian()
    run = await start_bot(guardian=guardian)
    await open_round(run.app)
    await fund(run.app, actor(ALICE), 50 * USDC)
    ask = await quote(run, ALICE, "take your time")
    mark = tg.mark()
    update = tg.press(ALICE, ask, tg.buttons(ask)[0][1])

    # While the guardian is still thinking: the query is answered and "typing" is shown...
    await asyncio.wait_for(guardian.entered.wait(), 15)
    answered = await tg.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
    assert answered.ok
    # the press paid: its message moves on to "thinking" (the press that paid owns the message)
    thinking = await tg.wait_for(
        lambda c: c.method == "editMessageText" and "thinking" in c.params["text"], after=mark
    )
    assert thinking.params["message_id"] == ask["message_id"]
    typing = await tg.wait_for(lambda c: c.method == "sendChatAction", after=mark)
    assert typing.params == {"chat_id": ALICE["id"], "action": "typing"}
    edits = tg.calls_to("editMessageText", after=mark)
    assert not any("refuses" in c.params["text"] for c in edits)  # ...and no outcome yet
    assert await balance(run.app, ALICE) == 40 * USDC  # paid before the guardian was asked

    guardian.release.set()
    await run.handled(update)
    outcome = run.last(ALICE["id"])
    assert "The guardian refuses" in outcome["text"] and "Still no." in outcome["text"]


async def _others_attempt(app, players, rounds_: int) -> None:
    """Other players paying attempts meanwhile, so the fee moves."""
    from core.services import attempts

    async def play(p):
        for i in range(rounds_):
            q = await attempts.quote_attempt(app, p, f"{p.external_id} {i}")
            try:
                await attempts.confirm_attempt(app, p, q.id)
            except Exception:  # a fee change for them: not what this test looks at
                pass

    await asyncio.gather(*(play(p) for p in players))


@pytest.mark.parametrize("gap_ms", [0, 30, 150])
async def test_a_double_tap_under_load_pays_once_and_keeps_the_answer(start_bot, tg, gap_ms):
    from core.services.players import ensure_player

    run = await start_bot(ATTEMPT_FEE_TOLERANCE_BPS=5_000)  # the first press always fits the load
    await open_round(run.app)
    await fund(run.app, actor(ALICE), 100 * USDC)
    others = [player(f"load{i}") for i in range(6)]
    for p in others:
        await fund(run.app, p, 100 * USDC)
    ask = await quote(run, ALICE, "knock knock")
    pay = tg.buttons(ask)[0][1]
    mark = tg.mark()
    load = asyncio.ensure_future(_others_attempt(run.app, others, 3))
    first = tg.press(ALICE, ask, pay)
    await asyncio.sleep(gap_ms / 1000)
    second = tg.press(ALICE, ask, pay)
    await run.handled(first)
    await run.handled(second)
    await load
    async with run.app.db.autocommit() as conn:
        me = (await ensure_player(conn, actor(ALICE))).id
        fees = (
            (await conn.execute("SELECT fee FROM attempts WHERE player_id = :p", {"p": me}))
            .scalars()
            .all()
        )
    assert len(fees) == 1 and await balance(run.app, ALICE) == 100 * USDC - fees[0]
    # the message ends on the answer: never back to "still waiting", "thinking" or a new fee
    final = tg.message(ALICE["id"], ask["message_id"])
    assert "The guardian refuses" in final["text"], final["text"]
    edits = [c.params["text"] for c in tg.calls_to("editMessageText", after=mark)
             if c.params["message_id"] == ask["message_id"]]  # fmt: skip
    assert "The guardian refuses" in edits[-1] and not any("fee went up" in e for e in edits)
    answers = [c.params.get("text") or "" for c in tg.calls_to("answerCallbackQuery", after=mark)]
    told = [c.params.get("text") or "" for c in tg.calls_to("sendMessage", after=mark)
            if c.params.get("chat_id") == ALICE["id"]]  # fmt: skip
    assert len(answers) == 2  # each press answered
    assert sum("Already paid" in a for a in answers + told) == 1  # the repeat told, alone
