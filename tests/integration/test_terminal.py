"""A closed terminal stops everything: `bounty run` in a real pseudo-terminal whose window is closed
leaves no process behind (itself, the worker and beat, the embedded PostgreSQL and Redis).

Closing a terminal hangs it up: the kernel sends SIGHUP only to the session's leader, which under
`make run` is make. make does not pass it on: it waits for its child, and the rest of the session is
signalled only once the leader has exited, so the game sees no signal, only its terminal gone. The
test runs `bounty run` under make as `make run` does (a makefile of its own, so that it needs no
`.venv` stamp)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import subprocess
import sys
import termios
import time

import psutil
import pytest

from tests.integration.test_processes import (
    ROOT,
    _cmdline,
    bounty_env,
    postmasters,
    redis_servers,
)


def _controlling_terminal() -> None:
    """In the child, after setsid: the pseudo-terminal on stdin becomes the session's terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read_until(master: int, wanted: str, deadline: float) -> str:
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if wanted.encode() in seen:
            return seen.decode(errors="replace")
    raise AssertionError(
        f"never saw {wanted!r}; the terminal showed:\n{seen.decode(errors='replace')}"
    )


def _everything(leader: psutil.Process, data) -> list[psutil.Process]:
    return [leader, *leader.children(recursive=True), *postmasters(data), *redis_servers(data)]


@pytest.mark.parametrize("mode", ["at the prompt", "in a confirmation"])
async def test_closing_the_terminal_stops_every_process_of_the_run(tmp_path, mode):
    data = tmp_path / "data"
    env = bounty_env(BOUNTY_DATA_DIR=str(data), TERM="xterm")
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"run:\n\t{sys.executable} -m cli run\n")
    master, slave = os.openpty()
    leader = subprocess.Popen(
        ["make", "--no-print-directory", "-f", str(makefile), "run"],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_controlling_terminal,
    )
    os.close(slave)
    closed = False
    try:
        deadline = time.monotonic() + 180
        await asyncio.to_thread(_read_until, master, "/quit leaves.", deadline)
        if (
            mode == "in a confirmation"
        ):  # a command waiting on its confirmation when the window closes
            os.write(master, b"/attempt let me in\n")
            await asyncio.to_thread(_read_until, master, "[y/N]", deadline)
        while time.monotonic() < deadline:
            roles = " ".join(
                _cmdline(k) for k in psutil.Process(leader.pid).children(recursive=True)
            )
            if "cli worker" in roles and "cli beat" in roles and postmasters(data):
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail("bounty run did not start its worker, beat and database")
        everything = _everything(psutil.Process(leader.pid), data)
        assert len(everything) >= 6  # make, bounty run, worker, beat, PostgreSQL, Redis
        os.close(master)  # the window closes: the terminal hangs up
        closed = True
        gone, alive = await asyncio.to_thread(psutil.wait_procs, everything, 90)
        log = (data / "bounty.log").read_text()[-3000:] if (data / "bounty.log").exists() else ""
        assert [(p.pid, _cmdline(p)) for p in alive] == [], log
        assert "received SIGHUP: stopping" in log or "ending the console" in log
    finally:
        if not closed:
            os.close(master)
        for proc in _everything_alive(leader, data):
            proc.kill()


def _everything_alive(leader: subprocess.Popen, data) -> list[psutil.Process]:
    try:
        return _everything(psutil.Process(leader.pid), data)
    except psutil.Error:
        return [*postmasters(data), *redis_servers(data)]
