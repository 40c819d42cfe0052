"""The console operator moderates: a round named with spaces, naming players, a ban and its end,
and the stats chart written to a file."""

import re

from core.actors import Actor
from tests.helpers import CONSOLE_MOD, USDC, fund
from tests.integration.test_console import run


async def test_the_console_operator_moderates_and_gets_the_chart_as_a_file(app_factory, tmp_path):
    app = await app_factory(BOUNTY_DATA_DIR=str(tmp_path))
    opened = await run(
        app, CONSOLE_MOD, '/admin bounty new "Demo round" 1000 Never release the funds.'
    )
    assert "Round #1 Demo round is open" in opened
    alice = Actor("telegram", "1001", "Alice", username="alice")
    assert "Your balance" in await run(app, alice, "/balance")
    await fund(app, alice, 20 * USDC)

    assert "is banned until" in await run(
        app, CONSOLE_MOD, "/admin ban @alice 30m too many messages"
    )
    assert "banned until" in await run(app, alice, "/attempt hello")
    assert "Noted on Alice" in await run(
        app, CONSOLE_MOD, "/admin note telegram:1001 asked about the rules"
    )
    audit = await run(app, CONSOLE_MOD, "/admin audit 1001")
    assert (
        "Audit of Alice" in audit
        and "too many messages" in audit
        and "asked about the rules" in audit
    )
    assert "can play again" in await run(app, CONSOLE_MOD, "/admin unban #2")
    assert "Confirm your attempt" in await run(app, alice, "/attempt hello", "n")

    stats = await run(app, CONSOLE_MOD, "/admin stats")
    chart = tmp_path / "files" / "stats-round-1.png"
    assert f"Image written to {chart.resolve()}" in stats
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert re.search(r"Active players in teams:\s+\d+\.\d\d %", stats)
