"""The OpenAI guardian: chat completions with the two tools as functions."""

from __future__ import annotations

import json
import logging
from typing import Any

import openai

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

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": TOOL_DESCRIPTIONS[name],
            "parameters": TOOL_PARAMETERS,
        },
    }
    for name in (APPROVE_TOOL, REJECT_TOOL)
]


def chat_messages(request: GuardianRequest) -> list[dict[str, Any]]:
    """The system prompt and the rule about quoted history, the player's past exchanges, then the
    user's turn: the quoted-history block (the memory, when there is one) and the new message as two
    parts. Other players' texts are only ever in that block, never in the system message. Empty turns
    are left out: an empty assistant message says nothing."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"{request.system_prompt}\n\n{QUOTED_HISTORY_RULES}"}
    ]
    for turn in request.history:
        if turn.text.strip():
            player = turn.role == "player"
            messages.append(
                {
                    "role": "user" if player else "assistant",
                    "content": unquotable(turn.text) if player else turn.text,
                }
            )
    message = unquotable(request.message)
    if request.context:
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": request.context},
                    {"type": "text", "text": message},
                ],
            }
        )
    else:
        messages.append({"role": "user", "content": message})
    return messages


def _reason(arguments: object) -> str:
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("reason"), str):
        return parsed["reason"]
    return "unreadable"


class OpenAIGuardian(Guardian):
    """A GPT model decides; only a function call it produced can approve, never text."""

    name = "openai"

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
        self.description = f"OpenAI guardian ({model})"
        self._timeout = timeout
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    async def judge(self, request: GuardianRequest) -> Verdict:
        async with sdk_call(
            api="OpenAI",
            settings_hint="OPENAI_API_KEY and OPENAI_MODEL",
            timeout=self._timeout,
            status_error=openai.APIStatusError,
            base_error=openai.OpenAIError,
        ):
            completion = await self._client.chat.completions.create(
                model=self.model,
                messages=chat_messages(request),  # type: ignore[arg-type]
                tools=TOOLS,  # type: ignore[arg-type]
                tool_choice="auto",
            )
        return self._verdict(completion)

    def _verdict(self, completion: object) -> Verdict:
        choices = getattr(completion, "choices", None)
        message = (
            getattr(choices[0], "message", None) if isinstance(choices, list) and choices else None
        )
        if message is None:
            log.warning("openai guardian: malformed response (no choice message)")
            raise GuardianUnavailable("the OpenAI API answered a malformed completion")
        calls: list[tuple[str, str]] = []
        for call in getattr(message, "tool_calls", None) or []:
            function: Any = getattr(call, "function", None)
            if function is None:
                continue  # not a function call (a custom tool we never offered)
            calls.append(
                (str(getattr(function, "name", "")), _reason(getattr(function, "arguments", None)))
            )
        text = getattr(message, "content", None)
        return verdict_from_tool_calls(self.name, calls, text if isinstance(text, str) else "")

    async def aclose(self) -> None:
        await self._client.close()
