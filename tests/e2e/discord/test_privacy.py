"""/privacy on Discord through the real discord.py client: the export arrives as a JSON file in an
ephemeral answer, and the erasure asks first with buttons that only its owner can press."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.e2e.discord.conftest import ALICE, BOB
from tests.standins.discord_server import EPHEMERAL, message_text


async def identities(app) -> list:
    async with app.engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT platform, external_id FROM player_identities ORDER BY id")
            )
        ).all()


async def test_export_as_a_file_then_delete_after_confirming(start_bot, dc):
    run = await start_bot()
    await run.slash(ALICE, "attempt", message="no round yet, but this text is mine")
    answer = run.answer(await run.slash(ALICE, "privacy export"))
    assert answer["flags"] & EPHEMERAL
    (attachment,) = answer["attachments"]
    assert attachment["filename"].startswith("bounty-player-") and attachment["filename"].endswith(
        ".json"
    )
    data = json.loads(dc.attachment_data[attachment["id"]])
    assert [(i["platform"], i["external_id"]) for i in data["identities"]] == [
        ("discord", ALICE["id"])
    ]

    ask = run.answer(await run.slash(ALICE, "privacy delete"))
    assert ask["flags"] & EPHEMERAL and "Delete your data?" in message_text(ask)
    assert "Kept, under the pseudonym erased player #" in message_text(ask)
    delete, keep = dc.buttons(ask)
    assert (delete["label"], keep["label"]) == ("Delete my data", "Keep it")

    refused = await run.click(BOB, delete["custom_id"], message=ask)  # not Bob's to press
    (answer,) = [dc.message(i) for i in refused.followup_ids]
    assert answer["flags"] & EPHEMERAL and "This button is not for you." in message_text(answer)
    assert [tuple(r) for r in await identities(run.app)] == [("discord", ALICE["id"])]
    done = await run.click(ALICE, delete["custom_id"])
    assert "Your data is deleted" in message_text(run.answer(done))
    assert all(r.external_id != ALICE["id"] for r in await identities(run.app))
