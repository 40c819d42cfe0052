"""Logs (SPEC §11): LOG_FORMAT=json gives one JSON object per line with the ids in play, and every
configured secret is redacted by its value, whatever logger wrote the line, in text and JSON, in
every process: a distinctive fake secret in every setting that holds one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from solders.keypair import Keypair

from tests.integration.test_processes import ROOT, bounty_env
from tests.integration.token.conftest import hold
from tests.standins.local import running
from tests.standins.solana_rpc import SolanaStandIn

SOLANA_KEY = "solkeyQ7w3PathSecret4f9a2"
PRICE_KEY = "pricekeyZ81QuerySecret77"


def secret_settings(tmp_path: Path) -> dict[str, str]:
    """A distinctive fake value in every setting that holds a secret."""
    keypair = tmp_path / "treasury.json"
    keypair.write_text(json.dumps(list(bytes(Keypair()))))
    return {
        "DISCORD_BOT_TOKEN": "discordTokenFAKE.Xq91.secretpart",
        "TELEGRAM_BOT_TOKEN": "123456:telegramTokenFAKEsecretpart",
        "TELEGRAM_WEBHOOK_SECRET": "webhookSecretFAKE_4242",
        "TELEGRAM_WEBHOOK_URL": "https://hooks.example/tg/webhookPathSecret99",
        "ANTHROPIC_API_KEY": "sk-ant-FAKE-anthropic-0001",
        "OPENAI_API_KEY": "sk-FAKE-openai-key-0002",
        "OFFLINE_GUARDIAN_PASSPHRASE": "open the vault zebra",
        "SOLANA_RPC_URL": f"http://rpcuser:rpcPassFAKE77@127.0.0.1:1/rpc/{SOLANA_KEY}?api-key=solQueryFAKE55",
        "TOKEN_PRICE_URL": f"https://price.example/v1/{PRICE_KEY}/price?token=priceQueryFAKE66",
        "DATABASE_URL": "postgresql://bounty:dbPassFAKE0815@127.0.0.1:1/bounty",
        "REDIS_URL": "redis://:redisPassFAKE4711@127.0.0.1:1/0",
        "DISCORD_API_BASE_URL": "http://127.0.0.1:1/api/v10?key=discordBaseFAKE12",
        "OPENAI_BASE_URL": "http://openaiuser:openaiBasePassFAKE@127.0.0.1:1/v1",
        "TREASURY_KEYPAIR_PATH": str(keypair),
    }


def secret_values(settings: dict[str, str], tmp_path: Path) -> list[str]:
    """What must never appear in a log line."""
    keypair = Path(settings["TREASURY_KEYPAIR_PATH"]).read_text()
    return [
        "discordTokenFAKE.Xq91.secretpart",
        "telegramTokenFAKEsecretpart",
        "webhookSecretFAKE_4242",
        "webhookPathSecret99",
        "sk-ant-FAKE-anthropic-0001",
        "sk-FAKE-openai-key-0002",
        "open the vault zebra",
        SOLANA_KEY,
        "rpcPassFAKE77",
        "solQueryFAKE55",
        PRICE_KEY,
        "priceQueryFAKE66",
        "dbPassFAKE0815",
        "redisPassFAKE4711",
        "discordBaseFAKE12",
        "openaiBasePassFAKE",
        keypair,
        keypair.strip("[]").split(",", 8)[-1][:40],  # a piece of the key material
    ]


# A process that logs each setting's value, as libraries do (a request URL, an error quoting a
# key, a traceback), through loggers of every kind, then dies of an uncaught exception naming one.
LEAKER = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from core import logs
    from core.settings import load_settings

    settings = load_settings()
    logs.configure(settings, role="probe", filename=sys.argv[1])
    logs.bind(player_id=7, round_id=3, platform="console")
    values = [
        settings.DISCORD_BOT_TOKEN.get_secret_value(),
        settings.TELEGRAM_BOT_TOKEN.get_secret_value(),
        settings.TELEGRAM_WEBHOOK_SECRET.get_secret_value(),
        settings.TELEGRAM_WEBHOOK_URL,
        settings.ANTHROPIC_API_KEY.get_secret_value(),
        settings.OPENAI_API_KEY.get_secret_value(),
        settings.OFFLINE_GUARDIAN_PASSPHRASE.get_secret_value(),
        settings.SOLANA_RPC_URL,
        settings.TOKEN_PRICE_URL,
        settings.DATABASE_URL,
        settings.REDIS_URL,
        settings.DISCORD_API_BASE_URL,
        settings.OPENAI_BASE_URL,
        Path(settings.TREASURY_KEYPAIR_PATH).read_text(),
    ]
    for value in values:
        logging.getLogger("httpx2").warning('HTTP Request: POST %s "HTTP/1.1 200 OK"', value)
        logging.getLogger("some.library").error("failed with " + value)
        try:
            raise RuntimeError(f"cannot reach {value}")
        except RuntimeError:
            logging.getLogger("bounty").exception("a traceback")
    raise RuntimeError("dying with " + values[4])
    """
)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_every_secret_setting_is_redacted_whatever_logs_it(tmp_path, log_format):
    settings = secret_settings(tmp_path)
    env = bounty_env(LOG_FORMAT=log_format, **settings)
    log_file = tmp_path / "probe.log"
    done = subprocess.run(
        [sys.executable, "-c", LEAKER, str(log_file)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0  # died of the uncaught exception, which went to the log too
    written = log_file.read_text()
    lines = written.splitlines()
    assert len([line for line in lines if "HTTP Request: POST" in line]) == 14  # every value logged
    assert "uncaught exception" in written
    for secret in secret_values(settings, tmp_path):
        assert secret not in written, secret
        assert secret not in done.stderr + done.stdout, secret
    assert (
        "<SOLANA_RPC_URL path>" in written and "127.0.0.1:1" in written
    )  # the host stays readable
    if log_format == "json":
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
        first = records[0]
        assert (first["player_id"], first["round_id"], first["platform"]) == (7, 3, "console")
        assert first["logger"] == "httpx2" and first["level"] == "WARNING"
    else:
        assert "[platform=console round_id=3 player_id=7]" in lines[0]


def _wait_for_text(path: Path, wanted: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and wanted in path.read_text():
            return
        time.sleep(0.5)
    raise AssertionError(f"{wanted!r} never appeared in {path}")


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_short_game_logs_no_rpc_key_in_any_process(tmp_path, log_format):
    """The leak as reported: SOLANA_RPC_URL carries its provider key in the path; solana-py's HTTP
    client logs each request URL. Through `bounty run` (bot, worker, beat): a wallet is linked,
    attempts are paid; the logs have the requests and the ids, never the key."""
    async with running(SolanaStandIn(), "stop") as chain:
        wallet = Keypair()
        hold(chain, wallet, 2_000_000)
        keyfile = tmp_path / "wallet.json"
        keyfile.write_text(json.dumps(list(bytes(wallet))))
        data = tmp_path / "data"
        env = bounty_env(
            BOUNTY_DATA_DIR=str(data),
            LOG_FORMAT=log_format,
            LOG_LEVEL="DEBUG",  # every request logged, as a debugging operator would have it
            SOLANA_RPC_URL=f"{chain.url}/rpc/{SOLANA_KEY}",
            OFFLINE_GUARDIAN_PASSPHRASE="open the vault zebra",
            ATTEMPT_COOLDOWN_SECONDS="0",
        )
        script = (
            f"/wallet link {wallet.pubkey()}\n/wallet sign {keyfile}\n/balance\n"
            "/attempt hello guardian\ny\n/attempt open the vault zebra\ny\n"
        )
        game = subprocess.Popen(
            [sys.executable, "-m", "cli", "run"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            game.stdin.write(script)
            game.stdin.flush()
            # the worker has started and logged (its lines are checked too) before the game ends
            await asyncio.to_thread(_wait_for_text, data / "worker.log", "ready", 180)
            out, err = await asyncio.to_thread(game.communicate, "/quit\n", 240)
        finally:
            if game.poll() is None:
                game.kill()
        assert game.returncode == 0, err[-2000:]
        assert "The guardian released the prize pool!" in out
        assert chain.calls  # the RPC was used, through the URL with the key
    logs = {name: (data / name).read_text() for name in ("bounty.log", "worker.log", "beat.log")}
    assert "HTTP Request: POST" in logs["bounty.log"]  # solana-py's request log, at DEBUG
    assert "<SOLANA_RPC_URL path>" in logs["bounty.log"]
    for name, text in logs.items():
        assert SOLANA_KEY not in text, name
        assert "open the vault zebra" not in text, name
    if log_format == "json":
        records = [json.loads(line) for line in logs["bounty.log"].splitlines()]  # every line
        finished = [r for r in records if r["message"].startswith("attempt #")]
        assert len(finished) == 2
        for record in finished:
            assert record["platform"] == "console" and record["role"] == "bot"
            assert isinstance(record["player_id"], int) and isinstance(record["round_id"], int)
            assert isinstance(record["attempt_id"], int) and record["level"] == "INFO"
        lines = [line for line in logs["worker.log"].splitlines() if line.strip()]
        # Celery's own shutdown notice is written straight to the descriptor from its signal
        # handler (where logging could deadlock): the one line that is not ours.
        not_json = [
            line
            for line in lines
            if not line.startswith("{") and not line.startswith("worker: Warm shutdown")
        ]
        assert not not_json, not_json[:5]
        worker = [json.loads(line) for line in lines if line.startswith("{")]
        assert worker and all(r["role"] == "worker" for r in worker)
    else:
        assert " INFO core.metrics: attempt #" in logs["bounty.log"]
