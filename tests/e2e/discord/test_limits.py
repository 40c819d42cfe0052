"""Discord's limits under load, injected in the stand-in: global and per-route 429s, 5xx answers
to calls Discord had carried out, and interactions that can no longer carry an answer. Responses,
edits, follow-ups and channel messages wait and try again; nothing is posted twice; an answer the
interaction cannot carry arrives as a message instead of being dropped."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from core.commands import COMMANDS, Command, Reply
from tests.e2e.discord.conftest import ALICE, ANNOUNCE_ID, GENERAL_ID, actor
from tests.e2e.discord.test_round import quote
from tests.helpers import USDC, fund, open_round
from tests.standins.discord_server import EPHEMERAL, message_text

CALLBACK = r"/interactions/\d+/[^/]+/callback$"
ORIGINAL = r"/webhooks/\d+/[^/]+/messages/@original$"
FOLLOW_UP = r"/webhooks/\d+/[^/]+$"


async def two_pages(ctx, args) -> Reply:
    """A reply of two messages (80 long lines)."""
    return Reply(title="Two pages", lines=tuple(f"{i:05d} " + "x" * 70 for i in range(80)))


async def outbox_done(app, topic: str, count: int = 1) -> None:
    for _ in range(750):
        async with app.engine.connect() as conn:
            done = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM outbox WHERE topic = :t AND channel = 'discord' "
                        "AND done_at IS NOT NULL"
                    ),
                    {"t": topic},
                )
            ).scalar_one()
        if done >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} {topic} rows were not delivered")


async def test_global_and_route_rate_limits_are_waited_out(start_bot, dc):
    run = await start_bot(DISCORD_ANNOUNCE_CHANNEL_ID=ANNOUNCE_ID)
    dc.fail_next("POST", CALLBACK, 429, retry_after=0.2, global_=True)
    answer = run.answer(await run.slash(ALICE, "balance"))
    assert [c.status for c in dc.calls_to("POST", CALLBACK)] == [429, 200]
    assert "Balance" in message_text(answer)

    dc.fail_next("POST", rf"/channels/{ANNOUNCE_ID}/messages$", 429, retry_after=0.2, global_=True)
    dc.fail_next("POST", rf"/channels/{ANNOUNCE_ID}/messages$", 429, retry_after=0.1)
    await open_round(run.app, name="Limits")
    await outbox_done(run.app, "announcement")
    posts = dc.calls_to("POST", rf"/channels/{ANNOUNCE_ID}/messages$")
    assert [c.status for c in posts] == [429, 429, 200]
    assert len(dc.messages_in(ANNOUNCE_ID)) == 1


async def test_a_response_made_before_its_answer_was_lost_is_not_repeated(start_bot, dc):
    run = await start_bot(commands=[*COMMANDS, Command(("pages",), "Two pages.", two_pages)])
    # Discord makes the response, then answers 502: discord.py tries again and hears "already
    # acknowledged". The first page is shown once and the second still follows.
    dc.fail_next("POST", CALLBACK, 502, after=True)
    interaction = await run.slash(ALICE, "pages")
    callbacks = dc.calls_to("POST", CALLBACK)
    assert [c.status for c in callbacks] == [502, 400] and callbacks[0].done
    first, second = dc.answers(interaction)
    shown = message_text(first) + message_text(second)
    assert all(f"{i:05d} " in shown for i in range(80))


async def test_a_channel_message_is_posted_once_however_often_it_is_sent(start_bot, dc):
    run = await start_bot(DISCORD_ANNOUNCE_CHANNEL_ID=ANNOUNCE_ID)
    posts = rf"/channels/{ANNOUNCE_ID}/messages$"
    dc.fail_next("POST", posts, 502, after=True)  # posted, but the answer is lost
    await open_round(run.app, name="Once")
    await outbox_done(run.app, "announcement")
    assert [c.status for c in dc.calls_to("POST", posts)] == [502, 200]
    assert len(dc.messages_in(ANNOUNCE_ID)) == 1

    # The process dies after posting, before marking the row done: another claims it and posts
    # again. The message's nonce is the row's, so Discord gives back the one it made.
    async with run.app.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE outbox SET done_at = NULL, claimed_until = NULL, claimed_by = NULL "
                "WHERE topic = 'announcement' AND channel = 'discord'"
            )
        )
        await conn.execute(text("SELECT pg_notify('bounty_outbox', 'discord')"))
    await outbox_done(run.app, "announcement")
    assert len(dc.calls_to("POST", posts)) == 3
    (message,) = dc.messages_in(ANNOUNCE_ID)
    assert "New round: Once" in message_text(message)


async def test_an_answer_the_interaction_cannot_carry_comes_as_a_message(start_bot, dc):
    run = await start_bot()
    dc.add_user(ALICE)
    # A private answer whose interaction is gone (answered too late: Unknown interaction).
    dc.fail_next("POST", CALLBACK, 404, code=10062, message="Unknown interaction")
    await run.slash(ALICE, "balance")
    await outbox_done(run.app, "answer")
    (dm,) = dc.dms_to(int(ALICE["id"]))
    assert "Balance" in message_text(dm)

    # A public one goes to the channel it was asked in.
    await open_round(run.app)
    dc.fail_next("POST", CALLBACK, 404, code=10062, message="Unknown interaction")
    await run.slash(ALICE, "bounty status")
    await outbox_done(run.app, "answer", 2)
    (posted,) = [m for m in dc.messages_in(GENERAL_ID) if "Round #1" in message_text(m)]
    assert not posted["flags"] & EPHEMERAL

    # A paid attempt whose confirmation vanished: the outcome arrives privately, charged once.
    await fund(run.app, actor(ALICE), 20 * USDC)
    ask = await quote(run, ALICE, "lost in transit")
    dc.fail_next("PATCH", ORIGINAL, 404, times=5, code=10008, message="Unknown Message")
    dc.fail_next("POST", FOLLOW_UP, 404, times=5, code=10015, message="Unknown Webhook")
    await run.click(ALICE, dc.buttons(ask)[0]["custom_id"])
    await outbox_done(run.app, "answer", 3)
    outcome = dc.dms_to(int(ALICE["id"]))[-1]
    assert "The guardian refuses" in message_text(outcome)
    async with run.app.engine.connect() as conn:
        paid = (await conn.execute(text("SELECT count(*) FROM attempts"))).scalar_one()
    assert paid == 1
