"""Delivery on Discord: redelivered and repeated presses charge once, presses by others or after
expiry are answered only to the presser, nobody is pinged, Discord's 429/500/404 on follow-ups
never lose a paid attempt, unexpected errors carry an error id, long replies stay within limits, text to copy comes alone in a code block, images are shown."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

from core.app import utcnow
from core.commands import COMMANDS, Attachment, Command, CommandContext, Field, Reply
from tests.e2e.discord.conftest import ALICE, BOB, GUILD_ID, actor
from tests.e2e.discord.test_round import GateGuardian, balance, quote
from tests.helpers import USDC, fund, open_round, tiny_png
from tests.standins.discord_server import (
    DEFERRED_MESSAGE,
    EPHEMERAL,
    LOADING,
    call_payload,
    message_text,
)

ORIGINAL = r"/webhooks/\d+/[^/]+/messages/@original$"
FOLLOW_UP = r"/webhooks/\d+/[^/]+$"


async def paid_round(start_bot, **settings):
    run = await start_bot(**settings)
    await open_round(run.app)
    await fund(run.app, actor(ALICE), 50 * USDC)
    return run


async def test_a_redelivered_or_repeated_press_charges_once(start_bot, dc):
    run = await paid_round(start_bot)
    ask = await quote(run, ALICE, "once only")
    pay = dc.buttons(ask)[0]["custom_id"]
    press = await run.click(ALICE, pay)
    assert "The guardian refuses" in message_text(run.answer(press))
    callbacks = len(dc.calls_to("POST", r"/callback$"))

    # The gateway delivers the same interaction again: the bot drops it, nothing is sent or charged.
    await dc.replay(press)
    await run.handled(press, count=2)
    assert len(dc.calls_to("POST", r"/callback$")) == callbacks
    assert await balance(run.app, ALICE) == 40 * USDC

    # The same button pressed again (a new interaction): charged nothing, the presser alone is told,
    # and the message keeps its answer.
    again = await run.click(ALICE, pay)
    told = run.answer(again)
    assert "Already paid" in message_text(told) and told["flags"] & EPHEMERAL
    assert "The guardian refuses" in message_text(dc.message(ask["id"]))
    assert await balance(run.app, ALICE) == 40 * USDC


async def test_a_press_by_someone_else_is_refused_to_them_only(start_bot, dc):
    run = await paid_round(start_bot)
    await fund(run.app, actor(BOB), 50 * USDC)
    ask = await quote(run, ALICE, "mine")
    pay = dc.buttons(ask)[0]["custom_id"]
    before = dc.message(ask["id"])["embeds"]

    press = await run.click(BOB, pay, message=ask)
    (refusal,) = [dc.message(i) for i in press.followup_ids]
    assert refusal["flags"] & EPHEMERAL and "This button is not for you." in message_text(refusal)
    assert dc.message(ask["id"])["embeds"] == before  # Alice's confirmation is untouched
    assert not any(b.get("disabled") for b in dc.buttons(dc.message(ask["id"])))
    assert await balance(run.app, BOB) == 50 * USDC and await balance(run.app, ALICE) == 50 * USDC

    # Alice can still pay.
    assert "The guardian refuses" in message_text(run.answer(await run.click(ALICE, pay)))
    assert await balance(run.app, ALICE) == 40 * USDC


async def test_a_press_after_expiry_is_refused(start_bot, dc):
    run = await paid_round(start_bot)
    ask = await quote(run, ALICE, "too slow")
    run.app.clock = lambda: utcnow() + timedelta(hours=1)
    press = await run.click(ALICE, dc.buttons(ask)[0]["custom_id"])
    (refusal,) = [dc.message(i) for i in press.followup_ids]
    assert refusal["flags"] & EPHEMERAL and "expired" in message_text(refusal)
    assert await balance(run.app, ALICE) == 50 * USDC


async def test_everyone_in_a_message_pings_nobody(start_bot, dc):
    run = await paid_round(start_bot)
    mark = dc.mark()
    text = "@everyone @here <@&1> **free** money"
    ask = await quote(run, ALICE, text)
    await run.click(ALICE, dc.buttons(ask)[0]["custom_id"])
    history = run.answer(await run.slash(ALICE, "history"))
    assert "@everyone @here" in message_text(history)
    assert r"\*\*free\*\*" in message_text(history)  # markdown shown as typed, not applied

    payloads = dc.message_payloads(after=mark)
    assert len(payloads) >= 3
    for call in payloads:
        assert call_payload(call).get("allowed_mentions") == {"parse": []}, call.path
    assert not any(m["mention_everyone"] for m in dc.messages.values())


async def test_a_429_on_the_outcome_is_retried_and_delivers_it(start_bot, dc, caplog):
    run = await paid_round(start_bot)
    ask = await quote(run, ALICE, "rate limited")
    dc.fail_next("PATCH", ORIGINAL, 429, retry_after=0.05)
    mark = dc.mark()
    press = await run.click(ALICE, dc.buttons(ask)[0]["custom_id"])
    edits = dc.calls_to("PATCH", ORIGINAL, after=mark)
    assert [c.status for c in edits] == [429, 200, 200]  # "thinking" (retried), then the answer
    assert "The guardian refuses" in message_text(run.answer(press))
    assert await balance(run.app, ALICE) == 40 * USDC


async def test_a_500_on_the_quote_is_retried(start_bot, dc):
    run = await paid_round(start_bot)
    dc.fail_next("PATCH", ORIGINAL, 500)
    ask = await quote(run, ALICE, "server hiccup")
    assert "costs 10.00 USDC" in message_text(ask)
    assert [c.status for c in dc.calls_to("PATCH", ORIGINAL)] == [500, 200]


async def test_a_vanished_interaction_keeps_the_paid_attempt_in_history(start_bot, dc, caplog):
    run = await paid_round(start_bot)
    ask = await quote(run, ALICE, "lost in transit")
    # The message and its interaction are gone (deleted channel): every edit and follow-up is refused.
    dc.fail_next("PATCH", ORIGINAL, 404, times=5, code=10008, message="Unknown Message")
    dc.fail_next("POST", FOLLOW_UP, 404, times=5, code=10015, message="Unknown Webhook")
    with caplog.at_level(logging.WARNING, logger="bounty.discord"):
        await run.click(ALICE, dc.buttons(ask)[0]["custom_id"])
    assert any("Unknown" in r.getMessage() for r in caplog.records if r.name == "bounty.discord")
    assert await balance(run.app, ALICE) == 40 * USDC  # paid once, not refunded, not lost
    history = message_text(run.answer(await run.slash(ALICE, "history")))
    assert "lost in transit" in history and "rejected" in history


async def broken(ctx: CommandContext, args: dict) -> Reply:
    """Fail the way a bug would."""
    raise RuntimeError("a bug")


async def test_an_unexpected_error_is_answered_with_an_error_id(start_bot, dc, caplog):
    run = await start_bot(commands=[*COMMANDS, Command(("broken",), "Fail like a bug.", broken)])
    with caplog.at_level(logging.ERROR, logger="bounty.bots"):
        answer = run.answer(await run.slash(ALICE, "broken"))
    assert answer["flags"] & EPHEMERAL
    match = re.search(r"error id ([0-9a-f]{8})", message_text(answer))
    assert match, message_text(answer)
    assert any(match.group(1) in r.getMessage() for r in caplog.records)
    assert "a bug" not in message_text(answer)


def long_reply(n: int, width: int = 70) -> Reply:
    return Reply(
        title="Long list",
        text="Here it is.",
        fields=(Field("Count", str(n)),),
        lines=tuple(f"{i:05d} " + "x" * width for i in range(n)),
        footer="end",
    )


async def test_long_replies_are_paginated_within_discord_limits_or_attached(start_bot, dc):
    sizes = {"two": 80, "many": 2_000}

    def lister(n: int):
        async def handler(ctx: CommandContext, args: dict) -> Reply:
            return long_reply(n)

        return handler

    commands = [
        *COMMANDS,
        *(Command(("list", name), "List things.", lister(n)) for name, n in sizes.items()),
        Command(("list", "slow"), "List things slowly.", lister(2_000), slow=True),
    ]
    run = await start_bot(commands=commands)

    two = dc.answers(await run.slash(ALICE, "list two"))
    assert len(two) == 2  # 80 lines of ~76 characters: two embeds of at most 4,096 characters
    shown = "\n".join(message_text(m) for m in two)
    assert all(f"{i:05d} " in shown for i in range(80))
    assert all(len(m["embeds"][0]["description"]) <= 4096 for m in two)

    (many,) = dc.answers(await run.slash(ALICE, "list many"))
    (attachment,) = many["attachments"]
    assert attachment["filename"] == "list-many.txt"
    assert all(f"{i:05d} " in attachment["content"] for i in range(2_000))
    assert "attached as list-many.txt" in message_text(many)

    # A slow command (deferred first): the file replaces the "thinking…" message.
    slow = await run.slash(ALICE, "list slow")
    assert slow.ack_type == DEFERRED_MESSAGE
    (answer,) = dc.answers(slow)
    assert answer["id"] == str(slow.original_id) and not answer["flags"] & LOADING
    assert answer["attachments"][0]["filename"] == "list-slow.txt"
    assert all(f"{i:05d} " in answer["attachments"][0]["content"] for i in range(2_000))


async def test_a_huge_reply_is_split_not_refused(start_bot, dc):
    async def huge(ctx: CommandContext, args: dict) -> Reply:
        return Reply(
            title="T" * 300,
            text="word " * 1_500,
            fields=tuple(Field(f"field {i}", "v" * 1_100) for i in range(30)),
            footer="f" * 3_000,
        )

    run = await start_bot(
        commands=[*COMMANDS, Command(("huge",), "A reply over every limit.", huge)]
    )
    answers = dc.answers(await run.slash(ALICE, "huge"))
    assert answers and all(not m["flags"] & LOADING for m in answers)  # every message accepted
    (answer,) = answers  # more than three messages' worth: the whole reply goes as a file
    (attachment,) = answer["attachments"]
    assert attachment["content"].count("word") == 1_500
    assert all(attachment["content"].count(f"field {i}:") == 1 for i in range(30))
    assert answer["embeds"][0]["title"] == "T" * 255 + "…"


async def test_a_private_answer_to_a_public_slow_command_stays_private(start_bot, dc):
    async def secret(ctx: CommandContext, args: dict) -> Reply:
        return Reply(title="Only for you", private=True)

    run = await start_bot(
        commands=[*COMMANDS, Command(("peek",), "Slow and public.", secret, slow=True)]
    )
    interaction = await run.slash(ALICE, "peek")
    assert interaction.ack_type == DEFERRED_MESSAGE and not interaction.ephemeral_ack
    assert interaction.original_id not in dc.messages  # the public "thinking…" message was deleted
    (answer,) = dc.answers(interaction)
    assert answer["flags"] & EPHEMERAL and "Only for you" in message_text(answer)


async def test_a_command_still_running_near_the_deadline_is_deferred(start_bot, dc):
    gate = asyncio.Event()

    async def waits(ctx: CommandContext, args: dict) -> Reply:
        await gate.wait()
        return Reply(title="Done at last")

    run = await start_bot(commands=[*COMMANDS, Command(("wait",), "Not marked slow.", waits)])
    run.bot.handlers.defer_after = 0.05
    interaction = await dc.slash(ALICE, "wait")
    await dc.wait_for(lambda c: c.path.endswith("/callback") and c.body["type"] == DEFERRED_MESSAGE)
    gate.set()
    await run.handled(interaction)
    assert "Done at last" in message_text(run.answer(interaction))


async def test_an_outdated_command_is_answered(start_bot, dc):
    run = await start_bot()
    stale = dict(dc.commands[GUILD_ID][0], name="oldcommand", options=[])
    dc.commands[GUILD_ID].append(stale)
    answer = run.answer(await run.slash(ALICE, "oldcommand"))
    assert answer["flags"] & EPHEMERAL and "That command changed" in message_text(answer)


async def test_stop_waits_for_an_attempt_in_progress(start_bot, dc):
    guardian = GateGuardian()
    run = await paid_round(start_bot, guardian=guardian)
    ask = await quote(run, ALICE, "finish me")
    press = await dc.click(ALICE, dc.buttons(ask)[0]["custom_id"])
    await asyncio.wait_for(guardian.entered.wait(), 15)
    stopping = asyncio.create_task(run.bot.stop())
    guardian.release.set()
    await stopping
    assert "The guardian refuses" in message_text(dc.message(press.original_id))


async def test_text_to_copy_comes_alone_in_a_code_block_and_an_image_is_shown(start_bot, dc):
    async def sign(ctx: CommandContext, args: dict) -> Reply:
        return Reply(
            title="Sign this",
            text="Sign the message below with your wallet.",
            code="Billions Bounty wallet link\nplayer: #1\nnonce: `abc` **x**",
            attachments=(Attachment("chart.png", tiny_png(), image=True),),
            private=True,
        )

    run = await start_bot(commands=[*COMMANDS, Command(("sign",), "Show a challenge.", sign)])
    head, code = dc.answers(await run.slash(ALICE, "sign"))
    assert head["embeds"][0]["title"] == "Sign this"
    (attachment,) = head["attachments"]
    assert head["embeds"][0]["image"]["url"] == "attachment://chart.png"
    assert dc.attachment_data[attachment["id"]] == tiny_png()
    assert not code["embeds"]
    assert (
        code["content"] == "```\nBillions Bounty wallet link\nplayer: #1\nnonce: `abc` **x**\n```"
    )


async def _outbox_settled(app, topic: str) -> list:
    from sqlalchemy import text as sql

    for _ in range(300):
        async with app.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sql("SELECT * FROM outbox WHERE topic = :t ORDER BY id"), {"t": topic}
                )
            ).all()
        if rows and all(r.done_at or r.failed_at for r in rows):
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"{topic} rows never settled")


async def test_a_notice_reaches_the_player_as_a_direct_message(start_bot, dc):
    from core.services import notices
    from core.services.players import ensure_player

    run = await start_bot()
    dc.add_user(ALICE)
    dc.add_user(BOB, accepts_dms=False)
    async with run.app.uow() as uow:
        alice = await ensure_player(uow.conn, actor(ALICE))
        bob = await ensure_player(uow.conn, actor(BOB))
        await notices.notify(
            uow.conn, alice.id, "Your share", "You got 12 USDC from your team's win."
        )
        await notices.notify(uow.conn, bob.id, "Your share", "You got 1 USDC.")
    rows = await _outbox_settled(run.app, "notice")
    (dm,) = dc.dms_to(int(ALICE["id"]))
    assert dm["embeds"][0]["title"] == "Your share" and "12 USDC" in dm["embeds"][0]["description"]
    assert dc.dms_to(int(BOB["id"])) == []
    assert [r.done_at is not None for r in rows] == [True, False]
    assert "undeliverable" in rows[1].last_error  # Bob allows no DMs: not retried forever
