"""A local game (the embedded database) is a demo unless LOCAL_GAME_REAL_MONEY says it is real:
then no demo credits, deposits and withdrawals are the real ones, and the start says so; a demo
database never turns into a real one."""

from __future__ import annotations

import asyncio

from tests.integration.test_processes import bounty_env, run_cli

SCRIPT = "/bounty\n/balance\n/withdraw 1\n/quit\n"


async def test_a_local_game_is_real_only_when_the_setting_says_so(tmp_path):
    demo_dir, real_dir = tmp_path / "demo", tmp_path / "real"
    demo = await asyncio.to_thread(
        run_cli, "play", env=bounty_env(BOUNTY_DATA_DIR=str(demo_dir)), stdin=SCRIPT, timeout=180
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "A demo round is open and you have 200 demo USDC" in demo.stdout
    assert "demo credits are not money and cannot be withdrawn" in demo.stdout

    # The same (demo) database with the setting: refused, nothing started
    refused = await asyncio.to_thread(
        run_cli,
        "play",
        env=bounty_env(BOUNTY_DATA_DIR=str(demo_dir), LOCAL_GAME_REAL_MONEY="true"),
        stdin=SCRIPT,
        timeout=180,
    )
    assert refused.returncode == 2
    assert "is a demo game: its demo credits cannot become real money" in refused.stderr

    real = await asyncio.to_thread(
        run_cli,
        "play",
        env=bounty_env(BOUNTY_DATA_DIR=str(real_dir), LOCAL_GAME_REAL_MONEY="true"),
        stdin=SCRIPT,
        timeout=180,
    )
    assert real.returncode == 0, real.stderr[-2000:]
    out = real.stdout
    assert "REAL MONEY: LOCAL_GAME_REAL_MONEY is set" in out and "back it up (bounty backup)" in out
    assert "demo" not in out.lower()  # no demo round, no demo credits, no demo refusal
    assert "0.00 USDC" in out
    log = (real_dir / "bounty.log").read_text()
    assert "WARNING bounty: LOCAL_GAME_REAL_MONEY is set" in log
