"""Outgrowing one machine on Telegram: two webhook replicas (two python-telegram-bot Applications,
each with its own App and connection pool) behind one webhook URL. The stand-in plays the load
balancer, sending updates to the replicas in turn, and Telegram's retries: the same update again, to
the other replica. Each update is handled once whichever replica gets it, a paid confirmation
delivered to both charges once, and the update ids are taken in PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from sqlalchemy import text

from core.services import replicas, views
from tests.e2e.telegram.conftest import ALICE, BOB, actor
from tests.helpers import USDC, fund, open_round


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def outcomes(runs, update: dict[str, Any], count: int) -> list[list[str]]:
    """Each replica's outcomes for ``update`` once ``count`` deliveries have ended across them."""
    for _ in range(1_500):
        found = [r.bot.tracker.outcomes(update["update_id"]) for r in runs]
        if sum(len(f) for f in found) >= count:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"update {update['update_id']} was not handled {count} times")


async def test_two_webhook_replicas_handle_each_update_once(start_bot, tg):
    ports = [free_port(), free_port()]
    runs = []
    for port in ports:
        runs.append(
            await start_bot(
                TELEGRAM_WEBHOOK_URL="https://bounty.example.org/telegram/hook",
                TELEGRAM_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                TELEGRAM_WEBHOOK_SECRET="replica-secret",
            )
        )
    tg.webhook_targets = [f"http://127.0.0.1:{p}/telegram/hook" for p in ports]
    app = runs[0].app
    await open_round(app)
    await fund(app, actor(ALICE), 50 * USDC)

    # Every command reaches one replica, and a retry of it the other: answered once.
    for i in range(6):
        user = (ALICE, BOB)[i % 2]
        chat = tg.private_chat(user)
        mark = tg.mark()
        update = tg.push_command(user, chat, "/bounty")
        await tg.redeliver(update, to=(i + 1) % 2)
        found = await outcomes(runs, update, 2)
        assert sorted(o for f in found for o in f) == ["done", "duplicate"], found
        assert [len(f) for f in found] == [1, 1]  # one copy reached each replica
        sent = [
            c for c in tg.calls_to("sendMessage", after=mark) if c.params["chat_id"] == user["id"]
        ]
        assert len(sent) == 1 and "Round #1: Test" in sent[0].result["text"]

    # A paid confirmation pressed once but delivered to both replicas: one payment, one outcome.
    ask = tg.push_command(ALICE, tg.private_chat(ALICE), "/attempt let both replicas try")
    await outcomes(runs, ask, 1)
    quote = tg.messages_to(ALICE["id"])[-1]
    mark = tg.mark()
    press = tg.press(ALICE, quote, tg.buttons(quote)[0][1])
    await tg.redeliver(press, to=0)
    await tg.redeliver(press, to=1)
    found = await outcomes(runs, press, 3)
    assert sorted(o for f in found for o in f) == ["done", "duplicate", "duplicate"]
    assert await views.balance(app, actor(ALICE)) == (40 * USDC, False)
    edits = [c for c in tg.calls_to("editMessageText", after=mark) if c.ok]
    assert len(edits) == 2  # the press that paid: "thinking", then its outcome; no other edit
    assert "thinking" in edits[0].params["text"]
    assert "The guardian refuses" in edits[1].params["text"]

    # Each replica took its share of the update ids, in the database.
    async with app.engine.connect() as conn:
        taken = (
            await conn.execute(text("SELECT taken_by, count(*) FROM telegram_updates GROUP BY 1"))
        ).all()
    assert len(taken) == 2 and sum(n for _, n in taken) == 8
    assert await replicas.purge_updates(app) == 0  # nothing is two days old yet
