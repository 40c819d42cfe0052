"""Answers an interaction could not carry (Discord refused it past discord.py's retries, or the
interaction expired or vanished): kept in the outbox and sent as messages later, a direct message if
the answer was private, else in the channel it was asked in.

Every message the bot creates from the outbox carries a nonce made of the outbox row's id (with
``enforce_nonce``): when a create is retried, by discord.py after a lost answer or by the outbox after
a failure or a crash between sending and marking done, Discord returns the message it already made
instead of posting it again."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import discord

from bots.discord.render import OutMessage
from core.commands import Confirm

LATE_ANSWER = "answer"  # outbox topic
LATE_TTL = timedelta(days=1)
MAX_NONCE = 25  # Discord's limit on a nonce's length


def nonce(kind: str, row_id: int, index: int) -> str:
    """The nonce of message ``index`` sent for outbox row ``row_id`` (``kind``: a letter)."""
    value = f"{kind}{row_id}.{index}"
    if len(value) > MAX_NONCE:
        raise ValueError(f"nonce too long: {value!r}")
    return value


def _message(m: OutMessage) -> dict[str, Any]:
    confirm = m.confirm
    return {
        "content": m.content,
        "embed": m.embed.to_dict() if m.embed is not None else None,
        "files": [[name, base64.b64encode(data).decode()] for name, data in m.files],
        "confirm": None
        if confirm is None
        else {
            "token": confirm.token,
            "prompt": confirm.prompt,
            "accept_label": confirm.accept_label,
            "cancel_label": confirm.cancel_label,
            "expires_at": confirm.expires_at.isoformat(),
        },
    }


def late_payload(messages: list[OutMessage], *, user_id: int, channel_id: int | None) -> dict:
    """The outbox row of an answer kept for later: to ``channel_id``, or to the user directly."""
    return {
        "user_id": str(user_id),
        "channel_id": str(channel_id) if channel_id is not None else None,
        "messages": [_message(m) for m in messages],
    }


def late_messages(payload: dict) -> list[OutMessage]:
    out = []
    for m in payload["messages"]:
        c = m.get("confirm")
        out.append(
            OutMessage(
                embed=discord.Embed.from_dict(m["embed"]) if m.get("embed") else None,
                files=[(name, base64.b64decode(data)) for name, data in m.get("files") or ()],
                confirm=Confirm(
                    c["token"],
                    c["prompt"],
                    c["accept_label"],
                    c["cancel_label"],
                    datetime.fromisoformat(c["expires_at"]),
                )
                if c
                else None,
                content=m.get("content"),
            )
        )
    return out
