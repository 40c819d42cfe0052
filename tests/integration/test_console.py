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
    assert (
        "balance" in (await run(app, me, "/attempt hi")).lower()
    )  # no money: refused with the reason


async def test_text_to_copy_stands_alone_and_attachments_are_written_to_files(
    app_factory, tmp_path
):
    from core.commands import Attachment, Command, Reply
    from tests.helpers import tiny_png

    app = await app_factory(BOUNTY_DATA_DIR=str(tmp_path))

    async def sign(ctx, args):
        return Reply(
            title="Sign this",
            code="line one\nline two",
            attachments=(Attachment("chart.png", tiny_png(), image=True),),
        )

    added = Command(("sign",), "Show a challenge.", sign)
    COMMANDS.append(added)
    try:
        text = await run(app, player("e"), "/sign")
    finally:
        COMMANDS.remove(added)
    assert "\n\nline one\nline two\n" in text
    saved = tmp_path / "files" / "chart.png"
    assert saved.read_bytes() == tiny_png()
    assert f"Image written to {saved.resolve()}" in text
