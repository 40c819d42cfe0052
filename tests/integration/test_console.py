"""The console adapter in-process: every core command is reachable, confirmations, bad input."""

from bots.console import handle_line
from core.commands import COMMANDS
from tests.helpers import PASSPHRASE, USDC, fund, open_round, player


def script(*lines: str):
    queue = list(lines)

    async def read_line():
        return queue.pop(0) if queue else None

    return read_line


async def run(app, actor, line: str, *answers: str) -> str:
    out: list[str] = []
    await handle_line(app, actor, line, script(*answers), out.append)
    return "\n".join(out)


async def test_every_core_command_is_reachable_from_the_console(app):
    await open_round(app)
    me = player("console-user")
    for cmd in COMMANDS:
        text = await run(app, me, "/" + cmd.name)
        # a command that needs arguments answers with what is missing; none is "unknown"
        assert "Unknown command" not in text, cmd.name
        if any(a.required for a in cmd.args):
            assert "missing" in text, (cmd.name, text)
        if cmd.bare_name:
            assert "Unknown command" not in await run(app, me, f"/{cmd.name} {cmd.bare_name}")


async def test_attempt_confirmed_cancelled_and_won(app):
    await open_round(app)
    me = player("c")
    await fund(app, me, 100 * USDC)
    cancelled = await run(app, me, "/attempt hello there", "n")
    assert "at most 10.20 USDC" in cancelled
    assert "Cancelled" in cancelled and "Nothing was charged" in cancelled
    refused = await run(app, me, "/attempt hello there", "y")
    assert "The guardian refuses" in refused and "10.00 USDC" in refused
    won = await run(app, me, f"/attempt {PASSPHRASE}", "yes")
    assert "released the prize pool" in won


async def test_bad_input_is_answered_not_crashed(app):
    await open_round(app)
    me = player("d")
    assert "Commands start with a slash" in await run(app, me, "attempt hi")
    assert "Unknown command /nope" in await run(app, me, "/nope")
    assert "`amount`" in await run(app, me, "/limits daily -3")
    assert "too long" in await run(app, me, "/attempt " + "x" * 5_000)
    assert "balance" in (await run(app, me, "/attempt hi")).lower()  # no money: refused with the reason
