"""Outgrowing one machine on Discord: two bot processes (two real discord.py clients, each with its
own App and connection pool) given disjoint shards by DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS.
The stand-in routes each server's events to shard ``(guild_id >> 22) % count`` and DMs to shard 0,
as Discord does: every interaction is answered once, by the process holding its shard, and what the
outbox sends (an announcement) goes out once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.e2e.discord.conftest import ALICE, ANNOUNCE_ID, BOB, GUILD_ID, actor
from tests.helpers import USDC, fund, open_round
from tests.standins.discord_server import message_text

OTHER_GUILD = GUILD_ID + (1 << 22)  # the next shard over: GUILD_ID is on shard 1 of 2, this on 0
OTHER_CHANNEL = OTHER_GUILD + 10


@pytest.fixture
async def two_shards(start_bot, dc):
    dc.add_guild(OTHER_GUILD, "Second server")
    dc.add_channel(OTHER_GUILD, OTHER_CHANNEL, "general")
    assert (GUILD_ID >> 22) % 2 == 1 and (OTHER_GUILD >> 22) % 2 == 0
    settings = {
        "DISCORD_SHARD_COUNT": 2,
        "DISCORD_GUILD_ID": None,  # two servers: global commands
        "DISCORD_ANNOUNCE_CHANNEL_ID": ANNOUNCE_ID,
    }
    zero = await start_bot(DISCORD_SHARD_IDS="0", **settings)
    one = await start_bot(DISCORD_SHARD_IDS="1", **settings)
    return zero, one


def handled_by(runs, interaction) -> list[int]:
    """Which of the processes finished with ``interaction`` (by index), once each."""
    return [i for i, r in enumerate(runs) if r.bot.handlers.handled.counts.get(interaction.id)]


async def test_each_interaction_is_answered_once_by_the_process_holding_its_shard(two_shards, dc):
    runs = list(two_shards)
    assert [r.bot.client.shard_ids for r in runs] == [[0], [1]]
    assert dc.shards_connected == [(0, 2), (1, 2)]
    assert dc.command_puts == {None: 1}  # the second process found the commands up to date
    await open_round(runs[0].app)
    await fund(runs[0].app, actor(ALICE), 30 * USDC)

    cases = [  # (where, the shard Discord routes it to)
        ({"guild_id": GUILD_ID}, 1),
        ({"guild_id": OTHER_GUILD}, 0),
        ({"dm": True}, 0),
    ]
    for where, shard in cases:
        for user in (ALICE, BOB):
            interaction = await dc.slash(user, "balance", **where)
            await runs[shard].handled(interaction)
            assert interaction.shards == [(shard, 2)]
            assert handled_by(runs, interaction) == [shard]
            assert len(dc.calls_to("POST", rf"/interactions/{interaction.id}/")) == 1
            (answer,) = dc.answers(interaction)
            assert "Balance" in message_text(answer)

    # A paid attempt and its button, in the shard-1 server: one quote, one payment, one outcome.
    ask = await runs[1].slash(ALICE, "attempt", message="sharded hello", guild_id=GUILD_ID)
    quote = runs[1].answer(ask)
    press = await runs[1].click(ALICE, dc.buttons(quote)[0]["custom_id"])
    assert press.shards == [(1, 2)] and handled_by(runs, press) == [1]
    assert "The guardian refuses" in message_text(runs[1].answer(press))
    async with runs[0].app.engine.connect() as conn:
        paid = (await conn.execute(text("SELECT count(*) FROM attempts"))).scalar_one()
    assert paid == 1

    # The round's announcement is outbox work both processes may claim: it is posted once.
    for _ in range(500):
        async with runs[0].app.engine.connect() as conn:
            done = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM outbox WHERE topic = 'announcement' "
                        "AND channel = 'discord' AND done_at IS NOT NULL"
                    )
                )
            ).scalar_one()
        if done:
            break
        await asyncio.sleep(0.02)
    posted = [m for m in dc.messages_in(ANNOUNCE_ID) if "New round" in message_text(m)]
    assert len(posted) == 1


async def test_only_the_process_holding_the_team_server_keeps_team_channels(start_bot, dc):
    from core.actors import Actor
    from core.services import teams

    settings = {"DISCORD_SHARD_COUNT": 2, "DISCORD_GUILD_ID": GUILD_ID}
    zero = await start_bot(DISCORD_SHARD_IDS="0", **settings)
    one = await start_bot(DISCORD_SHARD_IDS="1", **settings)  # GUILD_ID is on shard 1
    assert zero.bot.client.get_guild(GUILD_ID) is None  # shard 0 never sees the server
    assert teams.SYNC not in zero.bot.delivery.topics and teams.SYNC in one.bot.delivery.topics

    # Teams made while both run: each channel is made by the process that sees the server; none
    # of the work is claimed, and failed, by the other.
    for n in range(6):
        captain = Actor("discord", str(1_320_000_000_000_000_100 + n), f"Captain {n}")
        await teams.create_team(zero.app, captain, f"Crew{n}", False)
    for _ in range(500):
        async with zero.app.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT done_at, failed_at FROM outbox WHERE topic = :t"),
                    {"t": teams.SYNC},
                )
            ).all()
        if len(rows) == 6 and all(r.done_at or r.failed_at for r in rows):
            break
        await asyncio.sleep(0.02)
    assert len(rows) == 6 and all(r.done_at and not r.failed_at for r in rows)
    names = {c["name"] for c in dc.channels.values() if c.get("guild_id") == str(GUILD_ID)}
    assert {f"team-crew{n}" for n in range(6)} <= names
