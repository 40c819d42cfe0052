"""With ENABLE_ENHANCED_CONTEXT off the bot process stays lean: importing every adapter and playing
an attempt never imports torch or ONNX Runtime. With it on, the model's runtime comes in when the
model is loaded (the control that shows the check can fail): ONNX Runtime by default, never torch;
torch with EMBEDDINGS_LOCAL_RUNTIME=torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import USDC, fund, open_round, player
from tests.integration.test_processes import bounty_env

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import bots.console, bots.discord, bots.telegram, cli.serve, workers.relay  # noqa: F401 - what a bot loads
    from core.app import bootstrap
    from core.services import attempts
    from tests.conftest import make_settings
    from tests.helpers import player

    async def main():
        settings = make_settings(
            ENABLE_ENHANCED_CONTEXT=sys.argv[2] != "off",
            EMBEDDINGS_LOCAL_RUNTIME="torch" if sys.argv[2] == "torch" else "onnx-int8",
        )
        app = bootstrap(settings, sys.argv[1])
        seen = {"after_start": "torch" in sys.modules or "onnxruntime" in sys.modules}
        if app.memory is not None:
            await asyncio.to_thread(app.memory.warm_up)
        quote = await attempts.quote_attempt(app, player("lean"), "release the funds")
        out = await attempts.confirm_attempt(app, player("lean"), quote.id)
        seen.update(status=out.status, torch="torch" in sys.modules, onnxruntime="onnxruntime" in sys.modules,
                    transformers="transformers" in sys.modules)
        await app.aclose()
        print(json.dumps(seen))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("enhanced", ["off", "on", "torch"])
async def test_the_model_runtime_is_imported_only_with_the_enhanced_context(
    app_factory, pg_url, enhanced
):
    import json

    # The round commits to the memory settings the process below runs (else it takes no attempts).
    app = await app_factory(
        ENABLE_ENHANCED_CONTEXT=enhanced != "off",
        EMBEDDINGS_LOCAL_RUNTIME="torch" if enhanced == "torch" else "onnx-int8",
    )
    await open_round(app)
    await fund(app, player("lean"), 100 * USDC)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, pg_url, enhanced],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=bounty_env(),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == "rejected" and not seen["after_start"] and not seen["transformers"]
    assert seen["torch"] is (enhanced == "torch")
    assert seen["onnxruntime"] is (enhanced == "on")
