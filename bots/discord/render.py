"""Replies as Discord embeds: tone as colour, fields, footer, markdown escaped; list content
paginated within Discord's limits (4,096 characters per embed description, 6,000 per embed) or
attached as a text file when it would take more than a few messages."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field, replace

import discord
from discord.utils import escape_markdown

from bots.common import confirm as wire
from bots.common.text import chunk_lines
from core.commands import Attachment, Confirm, Reply

MAX_TITLE = 256
MAX_DESCRIPTION = 4_096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1_024
MAX_FOOTER = 2_048
MAX_EMBED = 6_000  # all text of one embed together
MAX_CUSTOM_ID = 100
MAX_LABEL = 80
PAGE = 4_000  # list content per embed, leaving room for a page note
MAX_MESSAGES = 3  # a reply needing more messages sends its list as a file instead

COLOURS = {"info": 0x5865F2, "success": 0x57F287, "warning": 0xFEE75C, "danger": 0xED4245}
NO_MENTIONS = discord.AllowedMentions.none()

_CODE = re.compile(r"`([^`\n]+)`")


def md(text: str) -> str:
    """Core's plain text for Discord markdown: everything escaped, core's `name` marks kept as code."""
    out: list[str] = []
    last = 0
    for m in _CODE.finditer(text):
        out.append(escape_markdown(text[last : m.start()]))
        out.append(f"`{m.group(1)}`")
        last = m.end()
    out.append(escape_markdown(text[last:]))
    return "".join(out)


def _cut_at(text: str, limit: int) -> int:
    """Where to cut ``text`` to at most ``limit`` characters: a line end, else a space, else anywhere."""
    for sep in ("\n", " "):
        at = text.rfind(sep, 0, limit + 1)
        if at > limit // 2:
            return at
    return limit


def _pieces(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut between words where possible."""
    out = []
    while len(text) > limit:
        cut = _cut_at(text, limit)
        out.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*out, text] if text else out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class OutMessage:
    """One Discord message: an embed (or plain content: a code block to copy), maybe files (a text
    file, an image the embed shows), maybe the confirmation buttons."""

    embed: discord.Embed | None
    files: list[tuple[str, bytes]] = field(default_factory=list)
    confirm: Confirm | None = None
    content: str | None = None

    def discord_files(self) -> list[discord.File]:
        return [discord.File(io.BytesIO(data), filename=name) for name, data in self.files]


@dataclass
class Outgoing:
    messages: list[OutMessage] = field(default_factory=list)
    private: bool = False


def _head(reply: Reply, text: str, colour: int) -> tuple[discord.Embed, list[str]]:
    """The first embed (title, text, fields, footer) and what did not fit in it, as list entries.

    Within 6,000 characters: title and footer first, then as much text as fits, then fields."""
    title = _clip(reply.title, MAX_TITLE) if reply.title else None
    footer = _clip(reply.footer, MAX_FOOTER) if reply.footer else None
    room = MAX_EMBED - len(title or "") - len(footer or "")
    overflow: list[str] = []
    description = text
    limit = min(MAX_DESCRIPTION, room)
    if len(description) > limit:
        cut = _cut_at(description, limit)
        overflow.append(description[cut:].lstrip())
        description = description[:cut].rstrip()
    room -= len(description)
    embed = discord.Embed(title=title, description=description or None, colour=colour)
    for i, f in enumerate(reply.fields):
        name = _clip(f.name, MAX_FIELD_NAME) or "\u200b"
        value = _clip(md(f.value), MAX_FIELD_VALUE) or "-"
        if i >= MAX_FIELDS or len(name) + len(value) > room:
            overflow.append(md(f"{f.name}: {f.value}"))
            continue
        embed.add_field(name=name, value=value, inline=f.inline)
        room -= len(name) + len(value)
    if footer:
        embed.set_footer(text=footer)
    return embed, overflow


def _confirm_text(confirm: Confirm) -> str:
    expires = int(confirm.expires_at.timestamp())
    return f"**{md(confirm.prompt)}**\nThese buttons expire <t:{expires}:R>."


def render(reply: Reply, *, file_name: str = "list.txt") -> Outgoing:
    """The Discord form of a reply: one or more messages of one embed each, or a file for long lists."""
    colour = COLOURS.get(reply.tone, COLOURS["info"])
    text = md(reply.text) if reply.text else ""
    if reply.confirm is not None:
        text = (text + "\n\n" if text else "") + _confirm_text(reply.confirm)
    head, overflow = _head(reply, text, colour)
    entries = [
        piece
        for item in [*overflow, *(md(line) for line in reply.lines)]
        for piece in _pieces(item, PAGE)
    ]
    pages = [p for p in chunk_lines(entries, PAGE) if p.strip()]
    messages = [OutMessage(head)]
    if pages:
        room = min(MAX_DESCRIPTION - len(head.description or "") - 2, MAX_EMBED - len(head) - 2)
        if len(pages[0]) <= room:
            head.description = f"{head.description}\n\n{pages[0]}" if head.description else pages[0]
            pages = pages[1:]
        for i, page in enumerate(pages, 2):
            embed = discord.Embed(description=page, colour=colour)
            embed.set_footer(
                text=f"{_clip(reply.title or 'Continued', 200)} ({i}/{len(pages) + 1})"
            )
            messages.append(OutMessage(embed))
    if len(messages) > MAX_MESSAGES:
        note = f"The full list ({len(reply.lines):,} entries) is attached as {file_name}."
        footer = (reply.footer + "\n" if reply.footer else "") + note
        short = replace(reply, lines=(), footer=footer)
        head, _ = _head(
            short,
            text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…",
            colour,
        )
        messages = [OutMessage(head, files=[(file_name, reply.as_text().encode("utf-8"))])]
    messages[-1].confirm = reply.confirm
    _attach(messages[0], reply.attachments)
    if reply.code is not None:
        messages.append(code_message(reply.code))
    return Outgoing(messages, private=reply.private)


def _attach(message: OutMessage, attachments: tuple[Attachment, ...]) -> None:
    """Files go with the first message; the first image is shown in its embed."""
    shown = False
    for attachment in attachments:
        name = _file_name(attachment.name)
        message.files.append((name, attachment.data))
        if attachment.image and not shown and message.embed is not None:
            message.embed.set_image(url=f"attachment://{name}")
            shown = True


def _file_name(name: str) -> str:
    # attachment:// references need a plain name: letters, digits, dot, dash, underscore
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "file"


MAX_CONTENT = 2_000


def code_message(code: str) -> OutMessage:
    """Text to copy exactly, alone in a code block (a message of its own, so a tap copies it all)."""
    fence = "```"
    body = code.replace(fence, "`\u200b``")
    room = MAX_CONTENT - 2 * len(fence) - 2
    return OutMessage(None, content=f"{fence}\n{body[:room]}\n{fence}")


def render_error(message: str, *, usage: str | None = None) -> Outgoing:
    """An error answer, for the caller only: core's message, and the usage when an argument was wrong."""
    body = md(message)
    if usage and "Usage:" not in message:
        body += f"\nUsage: `{usage}`"
    embed = discord.Embed(description=_clip(body, MAX_DESCRIPTION), colour=COLOURS["danger"])
    return Outgoing([OutMessage(embed)], private=True)


def render_note(text: str, *, tone: str = "info") -> Outgoing:
    embed = discord.Embed(description=md(text), colour=COLOURS.get(tone, COLOURS["info"]))
    return Outgoing([OutMessage(embed)], private=True)


# --- confirmation buttons ------------------------------------------------------------------------


def custom_id(token: str, accept: bool) -> str:
    return wire.encode(token, accept, max_bytes=MAX_CUSTOM_ID, where="a Discord custom_id")


parse_custom_id = wire.decode
