"""A sample of the command fuzzing (tests/integration/test_fuzz_commands.py) through the real
discord.py client and the gateway/REST stand-in: every slash command with hostile option values
(within what Discord's client lets through: lengths and integer ranges), by a player and a
moderator, is answered, none crashes, and the ledger stays whole."""

from __future__ import annotations

import logging
import random

from bots.discord.commands import DISCORD_INT
from core import ledger
from core.commands import commands_for
from core.commands.docs import discord_path
from tests.e2e.discord.conftest import ALICE, MOD_ROLE_ID, MONA, actor
from tests.helpers import USDC, fund, open_round
from tests.integration.test_fuzz_commands import SPECIAL
from tests.standins.discord_server import message_text

CRASHED = "something went wrong"


def option_value(arg, rng: random.Random):
    if arg.kind == "int":
        low = arg.min_value if arg.min_value is not None else -DISCORD_INT
        high = min(arg.max_value if arg.max_value is not None else DISCORD_INT, DISCORD_INT)
        return rng.choice([low, high, max(low, min(high, 0)), rng.randint(low, high)])
    return rng.choice(SPECIAL)[: arg.limit()] or "x"


async def test_every_slash_command_with_hostile_options_through_the_client(start_bot, caplog):
    caplog.set_level(logging.ERROR)
    run = await start_bot()
    await open_round(run.app)
    for user in (ALICE, MONA):
        await fund(run.app, actor(user), 100 * USDC)
    rng = random.Random(23)
    cases = 0
    commands = commands_for("discord")
    for command in commands:
        name = " ".join(discord_path(command, commands))
        user, roles = (MONA, (MOD_ROLE_ID,)) if command.moderator else (ALICE, ())
        for _ in range(2):
            options = {
                a.name: option_value(a, rng)
                for a in command.args
                if a.required or rng.random() < 0.5
            }
            interaction = await run.slash(user, name, roles=roles, **options)
            cases += 1
            answers = run.dc.answers(interaction)
            assert answers, f"/{command.name} {options} was not answered"
            for message in answers:
                assert CRASHED not in message_text(message).lower(), (command.name, options)
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
    async with run.app.db.autocommit() as conn:
        assert all(c.ok for c in await ledger.check_invariants(conn))
    print(f"\ndiscord client fuzz sample: {cases} slash commands, all answered")
