"""Team channels through the real discord.py and the stand-in: the exact permission overwrites after
create, join, leave, kick, captain change and disband; "Teams 2" when "Teams" holds 50 channels; a
private thread near the server's 500; repair after a channel is deleted or edited by hand (seen live,
or by the periodic check after a restart); the rights the bot lacks, named."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from core.services import teams
from tests.e2e.discord.conftest import ALICE, BOB, GUILD_ID, MOD_ROLE_ID, MONA, actor
from tests.e2e.team_helpers import failed_rows, settled
from tests.standins.discord_server import DiscordStandin, message_text

BOT = DiscordStandin.BOT_ID
VIEW, SEND, HISTORY, MANAGE_MESSAGES = 1 << 10, 1 << 11, 1 << 16, 1 << 13
MEMBER = (
    VIEW | SEND | HISTORY | (1 << 14) | (1 << 15) | (1 << 6)
)  # + embed links, attach files, reactions
CAPTAIN = MEMBER | MANAGE_MESSAGES
MODERATOR = VIEW | SEND | HISTORY | MANAGE_MESSAGES
BOT_ALLOW = VIEW | SEND | HISTORY | (1 << 14) | MANAGE_MESSAGES | (1 << 29) | (1 << 28)


def ow(target: int, kind: int, allow: int, deny: int = 0) -> dict[str, Any]:
    return {"id": str(target), "type": kind, "allow": str(allow), "deny": str(deny)}


def expected(*members: tuple[dict, int]) -> list[dict[str, Any]]:
    """@everyone denied, the bot, the moderator role, then each member with its allow bits."""
    rows = [ow(GUILD_ID, 0, 0, VIEW), ow(MOD_ROLE_ID, 0, MODERATOR), ow(BOT, 1, BOT_ALLOW)]
    rows += [ow(int(user["id"]), 1, allow) for user, allow in members]
    return sorted(rows, key=lambda o: (o["type"], o["id"]))


def overwrites(channel: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(
        (
            {
                "id": o["id"],
                "type": int(o["type"]),
                "allow": str(o["allow"]),
                "deny": str(o["deny"]),
            }
            for o in channel["permission_overwrites"]
        ),
        key=lambda o: (o["type"], o["id"]),
    )


async def team_channel(run, team_id: int) -> dict[str, Any]:
    await settled(run.app, "discord")
    state = await teams.chat_state(run.app, team_id, "discord")
    assert state.chat is not None, await failed_rows(run.app, "discord")
    return run.dc.channels[int(state.chat.chat_id)]


async def create(run, user, name: str) -> int:
    said = "\n".join(
        message_text(m) for m in run.dc.answers(await run.slash(user, "team create", name=name))
    )
    assert "created" in said, said
    return (await teams.info(run.app, actor(user))).team.id


async def join(run, user, captain) -> None:
    code = (await teams.info(run.app, actor(captain))).team.invite_code
    reply = run.answer(await run.slash(user, "team join", code=code))
    assert "You joined" in message_text(reply), message_text(reply)


def ref(user) -> str:
    return f"discord:{user['id']}"


async def test_overwrites_follow_create_join_leave_kick_captain_and_disband(start_bot, dc):
    run = await start_bot()
    team_id = await create(run, ALICE, "Vault Busters")
    channel = await team_channel(run, team_id)
    category = dc.channels[int(channel["parent_id"])]
    assert (channel["name"], channel["type"], category["name"], category["type"]) == (
        "team-vault-busters",
        0,
        "Teams",
        4,
    )
    assert overwrites(channel) == expected((ALICE, CAPTAIN))

    await join(run, BOB, ALICE)
    await join(run, MONA, ALICE)
    channel = await team_channel(run, team_id)
    assert overwrites(channel) == expected((ALICE, CAPTAIN), (BOB, MEMBER), (MONA, MEMBER))

    run.answer(await run.slash(MONA, "team leave"))
    assert overwrites(await team_channel(run, team_id)) == expected((ALICE, CAPTAIN), (BOB, MEMBER))

    run.answer(await run.slash(ALICE, "team captain", player=ref(BOB)))
    assert overwrites(await team_channel(run, team_id)) == expected((ALICE, MEMBER), (BOB, CAPTAIN))

    await join(run, MONA, BOB)
    run.answer(await run.slash(BOB, "team kick", player=ref(ALICE)))
    channel = await team_channel(run, team_id)
    assert overwrites(channel) == expected((BOB, CAPTAIN), (MONA, MEMBER))
    assert (
        len(
            [
                c
                for c in dc.channels.values()
                if c.get("topic") and f"[team:{team_id}]" in c["topic"]
            ]
        )
        == 1
    )

    ask = run.answer(await run.slash(BOB, "team disband"))
    done = run.answer(await run.click(BOB, dc.buttons(ask)[0]["custom_id"]))
    assert "disbanded" in message_text(done)
    await settled(run.app, "discord")
    archived = dc.channels[int(channel["id"])]
    assert archived["name"] == "archived-team-vault-busters"
    assert overwrites(archived) == sorted(
        [ow(GUILD_ID, 0, 0, VIEW), ow(MOD_ROLE_ID, 0, VIEW | HISTORY, SEND), ow(BOT, 1, BOT_ALLOW)],
        key=lambda o: (o["type"], o["id"]),
    )
    assert (await teams.chat_state(run.app, team_id, "discord")).chat is None


async def test_a_full_category_rolls_over_to_teams_2(start_bot, dc):
    first = dc.add_channel(GUILD_ID, dc.new_id(), "Teams", type=4)
    for i in range(50):
        dc.add_channel(GUILD_ID, dc.new_id(), f"old-{i}", parent_id=int(first["id"]))
    run = await start_bot()
    channel = await team_channel(run, await create(run, ALICE, "Late Comers"))
    category = dc.channels[int(channel["parent_id"])]
    assert category["name"] == "Teams 2" and category["id"] != first["id"]
    # the next team fits in Teams 2 as well
    channel = await team_channel(run, await create(run, BOB, "Later Still"))
    assert channel["parent_id"] == category["id"]


async def test_near_the_server_cap_a_team_gets_a_private_thread(start_bot, dc):
    for i in range(490 - len(dc.guilds[GUILD_ID]["channels"])):
        dc.add_channel(GUILD_ID, dc.new_id(), f"filler-{i}")
    run = await start_bot()
    team_id = await create(run, ALICE, "Threaded")
    await join(run, BOB, ALICE)
    thread = await team_channel(run, team_id)
    parent = dc.channels[int(thread["parent_id"])]
    assert thread["type"] == 12 and thread["thread_metadata"]["invitable"] is False
    assert parent["name"] == "team-threads"
    assert dc.thread_members[int(thread["id"])] == {BOT, int(ALICE["id"]), int(BOB["id"])}
    run.answer(await run.slash(ALICE, "team kick", player=ref(BOB)))
    await settled(run.app, "discord")
    assert dc.thread_members[int(thread["id"])] == {BOT, int(ALICE["id"])}
    assert (
        len(dc.guilds[GUILD_ID]["channels"]) == 491
    )  # the parent; the thread takes no channel slot


async def test_a_channel_deleted_or_edited_by_hand_is_repaired(start_bot, dc):
    run = await start_bot()
    team_id = await create(run, ALICE, "Stubborn")
    await join(run, BOB, ALICE)
    channel = await team_channel(run, team_id)

    # someone opens the channel to everyone: noticed on CHANNEL_UPDATE, put back
    await dc.edit_by_hand(
        channel["id"], permission_overwrites=[ow(GUILD_ID, 0, VIEW)], name="open-house"
    )
    await dc.wait_for(
        lambda c: (
            c.method == "PATCH"
            and c.path == f"/channels/{channel['id']}"
            and (c.body or {}).get("permission_overwrites") is not None
            and c.body.get("name") == "team-stubborn"
        )
    )
    repaired = await team_channel(run, team_id)
    assert repaired["name"] == "team-stubborn"
    assert overwrites(repaired) == expected((ALICE, CAPTAIN), (BOB, MEMBER))

    # someone deletes it: noticed on CHANNEL_DELETE, made again with the same overwrites
    mark = dc.mark()
    await dc.delete_by_hand(channel["id"])
    await dc.wait_for(
        lambda c: c.method == "POST" and c.path == f"/guilds/{GUILD_ID}/channels", after=mark
    )
    again = await team_channel(run, team_id)
    assert again["id"] != channel["id"] and int(channel["id"]) not in dc.channels
    assert overwrites(again) == expected((ALICE, CAPTAIN), (BOB, MEMBER))


async def test_the_periodic_check_repairs_what_happened_while_the_bot_was_away(start_bot, dc):
    run = await start_bot()
    team_id = await create(run, ALICE, "Away Team")
    channel = await team_channel(run, team_id)
    await run.bot.stop()
    await dc.delete_by_hand(channel["id"])  # no bot connected: nobody sees the event
    await run.bot.start()
    assert await run.bot.teams.check() == [team_id]
    again = await team_channel(run, team_id)
    assert again["id"] != channel["id"] and overwrites(again) == expected((ALICE, CAPTAIN))
    assert await run.bot.teams.check() == []  # in step now: nothing to repair


async def test_missing_rights_are_named_to_the_captain_and_nothing_is_half_made(dc, start_bot):
    dc.restrict_bot(GUILD_ID, VIEW | SEND | (1 << 4))  # Manage Channels only
    dc.add_user(ALICE)
    run = await start_bot()
    team_id = await create(run, ALICE, "Unlucky")
    dm = await dc.wait_message(
        int(
            (
                await dc.wait_for(lambda c: c.method == "POST" and c.path == "/users/@me/channels")
            ).response["id"]
        ),
        contains="lacks",
    )
    assert "lacks Manage Roles, Manage Webhooks" in message_text(dm)
    assert (await teams.chat_state(run.app, team_id, "discord")).chat is None
    assert not dc.calls_to("POST", rf"/guilds/{GUILD_ID}/channels$")
    async with run.app.engine.connect() as conn:
        errors = (
            (
                await conn.execute(
                    text(
                        "SELECT last_error FROM outbox WHERE topic = 'team_sync' AND failed_at IS NOT NULL"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert errors and "lacks Manage Roles, Manage Webhooks" in errors[0]
