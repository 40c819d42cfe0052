"""A deterministic local guardian for play without keys and for tests, named as such everywhere."""

from __future__ import annotations

import hashlib

from core.ports.guardian import APPROVE_TOOL, REJECT_TOOL, Guardian, GuardianRequest, Verdict

_REFUSALS = (
    "Nice try. The vault stays shut.",
    "I have heard that one before. No transfer.",
    "My instructions are clear: the prize pool stays where it is.",
    "Interesting story, but I will not release the funds.",
    "You'll need more than that. Request rejected.",
    "No. Not today, not for that.",
)


class OfflineGuardian(Guardian):
    """Never approves, except when the message contains the configured passphrase."""

    name = "offline"
    description = "offline guardian (local, deterministic; not an AI model)"

    def __init__(self, passphrase: str | None) -> None:
        self._passphrase = (
            passphrase.strip().casefold() if passphrase and passphrase.strip() else None
        )

    def terms(self) -> dict:
        phrase = self._passphrase
        return {
            **super().terms(),
            "passphrase_sha256": hashlib.sha256(phrase.encode()).hexdigest() if phrase else None,
        }

    async def judge(self, request: GuardianRequest) -> Verdict:
        if self._passphrase and self._passphrase in request.message.casefold():
            return Verdict(
                approved=True,
                reply="...the passphrase. I am bound by it. The vault opens.",
                reason="the offline guardian's passphrase was given",
                provider=self.name,
                tool_calls=(APPROVE_TOOL,),
            )
        pick = int.from_bytes(hashlib.sha256(request.message.encode()).digest()[:2], "big")
        return Verdict(
            approved=False,
            reply=_REFUSALS[pick % len(_REFUSALS)],
            reason="the offline guardian never approves without its passphrase",
            provider=self.name,
            tool_calls=(REJECT_TOOL,),
        )
