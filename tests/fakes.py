"""Fakes that subclass the real ports (never mocks of our own code)."""

from __future__ import annotations

import asyncio

from core.ports.guardian import Guardian, GuardianRequest, GuardianUnavailable, Verdict


class ScriptedGuardian(Guardian):
    """Answers from a script: 'reject', 'approve', 'fail' (GuardianUnavailable), 'crash', 'hang'."""

    name = "scripted"
    description = "scripted test guardian"

    def __init__(self, *script: str, default: str = "reject") -> None:
        self.script = list(script)
        self.default = default
        self.requests: list[GuardianRequest] = []
        self.entered = asyncio.Event()

    async def judge(self, request: GuardianRequest) -> Verdict:
        self.requests.append(request)
        self.entered.set()
        step = self.script.pop(0) if self.script else self.default
        if step == "hang":
            await asyncio.sleep(3600)
        if step == "fail":
            raise GuardianUnavailable("stand-in failure")
        if step == "crash":
            raise RuntimeError("unexpected")
        approved = step == "approve"
        return Verdict(approved, "ok" if approved else "no", step, self.name, ("approve_transfer",) if approved else ())
