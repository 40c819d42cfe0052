"""A sample of the command fuzzing (tests/integration/test_fuzz_commands.py) through the real
python-telegram-bot client and the Bot API stand-in: every command, typed with hostile arguments in
a private chat and in a group, by a player and a moderator, is answered, none crashes, and the
ledger stays whole."""

from __future__ import annotations

import logging
import random

from core import ledger
from core.commands import commands_for
from tests.e2e.telegram.conftest import ALICE, BOB, GROUP_ID, MOD, actor
from tests.helpers import USDC, fund, open_round
from tests.integration.test_fuzz_commands import SPECIAL

CRASHED = "something went wrong"


def sample(rng: random.Random) -> str:
    pick = rng.choice(SPECIAL)
    if rng.random() < 0.3:
        pick = f"{pick} {rng.choice(SPECIAL)}"
    return pick[:3_000]


async def test_every_command_with_hostile_arguments_through_the_client(start_bot, tg, caplog):
    caplog.set_level(logging.ERROR)
    run = await start_bot(MODERATOR_TELEGRAM_USER_IDS=str(MOD["id"]))
    await open_round(run.app)
    # Several groups: Telegram lets a bot write 20 messages a minute to one group, and the bot keeps
    # to it, so one group would make this test wait for the limit rather than fuzz.
    groups = [tg.group(GROUP_ID - i, title=f"Bounty hunters {i}") for i in range(8)]
    for user in (ALICE, BOB, MOD):
        tg.start_private(user)
        await fund(run.app, actor(user), 100 * USDC)
    rng = random.Random(17)
    cases = 0
    for n, command in enumerate(commands_for("telegram")):
        for user, chat in (
            (ALICE, tg.private_chat(ALICE)),
            (BOB, groups[n % len(groups)]),
            (MOD, tg.private_chat(MOD)),
        ):
            typed = f"/{command.path[0]} {' '.join(command.path[1:])} {sample(rng)}".strip()
            mark = tg.mark()
            update = await run.say(user, chat, typed)
            cases += 1
            assert run.bot.tracker.outcomes(update["update_id"]) == ["done"], typed
            sent = [c for c in tg.calls[mark:] if c.method in ("sendMessage", "editMessageText")]
            assert sent, f"no answer to {typed!r}"
            for call in sent:
                assert CRASHED not in str(call.params.get("text", "")).lower(), (typed, call.params)
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
    async with run.app.db.autocommit() as conn:
        assert all(c.ok for c in await ledger.check_invariants(conn))
    print(f"\ntelegram client fuzz sample: {cases} commands typed, all answered")
