"""What a round commits to when it opens, so anyone can check after it ends that nothing that decides
a win changed while it ran.

The commitment is the SHA-256 of one canonical JSON document: the guardian's prompt, the guardian
(provider, model, the two tools as they are sent, the rules about quoted history; for the offline
guardian the hash of its passphrase), the memory settings the guardian's context follows, and a
random salt (so a short prompt cannot be found by trying). The hash is published when the round
opens; the document itself when it ends (``/bounty log``). A process whose guardian or memory
differs from what the open round committed to takes no attempts for it (``check_config``).

Each attempt's public hash is ``sha256("<salt>:<text>")`` with a salt of its own, revealed with the
text when the round ends: a guessed text cannot be confirmed before. docs/verify.md shows how to
recompute every hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from typing import TYPE_CHECKING

from core.errors import RoundNotActive
from core.ports.guardian import (
    APPROVE_TOOL,
    QUOTED_HISTORY_RULES,
    REJECT_TOOL,
    TOOL_DESCRIPTIONS,
    TOOL_PARAMETERS,
)

if TYPE_CHECKING:
    from core.app import App

log = logging.getLogger(__name__)

VERSION = 1


def canonical(document: dict) -> str:
    """The one way a document is written: keys sorted, no spaces, UTF-8 as is."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config(app: App) -> dict:
    """The guardian and the memory as this process runs them."""
    settings = app.settings
    embedder = app.memory.embedder.model if app.memory is not None else None
    return {
        "guardian": {
            **app.guardian.terms(),
            "tools": [
                {
                    "name": name,
                    "description": TOOL_DESCRIPTIONS[name],
                    "parameters": TOOL_PARAMETERS,
                }
                for name in (APPROVE_TOOL, REJECT_TOOL)
            ],
            "quoted_history_rules": QUOTED_HISTORY_RULES,
        },
        "memory": {
            "enhanced_context": settings.ENABLE_ENHANCED_CONTEXT,
            "context_tokens": settings.MEMORY_CONTEXT_TOKENS,
            "similar_k": settings.MEMORY_SIMILAR_K,
            "similarity_threshold": str(settings.MEMORY_SIMILARITY_THRESHOLD),
            "embeddings_model": embedder,
        },
    }


def config_sha256(app: App) -> str:
    return sha256_hex(canonical(config(app)))


def new_commitment(app: App, prompt: str) -> tuple[str, str]:
    """The document a round opening now commits to, and its SHA-256."""
    document = canonical(
        {"version": VERSION, "prompt": prompt, "salt": secrets.token_hex(16), **config(app)}
    )
    return document, sha256_hex(document)


def check_config(app: App, committed: str | None, round_name: str) -> None:
    """Refuse to take attempts for a round that committed to another guardian or memory than this
    process runs (a setting changed since it opened): that would change what decides a win."""
    if committed is None or committed == config_sha256(app):
        return
    log.error(
        "round %s committed to another guardian or memory configuration than this process runs; "
        "attempts are refused until it is restored",
        round_name,
    )
    raise RoundNotActive(
        f"Round {round_name} cannot take attempts here right now: the guardian's configuration "
        "differs from what the round committed to when it opened. Moderators have been alerted."
    )


def attempt_hash(salt: str | None, text: str) -> str:
    """An attempt's public hash: ``sha256("<salt>:<text>")`` (no salt: attempts from before salts)."""
    return sha256_hex(text if salt is None else f"{salt}:{text}")
