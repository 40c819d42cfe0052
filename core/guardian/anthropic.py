"""The Claude guardian: Anthropic's Messages API with the two tools and a cached system prompt."""

from __future__ import annotations

import logging
from typing import Any

import anthropic

from core.guardian.sdk import sdk_call
from core.ports.guardian import (
    APPROVE_TOOL,
    QUOTED_HISTORY_RULES,
    REJECT_TOOL,
    TOOL_DESCRIPTIONS,
    TOOL_PARAMETERS,
    Guardian,
    GuardianRequest,
    GuardianUnavailable,
    Verdict,
    unquotable,
    verdict_from_tool_calls,
)

log = logging.getLogger(__name__)

MAX_TOKENS = 512
TOOLS = [
    {"name": name, "description": TOOL_DESCRIPTIONS[name], "input_schema": TOOL_PARAMETERS}
    for name in (APPROVE_TOOL, REJECT_TOOL)
]


def system_blocks(request: GuardianRequest) -> list[dict[str, Any]]:
    """The round's secret prompt, then the rule about quoted history: the same bytes on every attempt
    of the round, cached. Nothing a player wrote is ever in the system prompt."""
    return [
        {"type": "text", "text": request.system_prompt},
        {"type": "text", "text": QUOTED_HISTORY_RULES, "cache_control": {"type": "ephemeral"}},
    ]


def alternating_turns(request: GuardianRequest) -> list[dict[str, Any]]:
    """History and the new message as strictly alternating user/assistant turns, user first and last;
    the last user turn begins with the quoted-history block (the memory), when there is one.

    Empty replies are skipped and neighbours of the same role merged, since the API wants turns
    to alternate; a conversation never starts with the guardian."""
    turns: list[dict[str, Any]] = []
    pairs = [
        ("user", unquotable(t.text)) if t.role == "player" else ("assistant", t.text)
        for t in request.history
    ]
    for role, text in [*pairs, ("user", unquotable(request.message))]:
        if not text.strip():
            continue
        if not turns and role == "assistant":
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": role, "content": text})
    if request.context:
        last = turns[-1]
        last["content"] = [
            {"type": "text", "text": request.context},
            {"type": "text", "text": last["content"]},
        ]
    return turns


def _reason(tool_input: object) -> str:
    if isinstance(tool_input, dict) and isinstance(tool_input.get("reason"), str):
        return tool_input["reason"]
    return "unreadable"


class AnthropicGuardian(Guardian):
    """Claude decides; only a tool_use block it produced can approve, never text."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout: float,
        max_retries: int = 2,
    ) -> None:
        self.model = model
        self.description = f"Anthropic Claude guardian ({model})"
        self._timeout = timeout
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    async def judge(self, request: GuardianRequest) -> Verdict:
        system = system_blocks(request)
        async with sdk_call(
            api="Anthropic",
            settings_hint="ANTHROPIC_API_KEY and ANTHROPIC_MODEL",
            timeout=self._timeout,
            status_error=anthropic.APIStatusError,
            base_error=anthropic.AnthropicError,
        ):
            message = await self._client.messages.create(
                model=self.model,
                max_tokens=MAX_TOKENS,
                system=system,  # type: ignore[arg-type]
                tools=TOOLS,  # type: ignore[arg-type]
                messages=alternating_turns(request),  # type: ignore[arg-type]
            )
        return self._verdict(message)

    def _verdict(self, message: object) -> Verdict:
        content = getattr(message, "content", None)
        if not isinstance(content, list):
            log.warning("anthropic guardian: malformed response (no content list)")
            raise GuardianUnavailable("the Anthropic API answered a malformed message")
        calls: list[tuple[str, str]] = []
        texts: list[str] = []
        for block in content:
            kind = getattr(block, "type", None)
            if kind == "tool_use":
                calls.append(
                    (str(getattr(block, "name", "")), _reason(getattr(block, "input", None)))
                )
            elif kind == "text":
                texts.append(str(getattr(block, "text", "")))
        return verdict_from_tool_calls(self.name, calls, "\n".join(t for t in texts if t.strip()))

    async def aclose(self) -> None:
        await self._client.close()
