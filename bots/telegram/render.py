"""Replies as Telegram HTML: every piece of text escaped, titles bold, fields as lines, split to fit
Telegram's 4,096-character messages; very long lists go out as a text file instead."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bots.common import confirm as wire
from bots.common.text import chunk_lines
from core.commands import Attachment, Confirm, Reply

MAX_MESSAGE = 4_096  # Telegram's limit, counted in UTF-16 code units after entity parsing
MAX_PAGES = 4  # a reply longer than this many messages sends its list as a file
MAX_CALLBACK_DATA = 64  # bytes
MAX_ALERT = 200  # answerCallbackQuery text

TONE_MARK = {"info": "", "success": "✅ ", "warning": "⚠️ ", "danger": "⛔ "}


def esc(text: str) -> str:
    return html.escape(text)


@dataclass(frozen=True)
class Outgoing:
    """What one reply becomes on Telegram: HTML pages, a keyboard under the last one, maybe a file."""

    pages: tuple[str, ...]
    keyboard: InlineKeyboardMarkup | None = None
    document: tuple[str, bytes] | None = None  # (file name, content): a list too long for messages
    attachments: tuple[Attachment, ...] = ()  # the reply's own files: images as photos


@dataclass(frozen=True)
class _Block:
    """One line of the message: ``start`` + escaped ``plain`` + ``end`` (start/end are markup)."""

    plain: str
    start: str = ""
    end: str = ""

    def pieces(self, limit: int) -> list[str]:
        whole = self.start + esc(self.plain) + self.end
        if len(whole) <= limit:
            return [whole]
        room = max(16, limit - len(self.start) - len(self.end))
        out: list[str] = []
        current: list[str] = []
        size = 0
        for ch in self.plain:  # cut the plain text, never an entity or a tag
            piece = esc(ch)
            if size + len(piece) > room and current:
                out.append(self.start + "".join(current) + self.end)
                current, size = [], 0
            current.append(piece)
            size += len(piece)
        if current:
            out.append(self.start + "".join(current) + self.end)
        return out


def _blocks(reply: Reply, *, with_lines: bool = True) -> list[_Block]:
    sections: list[list[_Block]] = []
    if reply.title:
        sections.append([_Block(reply.title, TONE_MARK.get(reply.tone, "") + "<b>", "</b>")])
    if reply.text:
        sections.append([_Block(line) for line in reply.text.split("\n")])
    if reply.fields:
        fields: list[_Block] = []
        for f in reply.fields:
            if f.inline:
                fields.append(_Block(f.value, f"<b>{esc(f.name)}:</b> "))
            else:
                fields += [
                    _Block(f.name + ":", "<b>", "</b>"),
                    _Block(f.value, "<code>", "</code>"),
                ]
        sections.append(fields)
    if with_lines and reply.lines:
        sections.append([_Block(line) for item in reply.lines for line in item.split("\n")])
    if reply.footer:
        sections.append([_Block(reply.footer, "<i>", "</i>")])
    if reply.confirm is not None:
        c = reply.confirm
        sections.append(
            [
                _Block(c.prompt, "<b>", "</b>"),
                _Block(f"This button expires at {c.expires_at:%H:%M} UTC.", "<i>", "</i>"),
            ]
        )
    out: list[_Block] = []
    for section in sections:
        if out:
            out.append(_Block(""))
        out += section
    return out


def _limit_for(blocks: list[_Block], limit: int) -> int:
    # chunk_lines counts code points; a character outside the BMP is two UTF-16 units for Telegram.
    if any(ord(ch) > 0xFFFF for b in blocks for ch in b.plain):
        return limit // 2
    return limit


def _pages(blocks: list[_Block], limit: int) -> list[str]:
    limit = _limit_for(blocks, limit)
    pieces = [p for b in blocks for p in b.pieces(limit)]
    pages = [p.strip("\n") for p in chunk_lines(pieces, limit) if p.strip()]
    return pages or ["Done."]


def render(reply: Reply, *, limit: int = MAX_MESSAGE, file_name: str = "list.txt") -> Outgoing:
    """The Telegram form of a reply: HTML pages, the confirm keyboard, a file for very long lists."""
    keyboard = confirm_keyboard(reply.confirm) if reply.confirm is not None else None
    pages = _pages(_blocks(reply), limit)
    code = (code_page(reply.code, limit),) if reply.code is not None else ()
    if len(pages) > MAX_PAGES and reply.lines:
        note = f"The full list ({len(reply.lines):,} entries) is attached as {file_name}."
        head = replace(reply, lines=(), footer=(reply.footer + "\n" if reply.footer else "") + note)
        document = (file_name, reply.as_text().encode("utf-8"))
        return Outgoing(
            (*_pages(_blocks(head), limit), *code), keyboard, document, reply.attachments
        )
    return Outgoing((*pages, *code), keyboard, attachments=reply.attachments)


def code_page(code: str, limit: int = MAX_MESSAGE) -> str:
    """Text to copy exactly, alone in its own message as preformatted text (a tap copies it)."""
    return f"<pre>{esc(code[: max(16, limit - 11)])}</pre>"


_CODE = re.compile(r"`([^`\n]+)`")


def render_error(message: str, *, usage: str | None = None) -> Outgoing:
    """An error answer: escaped, with core's `name` marks shown as code, plus the usage if given."""
    body = _CODE.sub(r"<code>\1</code>", esc(message))
    if usage and "Usage:" not in message:
        body += f"\n<b>Usage:</b> <code>{esc(usage)}</code>"
    return Outgoing((body[:MAX_MESSAGE],))


def render_plain(text: str) -> Outgoing:
    return Outgoing(tuple(_pages([_Block(line) for line in text.split("\n")], MAX_MESSAGE)))


def callback_data(token: str, accept: bool) -> str:
    return wire.encode(token, accept, max_bytes=MAX_CALLBACK_DATA, where="Telegram callback data")


parse_callback = wire.decode


def confirm_keyboard(confirm: Confirm) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    confirm.accept_label, callback_data=callback_data(confirm.token, True)
                ),
                InlineKeyboardButton(
                    confirm.cancel_label, callback_data=callback_data(confirm.token, False)
                ),
            ]
        ]
    )


def alert_text(message: str) -> str:
    return message if len(message) <= MAX_ALERT else message[: MAX_ALERT - 1] + "…"
