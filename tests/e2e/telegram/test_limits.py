"""Telegram's limits under load, injected in the stand-in: flood control (429 RetryAfter), calls that
time out, Bad Gateways, and answers lost after Telegram did the work. Sends, edits and invite links
wait and try again; an edit whose answer was lost is not made twice; an answer Telegram refuses for
longer than the retries is kept in the outbox and sent later, once; nothing is charged twice."""

from __future__ import annotations

import asyncio

import pytest

from bots.telegram.limits import PatientRateLimiter
from core.services import teams, views
from tests.e2e.team_helpers import settled
from tests.e2e.telegram.conftest import ALICE, BOB, actor
from tests.e2e.telegram.test_teams import invite_link_in, team_with_group
from tests.helpers import USDC, fund, open_round

TIMEOUT = 0.3  # the bot's Bot API timeout in these tests; a stalled answer takes longer
STALL = 1.0


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(PatientRateLimiter, "first_pause", 0.01)


async def started(start_bot):
    run = await start_bot(bot_options={"timeout": TIMEOUT})
    await open_round(run.app)
    await fund(run.app, actor(ALICE), 50 * USDC)
    return run


async def test_a_send_that_timed_out_is_sent_again_once(start_bot, tg):
    run = await started(start_bot)
    chat = tg.private_chat(ALICE)
    tg.fail_next("sendMessage", 504, stall=STALL)  # Telegram never got to it
    await run.say(ALICE, chat, "/bounty")
    assert [c.status for c in tg.calls_to("sendMessage")] == [504, 200]
    (answer,) = tg.messages_to(ALICE["id"])
    assert "Round #1: Test" in answer["text"]


async def test_an_edit_whose_answer_was_lost_is_not_made_twice(start_bot, tg):
    run = await started(start_bot)
    chat = tg.private_chat(ALICE)
    await run.say(ALICE, chat, "/attempt one edit only")
    ask = run.last(ALICE["id"])
    # The first edit ("thinking") is made, then its answer times out: the retry is told "message
    # is not modified" and the outcome's edit follows, once.
    tg.fail_next("editMessageText", 504, stall=STALL, processed=True)
    await run.press(ALICE, ask, tg.buttons(ask)[0][1])
    edits = tg.calls_to("editMessageText")
    assert [c.status for c in edits] == [504, 400, 200]
    assert "thinking" in edits[0].params["text"] and "not modified" in edits[1].error
    assert "The guardian refuses" in edits[2].params["text"]
    (message,) = tg.messages_to(ALICE["id"])  # the quote became the outcome; nothing sent anew
    assert "The guardian refuses" in message["text"]
    assert await views.balance(run.app, actor(ALICE)) == (40 * USDC, False)


async def test_flood_control_and_bad_gateways_on_edits_are_waited_out(start_bot, tg):
    run = await started(start_bot)
    await run.say(ALICE, tg.private_chat(ALICE), "/attempt wait for it")
    ask = run.last(ALICE["id"])
    tg.fail_next("editMessageText", 429, retry_after=1)
    tg.fail_next("editMessageText", 502, times=2)
    await run.press(ALICE, ask, tg.buttons(ask)[0][1])
    edits = tg.calls_to("editMessageText")  # "thinking" waited out, then the outcome
    assert [c.status for c in edits] == [429, 502, 502, 200, 200]
    assert "thinking" in edits[3].params["text"]
    assert "The guardian refuses" in tg.messages_to(ALICE["id"])[-1]["text"]
    assert len(tg.messages_to(ALICE["id"])) == 1


async def test_an_answer_refused_past_the_retries_is_kept_and_sent_later_once(start_bot, tg):
    run = await started(start_bot)
    chat = tg.private_chat(ALICE)
    tg.fail_next("sendMessage", 502, times=PatientRateLimiter.retries + 1)  # a longer outage
    await run.say(ALICE, chat, "/balance")
    assert tg.messages_to(ALICE["id"]) == []  # not yet: kept in the outbox, sent from there
    for _ in range(500):
        if tg.messages_to(ALICE["id"]):
            break
        await asyncio.sleep(0.02)
    (answer,) = tg.messages_to(ALICE["id"])
    assert "50.00 USDC" in answer["text"]
    statuses = [c.status for c in tg.calls_to("sendMessage")]
    assert statuses == [502] * (PatientRateLimiter.retries + 1) + [200]


async def test_an_invite_link_that_timed_out_is_made_again_and_sent_once(start_bot, tg):
    run = await start_bot(bot_options={"timeout": TIMEOUT})
    group, team_id = await team_with_group(run, tg)
    code = (await teams.info(run.app, actor(ALICE))).team.invite_code
    tg.fail_next("createChatInviteLink", 504, stall=STALL)
    tg.fail_next("sendMessage", 429, retry_after=1, chat_id=BOB["id"])
    await run.say(BOB, tg.private_chat(BOB), f"/team join {code}")
    await settled(run.app, "telegram")
    assert [c.status for c in tg.calls_to("createChatInviteLink")] == [504, 200]
    links = [m for m in tg.messages_to(BOB["id"]) if "invite link" in m.get("text", "")]
    assert len(links) == 1
    assert tg.use_invite_link(BOB, invite_link_in(tg, BOB))
