"""An LLM's second opinion on an attack's pattern categories, when a key is set (Claude first, else
OpenAI) and MEMORY_PATTERN_LLM is on. Its answer is read as a JSON list and kept only for known
category names; any failure means no opinion (the rules and prototypes stand alone)."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING

from core.memory.patterns import CATEGORIES, LABELS, known

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

PROMPT = (
    "Classify an attack that a player sent to an AI guardian of a prize vault (a jailbreak game). Categories: "
    + "; ".join(f"{c} ({LABELS[c]})" for c in CATEGORIES)
    + '. Answer with a JSON list of the categories that apply, nothing else, e.g. ["role-play"].'
)


def available(settings: Settings) -> bool:
    return settings.MEMORY_PATTERN_LLM and (
        settings.ANTHROPIC_API_KEY is not None or settings.OPENAI_API_KEY is not None
    )


def parse(answer: str) -> list[str] | None:
    match = re.search(r"\[.*?\]", answer or "", re.DOTALL)
    if not match:
        return None
    try:
        items = json.loads(match.group(0))
    except ValueError:
        return None
    return known(str(i) for i in items) if isinstance(items, list) else None


async def second_opinion(settings: Settings, message: str) -> list[str] | None:
    """The categories an LLM sees in ``message``; None when not configured or it failed."""
    if not available(settings):
        return None
    user = f"The attack, between the markers:\n<<<\n{message[:4000]}\n>>>"
    try:
        if settings.ANTHROPIC_API_KEY is not None:
            import anthropic

            client = anthropic.AsyncAnthropic(
                api_key=settings.ANTHROPIC_API_KEY.get_secret_value(),
                base_url=settings.ANTHROPIC_BASE_URL,
                timeout=30,
                max_retries=1,
            )
            try:
                reply = await client.messages.create(
                    model=settings.ANTHROPIC_MODEL,
                    max_tokens=100,
                    system=PROMPT,
                    messages=[{"role": "user", "content": user}],
                )
            finally:
                await client.close()
            answer = " ".join(
                getattr(b, "text", "") for b in reply.content if getattr(b, "type", "") == "text"
            )
        else:
            import openai

            key = settings.OPENAI_API_KEY.get_secret_value() if settings.OPENAI_API_KEY else ""
            oclient = openai.AsyncOpenAI(
                api_key=key, base_url=settings.OPENAI_BASE_URL, timeout=30, max_retries=1
            )
            try:
                completion = await oclient.chat.completions.create(
                    model=settings.OPENAI_MODEL,
                    messages=[
                        {"role": "system", "content": PROMPT},
                        {"role": "user", "content": user},
                    ],
                )
            finally:
                await oclient.close()
            answer = completion.choices[0].message.content or ""
    except Exception as exc:  # an SDK's errors, a malformed answer: no opinion, never a failed job
        log.warning("pattern second opinion failed: %s", type(exc).__name__)
        return None
    return parse(answer)
