"""A local stand-in for the Telegram Bot API, so the real python-telegram-bot runs against it.

An aiohttp server on 127.0.0.1 (ephemeral port) answering ``/bot<token>/<method>`` with form or JSON
parameters, as strict as Telegram where it matters to us: HTML parse mode is checked (unsupported or
unbalanced tags are refused like Telegram refuses them), message length, callback data length,
command names, chats the bot may not write to (403) or does not know (400). Every call is recorded.

Tests push updates (commands, button presses, anything) into a queue that ``getUpdates`` long-polls
(honouring offset and timeout), or that is POSTed to the webhook once ``setWebhook`` was called.
Faults: ``fail_next(method, 429 | 400 | 403 | 502 | 504, stall=..., processed=...)``: a stalled
answer times the client out; a processed call is carried out before its answer fails. Webhook
replicas: ``webhook_targets`` makes it a load balancer, ``redeliver`` Telegram's retry landing on
another replica. Reusable by the benchmark: calls carry timestamps, and ``pushed_at`` records when
each update was pushed.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web

from tests.standins.local import serve_local

BOT_ID = 7_000_001
BOT_USERNAME = "BountyTestBot"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# Parameters that are free text: never JSON-decoded, even when they look like numbers.
TEXT_FIELDS = frozenset(
    {
        "text",
        "caption",
        "description",
        "short_description",
        "name",
        "title",
        "query",
        "question",
        "explanation",
        "callback_query_id",
        "secret_token",
        "inline_message_id",
        "invite_link",
        "emoji",
        "url",
        "data",
        "payload",
        "first_name",
        "last_name",
        "parse_mode",
        "action",
        "language_code",
        "custom_title",
        "sticker",
        "document",
        "photo",
    }
)
ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}
COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
COMMAND_IN_TEXT = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,64})?")


class ApiError(Exception):
    def __init__(
        self, code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.perf_counter() when it arrived
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    status: int = 0  # HTTP status answered (0 while in progress)
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class _Pending:
    update: dict[str, Any]
    forced: bool = False  # a replay: delivered even if its id is below the confirmed offset

    @property
    def id(self) -> int:
        return self.update["update_id"]

    @property
    def kind(self) -> str:
        return next(k for k in self.update if k != "update_id")


@dataclass
class _Fault:
    code: int
    description: str
    retry_after: int | None
    chat_id: int | None
    stall: float = 0.0  # seconds before answering (longer than the client waits: a timeout)
    processed: bool = False  # the call is carried out before the failure (its answer is lost)


class _TelegramHtml(HTMLParser):
    """Checks text the way Telegram's HTML parse mode does; collects the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.visible: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS and self.error is None:
            self.error = f'Unsupported start tag "{tag}"'
        if tag == "span" and ("class", "tg-spoiler") not in attrs and self.error is None:
            self.error = 'Unsupported start tag "span"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            if self.error is None:
                self.error = f'Unmatched end tag "{tag}"'
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)


def parse_html(text: str) -> str:
    """The visible text of a Telegram-HTML message; ApiError(400) for what Telegram refuses."""
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.error is None and parser.stack:
        parser.error = f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
    if parser.error is not None:
        raise ApiError(400, f"Bad Request: can't parse entities: {parser.error}")
    return "".join(parser.visible)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode(key: str, value: str) -> Any:
    if key in TEXT_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _public(result: Any) -> Any:
    """What Telegram would send: without the stand-in's own bookkeeping keys (raw HTML, file bytes)."""
    if isinstance(result, dict):
        return {
            k: copy.deepcopy(v)
            for k, v in result.items()
            if k not in ("html", "content", "photo_name", "photo_data")
        }
    return result


class TelegramStandin:
    """The Bot API on 127.0.0.1. Use ``async with TelegramStandin() as tg:``; ``tg.url + "/bot"``
    is the base URL to give python-telegram-bot."""

    def __init__(self, *, bot_username: str = BOT_USERNAME, bot_id: int = BOT_ID) -> None:
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Billions Bounty",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        self.pushed_at: dict[int, float] = {}
        self.webhook: dict[str, Any] | None = None
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, HTTP status)
        # A load balancer in front of webhook replicas: the webhook's updates go to these URLs in
        # turn instead of the registered one (``redeliver`` sends a copy to a chosen one).
        self.webhook_targets: list[str] = []
        self.webhook_posts: list[tuple[int, str, int]] = []  # (update_id, target URL, HTTP status)
        self._turn = itertools.count()
        self._pending: list[_Pending] = []
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._started: set[int] = set()  # users who opened a private chat with the bot
        self._blocked: set[int] = set()
        self._messages: dict[int, list[dict[str, Any]]] = {}
        self._callbacks: dict[str, bool] = {}  # callback query id -> answered
        self._commands: dict[str, list[dict[str, str]]] = {}
        # Groups for team chats: who is in each, the bot's admin rights, join requests, invite links.
        self.members: dict[int, dict[int, str]] = {}  # chat id -> user id -> status
        self._member_users: dict[int, dict[str, Any]] = {}
        self._admin_rights: dict[int, dict[str, bool]] = {}
        self.join_requests: dict[int, set[int]] = {}
        self.invite_links: dict[str, dict[str, Any]] = {}
        self._user_rights: dict[tuple[int, int], dict[str, bool]] = {}  # people's admin rights
        self.deleted: list[tuple[int, int]] = []  # (chat id, message id) the bot deleted
        self._faults: dict[str, deque[_Fault]] = {}
        self._arrived = asyncio.Event()
        self._activity = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> TelegramStandin:
        app = web.Application(client_max_size=60 << 20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner, self.port = await serve_local(app)
        return self

    async def close(self) -> None:
        self._closing = True
        self._wake()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> TelegramStandin:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the world: users and chats ---------------------------------------------------------------

    @staticmethod
    def user(
        user_id: int,
        first_name: str,
        *,
        username: str | None = None,
        last_name: str | None = None,
        is_bot: bool = False,
    ) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if username:
            user["username"] = username
        if last_name:
            user["last_name"] = last_name
        return user

    def private_chat(self, user: dict[str, Any]) -> dict[str, Any]:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        self._chats[user["id"]] = chat
        return chat

    def group(
        self, chat_id: int = -100_200_300, title: str = "Bounty hunters", kind: str = "supergroup"
    ) -> dict[str, Any]:
        chat = {"id": chat_id, "type": kind, "title": title}
        self._chats[chat_id] = chat
        return chat

    def start_private(self, user: dict[str, Any]) -> dict[str, Any]:
        """The user opened a private chat with the bot (pressed Start): the bot may write to them."""
        self._started.add(user["id"])
        return self.private_chat(user)

    def block(self, user: dict[str, Any]) -> None:
        """The user blocked the bot: every send to them is refused with 403."""
        self._blocked.add(user["id"])

    # --- pushing updates ----------------------------------------------------------------------------

    def push(
        self, kind: str, payload: dict[str, Any], *, update_id: int | None = None
    ) -> dict[str, Any]:
        """Queue a raw update of any kind (``message``, ``edited_message``, ``callback_query``...)."""
        update = {
            "update_id": update_id if update_id is not None else next(self._update_ids),
            kind: payload,
        }
        self._enqueue(_Pending(update))
        return update

    def replay(self, update: dict[str, Any]) -> dict[str, Any]:
        """Deliver the very same update (same update_id) once more."""
        self._enqueue(_Pending(copy.deepcopy(update), forced=True))
        return update

    def new_message(
        self, user: dict[str, Any], chat: dict[str, Any], **fields: Any
    ) -> dict[str, Any]:
        self._chats.setdefault(chat["id"], chat)
        if chat["type"] == "private":
            self._started.add(user["id"])
        message = {
            "message_id": self._next_message_id(chat["id"]),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            **fields,
        }
        self._messages.setdefault(chat["id"], []).append(message)
        return message

    def push_message(
        self, user: dict[str, Any], chat: dict[str, Any], **fields: Any
    ) -> dict[str, Any]:
        """A message of any shape: ``text=...``, ``sticker={...}``, ``photo=[...]``..."""
        return self.push("message", self.new_message(user, chat, **fields))

    def push_command(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        text: str,
        *,
        reply_to: dict[str, Any] | None = None,
        mention: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A text message as a client sends it: ``/attempt hello`` gets its bot_command entity.

        ``reply_to``: the message it answers (a client's reply). ``mention``: a user picked from the
        member list, for the first occurrence of their first name in ``text`` (a text_mention entity,
        as clients send for people without a username)."""
        fields: dict[str, Any] = {"text": text}
        entities = []
        match = COMMAND_IN_TEXT.match(text)
        if match:
            entities.append(
                {"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}
            )
        if mention is not None:
            at = text.index(mention["first_name"])
            entities.append(
                {
                    "type": "text_mention",
                    "offset": utf16_len(text[:at]),
                    "length": utf16_len(mention["first_name"]),
                    "user": mention,
                }
            )
        if entities:
            fields["entities"] = entities
        if reply_to is not None:
            fields["reply_to_message"] = _public(reply_to)
        return self.push_message(user, chat, **fields)

    def press(
        self, user: dict[str, Any], message: dict[str, Any], callback_data: str
    ) -> dict[str, Any]:
        """A press on an inline button of a message the bot sent."""
        query_id = f"cbq-{next(self._callback_ids)}"
        self._callbacks[query_id] = False
        current = self._find_message(message["chat"]["id"], message["message_id"]) or message
        return self.push(
            "callback_query",
            {
                "id": query_id,
                "from": user,
                "message": _public(current),
                "chat_instance": f"ci{message['chat']['id']}",
                "data": callback_data,
            },
        )

    def _enqueue(self, pending: _Pending) -> None:
        self.pushed_at[pending.id] = time.perf_counter()
        if self.webhook is not None:
            task = asyncio.ensure_future(self._post_webhook(pending.update))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._pending.append(pending)
        self._pending.sort(key=lambda p: p.id)
        self._wake()

    async def _post_webhook(self, update: dict[str, Any], url: str | None = None) -> None:
        assert self.webhook is not None
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = (
            {SECRET_HEADER: self.webhook["secret_token"]}
            if self.webhook.get("secret_token")
            else {}
        )
        if url is None:
            targets = self.webhook_targets
            url = targets[next(self._turn) % len(targets)] if targets else self.webhook["url"]
        async with self._session.post(url, json=update, headers=headers) as response:
            self.webhook_deliveries.append((update["update_id"], response.status))
            self.webhook_posts.append((update["update_id"], url, response.status))
        self._notify()

    async def redeliver(self, update: dict[str, Any], *, to: int) -> None:
        """POST the same update again to ``webhook_targets[to]``: Telegram retrying a delivery whose
        answer it did not get, which the load balancer sends to another replica."""
        await self._post_webhook(copy.deepcopy(update), self.webhook_targets[to])

    def _wake(self) -> None:
        event, self._arrived = self._arrived, asyncio.Event()
        event.set()

    # --- faults -------------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        code: int,
        *,
        retry_after: int = 1,
        chat_id: int | None = None,
        description: str | None = None,
        times: int = 1,
        stall: float = 0.0,
        processed: bool = False,
    ) -> None:
        """The next ``times`` calls to ``method`` (for ``chat_id`` if given) fail: 429 (with
        retry_after), 400 ("chat not found"), 403 ("bot was blocked by the user"), 500/502/504.
        ``stall``: the answer comes that many seconds late (past the client's timeout: it sees
        ``TimedOut``). ``processed``: the call is carried out first and only its answer fails, as
        when Telegram did the work and the connection broke on the way back."""
        default = {
            429: f"Too Many Requests: retry after {retry_after}",
            400: "Bad Request: chat not found",
            403: "Forbidden: bot was blocked by the user",
            502: "Bad Gateway",
            504: "Gateway Timeout",
        }
        for _ in range(times):
            fault = _Fault(
                code,
                description or default.get(code, "Internal Server Error"),
                retry_after if code == 429 else None,
                chat_id,
                stall,
                processed,
            )
            self._faults.setdefault(method, deque()).append(fault)

    def _take_fault(self, method: str, params: dict[str, Any]) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        for fault in list(queue):
            if fault.chat_id is None or fault.chat_id == params.get("chat_id"):
                queue.remove(fault)
                return fault
        return None

    # --- observing ------------------------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the call log; pass it as ``after`` to wait only for later calls."""
        return len(self.calls)

    def calls_to(self, method: str, *, after: int = 0) -> list[Call]:
        return [c for c in self.calls[after:] if c.method == method]

    async def wait_for(
        self, predicate: Callable[[Call], bool], *, after: int = 0, timeout: float = 15.0
    ) -> Call:
        """The first finished call (from position ``after``) that satisfies ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                for call in self.calls[after:]:
                    if call.status and predicate(call):
                        return call
                event = self._activity
                await event.wait()

    async def wait_sent(
        self, chat_id: int, *, after: int = 0, contains: str | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        """The next message the bot sent to ``chat_id`` (whose visible text has ``contains``)."""
        call = await self.wait_for(
            lambda c: (
                c.method == "sendMessage"
                and c.ok
                and c.params.get("chat_id") == chat_id
                and (contains is None or contains in c.result["text"])
            ),
            after=after,
            timeout=timeout,
        )
        return call.result

    def first_reply(self, update: dict[str, Any]) -> Call | None:
        """The bot's first answer to an update (the benchmark's end point): the first call made
        after the push that sends, edits or answers in the update's chat (or its callback query)."""
        pushed = self.pushed_at.get(update["update_id"])
        body = update.get("message") or update.get("callback_query") or {}
        chat_id = (body.get("chat") or (body.get("message") or {}).get("chat") or {}).get("id")
        query_id = update.get("callback_query", {}).get("id")
        for call in self.calls:
            if pushed is None or call.at < pushed or not call.ok:
                continue
            if call.method == "answerCallbackQuery" and query_id is not None:
                if call.params.get("callback_query_id") == query_id:
                    return call
            elif (
                call.method in ("sendMessage", "editMessageText", "sendDocument")
                and call.params.get("chat_id") == chat_id
            ):
                return call
        return None

    def messages_to(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat, as they look now (edits applied)."""
        return [
            copy.deepcopy(m)
            for m in self._messages.get(chat_id, [])
            if m["from"]["id"] == self.bot_user["id"]
        ]

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[tuple[str, str | None]]:
        """(text, callback_data or url) of every inline button of a message."""
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data") or b.get("url")) for row in rows for b in row]

    def commands(self, scope: dict[str, Any] | None = None) -> list[dict[str, str]]:
        return self._commands.get(self._scope_key(scope), [])

    # --- the HTTP side -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {k: _decode(k, v) for k, v in request.query.items()}
        files: dict[str, tuple[str, bytes]] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = (value.filename, value.file.read())
                else:
                    params[key] = _decode(key, str(value))
        call = Call(method, params, time.perf_counter(), files)
        self.calls.append(call)
        try:
            fault = self._take_fault(method, params)
            handler = getattr(self, "_api_" + method, None)
            if fault is not None:
                if fault.processed and handler is not None:
                    call.result = await handler(params, files)  # done; the answer gets lost
                if fault.stall:  # the client gives up before this answer: recorded now
                    call.status, call.error = fault.code, fault.description
                    self._notify()
                    await asyncio.sleep(fault.stall)
                raise ApiError(
                    fault.code,
                    fault.description,
                    {"retry_after": fault.retry_after} if fault.retry_after is not None else None,
                )
            result = await handler(params, files) if handler is not None else True
        except ApiError as exc:
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.parameters:
                body["parameters"] = exc.parameters
            call.status, call.error = exc.code, exc.description
            self._notify()
            return web.json_response(body, status=exc.code)
        call.status, call.result = 200, result
        self._notify()
        return web.json_response({"ok": True, "result": _public(result)})

    def _notify(self) -> None:
        event, self._activity = self._activity, asyncio.Event()
        event.set()

    # --- helpers for the methods ----------------------------------------------------------------------

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """The message as it is now (after every edit), or None."""
        return self._find_message(chat_id, message_id)

    def _find_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        for message in self._messages.get(chat_id, []):
            if message["message_id"] == message_id:
                return message
        return None

    def _writable_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id > 0:
            if chat_id not in self._started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            return self._chats.get(chat_id) or {
                "id": chat_id,
                "type": "private",
                "first_name": "user",
            }
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    @staticmethod
    def _text(
        params: dict[str, Any], key: str = "text", *, limit: int = 4096, required: bool = True
    ) -> str:
        raw = params.get(key)
        if raw is None or raw == "":
            if required:
                raise ApiError(400, "Bad Request: message text is empty")
            return ""
        raw = str(raw)
        visible = parse_html(raw) if str(params.get("parse_mode", "")).upper() == "HTML" else raw
        if not visible.strip() and required:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > limit:
            raise ApiError(400, "Bad Request: message is too long")
        return visible

    @staticmethod
    def _keyboard(params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if data is None and not button.get("url"):
                    raise ApiError(400, 'Bad Request: can\'t find field "callback_data"')
        return markup

    def _store(self, chat: dict[str, Any], **fields: Any) -> dict[str, Any]:
        message = {
            "message_id": self._next_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            **{k: v for k, v in fields.items() if v is not None},
        }
        self._messages.setdefault(chat["id"], []).append(message)
        return copy.deepcopy(message)

    @staticmethod
    def _scope_key(scope: Any) -> str:
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True)

    # --- the methods ------------------------------------------------------------------------------------

    async def _api_getMe(self, params, files):
        return self.bot_user

    async def _api_logOut(self, params, files):
        return True

    async def _api_close(self, params, files):
        return True

    async def _api_deleteWebhook(self, params, files):
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    async def _api_setWebhook(self, params, files):
        url = params.get("url") or ""
        if not url:
            self.webhook = None
            return True
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": url, "secret_token": secret}
        for pending in self._pending:  # what was queued goes out through the webhook now
            self._enqueue(pending)
        self._pending.clear()
        return True

    async def _api_getWebhookInfo(self, params, files):
        return {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    async def _api_getUpdates(self, params, files):
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        limit = int(params.get("limit") or 100)
        allowed = params.get("allowed_updates") or None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(float(params.get("timeout") or 0), 50.0)
        while True:
            if isinstance(offset, int):  # confirms (forgets) every update below the offset
                self._pending = [p for p in self._pending if p.forced or p.id >= offset]
            ready = [p for p in self._pending if allowed is None or p.kind in allowed][:limit]
            remaining = deadline - loop.time()
            if ready or remaining <= 0 or self._closing:
                for p in ready:
                    if p.forced:
                        self._pending.remove(p)
                return [copy.deepcopy(p.update) for p in ready]
            arrived = self._arrived
            try:
                await asyncio.wait_for(arrived.wait(), remaining)
            except TimeoutError:
                pass

    async def _api_sendMessage(self, params, files):
        chat = self._writable_chat(params)
        visible = self._text(params)
        markup = self._keyboard(params)
        reply = params.get("reply_parameters") or {}
        return self._store(
            chat,
            text=visible,
            reply_markup=markup,
            html=params.get("text"),
            reply_to_message_id=reply.get("message_id") if isinstance(reply, dict) else None,
        )

    async def _api_sendDocument(self, params, files):
        chat = self._writable_chat(params)
        if "document" not in files and not isinstance(params.get("document"), str):
            raise ApiError(400, "Bad Request: there is no document in the request")
        name, data = files.get("document", ("file", b""))
        caption = self._text(params, "caption", limit=1024, required=False) or None
        document = {
            "file_id": f"doc-{next(self._file_ids)}",
            "file_unique_id": f"u{len(data)}",
            "file_name": name,
            "file_size": len(data),
        }
        return self._store(
            chat, document=document, caption=caption, content=data.decode("utf-8", "replace")
        )

    async def _api_sendPhoto(self, params, files):
        chat = self._writable_chat(params)
        if "photo" not in files and not isinstance(params.get("photo"), str):
            raise ApiError(400, "Bad Request: there is no photo in the request")
        name, data = files.get("photo", ("photo", b""))
        if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        caption = self._text(params, "caption", limit=1024, required=False) or None
        photo = [
            {
                "file_id": f"photo-{next(self._file_ids)}",
                "file_unique_id": f"p{len(data)}",
                "width": 1,
                "height": 1,
                "file_size": len(data),
            }
        ]
        return self._store(chat, photo=photo, caption=caption, photo_name=name, photo_data=data)

    async def _api_editMessageText(self, params, files):
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        message = self._find_message(chat_id, message_id) if isinstance(chat_id, int) else None
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if message is None or message["from"]["id"] != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message to edit not found")
        visible = self._text(params)
        markup = self._keyboard(params)
        if visible == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message["text"], message["html"] = visible, params.get("text")
        message["edit_date"] = int(time.time())
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        return copy.deepcopy(message)

    async def _api_editMessageReplyMarkup(self, params, files):
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        message = self._find_message(chat_id, message_id) if isinstance(chat_id, int) else None
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        markup = self._keyboard(params)
        if markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        return copy.deepcopy(message)

    async def _api_answerCallbackQuery(self, params, files):
        query_id = params.get("callback_query_id")
        if self._callbacks.get(query_id, True):
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        if len(params.get("text") or "") > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._callbacks[query_id] = True
        return True

    async def _api_sendChatAction(self, params, files):
        self._writable_chat(params)
        return True

    async def _api_setMyCommands(self, params, files):
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        for entry in commands:
            if not COMMAND_NAME.match(str(entry.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(entry.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: command description is empty or too long")
        scope = params.get("scope")
        if (
            isinstance(scope, dict)
            and scope.get("type") == "chat"
            and scope.get("chat_id") not in self._started
            and scope.get("chat_id") not in self._chats
        ):
            raise ApiError(400, "Bad Request: chat not found")
        self._commands[self._scope_key(scope)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _api_getMyCommands(self, params, files):
        return self._commands.get(self._scope_key(params.get("scope")), [])

    async def _api_deleteMyCommands(self, params, files):
        self._commands.pop(self._scope_key(params.get("scope")), None)
        return True

    async def _api_deleteMessage(self, params, files):
        """The bot's own messages anywhere; others' in a group only as an administrator with
        ``can_delete_messages`` (as the Bot API allows)."""
        chat_id, message_id = params.get("chat_id"), int(params.get("message_id") or 0)
        message = self._find_message(chat_id, message_id) if isinstance(chat_id, int) else None
        if message is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        own = message.get("from", {}).get("id") == self.bot_user["id"]
        if (
            not own
            and chat_id < 0
            and not (self._admin_rights.get(chat_id) or {}).get("can_delete_messages")
        ):
            raise ApiError(400, "Bad Request: message can't be deleted")
        self._messages[chat_id].remove(message)
        self.deleted.append((chat_id, message_id))
        return True

    # --- groups for team chats: members, the bot's rights, join requests, invite links -------

    ADMIN_RIGHTS = (
        "can_manage_chat",
        "can_delete_messages",
        "can_manage_video_chats",
        "can_restrict_members",
        "can_promote_members",
        "can_change_info",
        "can_invite_users",
        "can_post_stories",
        "can_edit_stories",
        "can_delete_stories",
        "can_pin_messages",
    )

    def make_bot_admin(self, chat: dict[str, Any], **rights: bool) -> None:
        """Make the bot an administrator of ``chat``: every right unless some are given as False."""
        self._chats.setdefault(chat["id"], chat)
        self._admin_rights[chat["id"]] = {r: rights.get(r, True) for r in self.ADMIN_RIGHTS}
        self.members.setdefault(chat["id"], {})[self.bot_user["id"]] = "administrator"

    def add_member(
        self, chat: dict[str, Any], user: dict[str, Any], status: str = "member", **rights: bool
    ) -> None:
        """``user`` in ``chat`` with ``status``; an administrator has every right unless some are
        given as False."""
        self._chats.setdefault(chat["id"], chat)
        self._member_users[user["id"]] = user
        self.members.setdefault(chat["id"], {})[user["id"]] = status
        self._user_rights[(chat["id"], user["id"])] = {
            r: rights.get(r, True) for r in self.ADMIN_RIGHTS
        }

    def status_in(self, chat: dict[str, Any], user: dict[str, Any]) -> str:
        return self.members.get(chat["id"], {}).get(user["id"], "left")

    def push_join_request(self, user: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
        """``user`` asks to join ``chat`` (through a link that needs approval)."""
        self._member_users[user["id"]] = user
        self.join_requests.setdefault(chat["id"], set()).add(user["id"])
        return self.push(
            "chat_join_request",
            {"chat": chat, "from": user, "user_chat_id": user["id"], "date": int(time.time())},
        )

    def push_edit(self, message: dict[str, Any], text: str) -> dict[str, Any]:
        """The author edits their message: an ``edited_message`` update."""
        stored = self._find_message(message["chat"]["id"], message["message_id"]) or message
        stored["text"] = text
        stored["edit_date"] = int(time.time())
        return self.push("edited_message", copy.deepcopy(stored))

    def use_invite_link(self, user: dict[str, Any], link: str) -> bool:
        """``user`` opens an invite link: joins if it is valid (not revoked, expired or used up)."""
        entry = self.invite_links.get(link)
        if entry is None or entry["is_revoked"] or entry.get("expire_date", 1 << 62) < time.time():
            return False
        if entry.get("member_limit") and entry["uses"] >= entry["member_limit"]:
            return False
        if self.status_in({"id": entry["chat_id"]}, user) == "kicked":
            return False
        entry["uses"] += 1
        self.add_member({"id": entry["chat_id"], **self._chats.get(entry["chat_id"], {})}, user)
        return True

    def _admin(self, chat_id: Any, right: str | None = None) -> None:
        rights = self._admin_rights.get(chat_id) if isinstance(chat_id, int) else None
        if rights is None:
            raise ApiError(400, "Bad Request: not enough rights")
        if right is not None and not rights.get(right):
            raise ApiError(
                400,
                "Bad Request: not enough rights to "
                + {
                    "can_invite_users": "manage chat invite link",
                    "can_restrict_members": "restrict/unrestrict chat member",
                }.get(right, right),
            )

    def _member_payload(self, chat_id: int, user_id: int) -> dict[str, Any]:
        status = self.members.get(chat_id, {}).get(user_id, "left")
        user = (
            self.bot_user
            if user_id == self.bot_user["id"]
            else self._member_users.get(
                user_id, {"id": user_id, "is_bot": False, "first_name": "user"}
            )
        )
        out: dict[str, Any] = {"status": status, "user": user}
        if status == "administrator":
            rights = (
                self._admin_rights.get(chat_id)
                if user_id == self.bot_user["id"]
                else self._user_rights.get((chat_id, user_id))
            ) or {r: True for r in self.ADMIN_RIGHTS}
            out.update({"can_be_edited": False, "is_anonymous": False, **rights})
        elif status == "creator":
            out["is_anonymous"] = False
        elif status == "kicked":
            out["until_date"] = 0
        return out

    async def _api_getChatMember(self, params, files):
        chat_id, user_id = params.get("chat_id"), params.get("user_id")
        if chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        return self._member_payload(chat_id, int(user_id))

    async def _api_getChatAdministrators(self, params, files):
        chat_id = params.get("chat_id")
        if chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        return [
            self._member_payload(chat_id, uid)
            for uid, st in self.members.get(chat_id, {}).items()
            if st in ("administrator", "creator")
        ]

    async def _api_createChatInviteLink(self, params, files):
        chat_id = params.get("chat_id")
        self._admin(chat_id, "can_invite_users")
        limit = params.get("member_limit")
        if limit is not None and not 1 <= int(limit) <= 99999:
            raise ApiError(400, "Bad Request: member limit is invalid")
        if limit is not None and params.get("creates_join_request"):
            raise ApiError(
                400,
                "Bad Request: member limit can't be specified for links requiring administrator approval",
            )
        link = f"https://t.me/+stand-in-{len(self.invite_links) + 1:06d}"
        entry = {
            "invite_link": link,
            "creator": self.bot_user,
            "creates_join_request": bool(params.get("creates_join_request")),
            "is_primary": False,
            "is_revoked": False,
        }
        if limit is not None:
            entry["member_limit"] = int(limit)
        if params.get("expire_date") is not None:
            entry["expire_date"] = int(params["expire_date"])
        if params.get("name"):
            entry["name"] = params["name"]
        self.invite_links[link] = {**entry, "chat_id": chat_id, "uses": 0}
        return entry

    async def _api_approveChatJoinRequest(self, params, files):
        return self._answer_join_request(params, approve=True)

    async def _api_declineChatJoinRequest(self, params, files):
        return self._answer_join_request(params, approve=False)

    def _answer_join_request(self, params: dict[str, Any], *, approve: bool) -> bool:
        chat_id, user_id = params.get("chat_id"), int(params.get("user_id") or 0)
        self._admin(chat_id, "can_invite_users")
        pending = self.join_requests.get(chat_id, set())
        if user_id not in pending:
            raise ApiError(400, "Bad Request: HIDE_REQUESTER_MISSING")
        pending.discard(user_id)
        if approve:
            self.members.setdefault(chat_id, {})[user_id] = "member"
        return True

    async def _api_banChatMember(self, params, files):
        chat_id, user_id = params.get("chat_id"), int(params.get("user_id") or 0)
        self._admin(chat_id, "can_restrict_members")
        if self.members.get(chat_id, {}).get(user_id) in ("creator", "administrator"):
            raise ApiError(400, "Bad Request: user is an administrator of the chat")
        self.members.setdefault(chat_id, {})[user_id] = "kicked"
        return True

    async def _api_unbanChatMember(self, params, files):
        chat_id, user_id = params.get("chat_id"), int(params.get("user_id") or 0)
        self._admin(chat_id, "can_restrict_members")
        status = self.members.get(chat_id, {}).get(user_id, "left")
        if status == "kicked":
            self.members[chat_id][user_id] = "left"
        elif not params.get("only_if_banned") and status == "member":
            self.members[chat_id][user_id] = "left"
        return True
