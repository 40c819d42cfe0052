"""Who is speaking, in platform-neutral words: the core never sees a discord.Member or telegram.User."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    platform: str  # "discord", "telegram" or "console"
    external_id: str  # the platform's user id, as text
    display_name: str
    roles: frozenset[str] = field(default_factory=frozenset)  # Discord role ids
    chat_id: str | None = None  # channel or chat the command came from
    private_chat: bool = True  # a DM / private chat / the console
    username: str | None = (
        None  # the platform's handle (Telegram @username, Discord username), if any
    )
    # Others in the chat see what the caller typed (a command sent to a Telegram group). Not in a
    # private chat, on the console, or for a Discord slash command, whose options reach only the bot.
    shown_to_others: bool = False

    @property
    def label(self) -> str:
        return f"{self.platform}:{self.external_id}"
