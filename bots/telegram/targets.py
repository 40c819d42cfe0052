"""Naming a player the ways only Telegram shows them, turned into a form core resolves (telegram:<id>):

- a ``text_mention`` entity (someone without a username, picked from the client's member list);
- a command sent as a reply to someone's message: the player argument is that message's author,
  unless the moderator typed one first (``@username``, ``#12``, ``telegram:<id>``, a mention). When
  replying, type only the other arguments: ``/admin ban 7d spamming`` as a reply bans its author.
  Replies to the bot's own messages, to other bots and forum-topic headers name nobody.
"""

from __future__ import annotations

import re

from telegram import Message, MessageEntity

from core.commands import Command

_EXPLICIT = re.compile(r"^(@|#|<@|(discord|telegram|console):)", re.I)


def with_mentions(message: Message) -> str:
    """The message's text with each text_mention replaced by ``telegram:<user id>``."""
    text = message.text or ""
    mentions = [
        e
        for e in message.entities or ()
        if e.type == MessageEntity.TEXT_MENTION and e.user is not None
    ]
    if not mentions:
        return text
    units = text.encode("utf-16-le")  # entity offsets count UTF-16 code units
    for entity in sorted(mentions, key=lambda e: e.offset, reverse=True):
        start, end = entity.offset * 2, (entity.offset + entity.length) * 2
        units = units[:start] + f"telegram:{entity.user.id}".encode("utf-16-le") + units[end:]
    return units.decode("utf-16-le")


def reply_target(command: Command, args_text: str, message: Message, bot_id: int) -> str:
    """``args_text`` with the replied-to author as the command's first (player) argument, when the
    command takes a player first and the moderator did not type one."""
    replied = message.reply_to_message
    if replied is None or not command.args or command.args[0].kind != "player":
        return args_text
    author = replied.from_user
    if (
        author is None
        or author.is_bot
        or author.id == bot_id
        or replied.forum_topic_created is not None
    ):
        return args_text
    if _EXPLICIT.match(args_text.strip()):
        return args_text
    return f"telegram:{author.id} {args_text}".strip()
