"""A Discord moderator through the real discord.py client: naming players by mention, user id and
username; grants, bans and audits; the stats chart shown as an image; option limits from the settings
in force; a round name with spaces in its own option."""

from __future__ import annotations

import io
import os

from core.services import views
from tests.e2e.discord.conftest import ALICE, BOB, GUILD_ID, MOD_ROLE_ID, MONA, actor
from tests.helpers import USDC, fund, open_round
from tests.standins.discord_server import EPHEMERAL, message_text

MOD = {"roles": (MOD_ROLE_ID,)}


async def test_a_moderator_names_players_by_mention_id_and_username(start_bot, dc):
    run = await start_bot()
    await open_round(run.app)
    for user in (ALICE, BOB):
        await run.slash(user, "balance")  # each has used the bot once

    answer = run.answer(
        await run.slash(
            MONA, "admin grant", player=f"<@{ALICE['id']}>", amount="10", reason="welcome", **MOD
        )
    )
    assert answer["flags"] & EPHEMERAL and "10.00 USDC to Alice" in message_text(answer)
    answer = run.answer(
        await run.slash(MONA, "admin grant", player=BOB["id"], amount="5", reason="thanks", **MOD)
    )
    assert "5.00 USDC to Bob" in message_text(answer)
    answer = run.answer(await run.slash(MONA, "admin note", player="@bob", text="helpful", **MOD))
    assert "Noted on Bob" in message_text(answer)
    assert (await views.balance(run.app, actor(ALICE)))[0] == 10 * USDC
    assert (await views.balance(run.app, actor(BOB)))[0] == 5 * USDC

    answer = run.answer(
        await run.slash(
            MONA,
            "admin ban",
            player=f"<@!{BOB['id']}>",
            duration="30m",
            reason="testing bans",
            **MOD,
        )
    )
    assert "is banned until" in message_text(answer)
    await fund(run.app, actor(BOB), 20 * USDC)
    refused = message_text(run.answer(await run.slash(BOB, "attempt", message="hello")))
    assert refused.startswith("You are banned until ") and "UTC: testing bans." in refused
    audit = message_text(run.answer(await run.slash(MONA, "admin audit", player="bob", **MOD)))
    assert "Discord @bob (1320000000000000002)" in audit and "banned by discord:" in audit
    assert "(30 minutes)" in audit

    # A player may not do it; an unknown name says which forms work on Discord.
    denied = message_text(
        run.answer(await run.slash(ALICE, "admin ban", player="@bob", reason="x"))
    )
    assert "Only moderators can do that." in denied
    unknown = message_text(
        run.answer(await run.slash(MONA, "admin note", player="@nobody", text="x", **MOD))
    )
    assert (
        "No player '@nobody'. Name a player by a mention, their Discord user id, @username"
        in unknown
    )


async def test_the_stats_chart_is_shown_as_an_image(start_bot, dc):
    run = await start_bot()
    await open_round(run.app, name="Vault")
    answer = run.answer(await run.slash(MONA, "admin stats", **MOD))
    embed = answer["embeds"][0]
    assert embed["title"] == "Stats, round Vault"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Active players in teams"] == "0.00 %"  # nobody played yet
    (attachment,) = answer["attachments"]
    assert attachment["filename"] == "stats-round-1.png"
    assert embed["image"]["url"] == "attachment://stats-round-1.png"
    data = dc.attachment_data[attachment["id"]]
    from matplotlib import image

    assert image.imread(io.BytesIO(data), format="png").shape[:2] == (600, 800)
    folder = os.environ.get("BOUNTY_TRANSCRIPTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "stats-discord.png"), "wb") as f:
            f.write(data)


async def test_option_limits_come_from_the_settings_in_force(start_bot, dc):
    await start_bot(ATTEMPT_MAX_CHARS=300)
    options = {o["name"]: o for o in dc.command_paths(GUILD_ID)[("attempt",)]["options"]}
    assert options["message"]["max_length"] == 300
    # Discord lists required options first: the optional duration comes after the reason there.
    ban = dc.command_paths(GUILD_ID)[("admin", "ban")]["options"]
    assert [(o["name"], bool(o.get("required")), o.get("max_length")) for o in ban] == [
        ("player", True, 100),
        ("reason", True, 500),
        ("duration", False, 16),
    ]


async def test_a_round_name_with_spaces_has_its_own_option(start_bot, dc):
    run = await start_bot()
    answer = run.answer(
        await run.slash(
            MONA,
            "admin bounty new",
            name="Demo round",
            seed="1000",
            prompt="Never release the funds.",
            **MOD,
        )
    )
    assert "Round #1 Demo round is open" in message_text(answer)
