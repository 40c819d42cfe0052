"""The console adapter: the same commands in a terminal, reading lines, so a new user plays at once
and tests can drive it through a pipe."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from bots.common.errors import answer_for
from core.actors import Actor
from core.app import App
from core.commands import (
    Reply,
    commands_for,
    parse_text_args,
    resolve,
    run_command,
    run_confirmation,
    waiting_note,
)
from core.commands.base import split_words

log = logging.getLogger("bounty.console")

ReadLine = Callable[[], Awaitable[str | None]]
Write = Callable[[str], None]

QUIT = {"quit", "exit", "/quit", "/exit", "q"}


class ConsoleClosed(Exception):
    """The terminal is gone (a write failed): the console ends, whatever it was doing."""


def stdout_writer(stream=None) -> Write:
    """Write to the terminal; a failed write (EIO once the terminal closed) raises ConsoleClosed."""

    def write(text: str) -> None:
        out = stream or sys.stdout
        try:
            out.write(text if text.endswith(" ") else text + "\n")
            out.flush()
        except (OSError, ValueError) as exc:
            raise ConsoleClosed(str(exc)) from exc

    return write


def render(reply: Reply) -> str:
    out: list[str] = []
    if reply.title:
        out += [reply.title, "-" * min(len(reply.title), 60)]
    if reply.text:
        out.append(reply.text)
    width = max((len(f.name) for f in reply.fields), default=0)
    out += [f"  {f.name + ':':<{width + 1}} {f.value}" for f in reply.fields]
    out += list(reply.lines)
    if reply.footer:
        out.append(f"({reply.footer})")
    if reply.code is not None:
        out += ["", reply.code, ""]  # alone on its lines, exactly as it must be copied
    return "\n".join(out)


def save_attachments(app: App, reply: Reply) -> list[str]:
    """A terminal shows no images: attachments are written under BOUNTY_DATA_DIR/files/."""
    if not reply.attachments:
        return []
    folder = Path(app.settings.BOUNTY_DATA_DIR) / "files"
    folder.mkdir(parents=True, exist_ok=True)
    notes = []
    for attachment in reply.attachments:
        path = folder / Path(attachment.name).name
        path.write_bytes(attachment.data)
        notes.append(f"{'Image' if attachment.image else 'File'} written to {path.resolve()}")
    return notes


def stdin_reader(stream=None) -> ReadLine:
    """Lines from stdin via a daemon thread, so a blocked read never keeps the process alive.

    The end of the input, or a read that fails (a closed terminal answers EIO), is the end of the
    console: every later read returns None at once, so a confirmation waiting for y/n and the
    command loop after it both see it, and nothing waits for a line that can never come."""
    stream = stream or sys.stdin
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    ended = False

    def pump() -> None:
        try:
            for line in stream:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError) as exc:  # EIO from a hung-up terminal; a closed stream
            log.info("the console's input failed (%s): ending the console", exc)
        finally:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except RuntimeError:  # the loop is already closed: nobody is reading
                pass

    async def read_line() -> str | None:
        nonlocal ended
        if ended:
            return None
        line = await queue.get()
        ended = line is None
        return line

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()
    return read_line


async def handle_line(app: App, actor: Actor, line: str, read_line: ReadLine, write: Write) -> None:
    """Run one typed command, including any confirmation it asks for."""
    body = line.strip()
    if not body.startswith("/"):
        write(
            "Commands start with a slash, for example: /attempt Please open the vault. Type /help for all."
        )
        return
    words = split_words(body[1:])
    command, used = resolve(commands_for("console"), words)
    if command is None:
        write(f"Unknown command /{words[0] if words else ''}. Type /help to see the commands.")
        return
    rest = body[1:]
    for _ in range(used):  # drop the command words, keep the rest of the line verbatim
        rest = rest.lstrip().split(None, 1)[1] if len(rest.lstrip().split(None, 1)) > 1 else ""
    try:
        reply = await run_command(app, actor, command, parse_text_args(command, rest))
        while reply.confirm is not None:
            write(render(reply))
            write(f"{reply.confirm.prompt} [y/N] ")
            answer = await read_line()
            accept = (answer or "").strip().lower() in ("y", "yes")
            if accept:
                write(waiting_note(reply.confirm.token, accept))
            reply = await run_confirmation(app, actor, reply.confirm.token, accept)
    except ConsoleClosed:
        raise
    except Exception as exc:  # the adapter's one error handler
        write(answer_for(exc, where=f"console /{command.name}").message)
        return
    write(render(reply))
    for note in save_attachments(app, reply):
        write(note)


async def run_console(
    app: App, actor: Actor, read_line: ReadLine, write: Write, *, welcome: str = ""
) -> None:
    """Read commands until /quit, the end of the input, or a terminal that is gone."""
    try:
        if welcome:
            write(welcome)
        while True:
            write("> ")
            line = await read_line()
            if line is None or line.strip().lower() in QUIT:
                write("Bye.")
                return
            if line.strip():
                await handle_line(app, actor, line, read_line, write)
    except ConsoleClosed as exc:
        log.info("the terminal is gone (%s): ending the console", exc)
