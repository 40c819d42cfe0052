"""/privacy on Telegram through the real python-telegram-bot: the export is a document in the private
chat (also when asked in a group), and the erasure asks first with an inline keyboard."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.e2e.telegram.conftest import ALICE, GROUP_ID


async def test_export_as_a_document_then_delete_after_confirming(start_bot, tg):
    run = await start_bot()
    tg.start_private(ALICE)
    mark = tg.mark()
    await run.say(ALICE, tg.group(GROUP_ID), "/privacy export")  # asked in a group
    (document,) = tg.calls_to("sendDocument", after=mark)
    assert document.params["chat_id"] == ALICE["id"]  # answered privately
    name, content = document.files["document"]
    assert name.startswith("bounty-player-") and name.endswith(".json")
    data = json.loads(content)
    assert [(i["platform"], i["external_id"]) for i in data["identities"]] == [
        ("telegram", str(ALICE["id"]))
    ]

    chat = tg.private_chat(ALICE)
    await run.say(ALICE, chat, "/privacy delete")
    ask = run.last(ALICE["id"])
    assert "Delete your data?" in ask["text"]
    (delete, _), (keep, _) = tg.buttons(ask)[0], tg.buttons(ask)[1]
    assert (delete, keep) == ("Delete my data", "Keep it")
    await run.press(ALICE, ask, tg.buttons(ask)[0][1])
    assert "Your data is deleted" in run.last(ALICE["id"])["text"]
    async with run.app.engine.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM player_identities"))).scalar_one()
    assert left == 0
