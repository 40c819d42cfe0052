"""A local stand-in for Discord (REST API v10 and the gateway), so the real discord.py runs against it.

An aiohttp server on 127.0.0.1 (ephemeral port):

- REST under ``/api/v10``: the bot's user and application, ``/gateway/bot`` (naming this server's
  websocket), application commands (GET and bulk-overwrite PUT, global and per guild, checked
  against Discord's rules), interaction callbacks, interaction webhooks (follow-ups, ``@original``
  and other messages: GET/PATCH/DELETE), channel messages, guild channels, permission overwrites and
  channel webhooks. Message payloads are checked against Discord's limits (content, embeds,
  components); a violation is answered 400 like Discord does. Anything else is recorded and
  answered with a JSON 404. Every call is recorded (method, path, JSON body or multipart parts).
- The gateway websocket: HELLO, IDENTIFY -> READY -> GUILD_CREATE, heartbeat ACKs, RESUME, and
  dispatches (INTERACTION_CREATE, CHANNEL_CREATE…), as uncompressed TEXT frames (a ``compress``
  query is ignored; discord.py reads plain text frames).

Tests drive it: ``await standin.slash(user, "admin grant", player=..., amount=...)`` builds an
application-command interaction from the commands the bot registered (nested options for groups,
typed values), ``await standin.click(user, custom_id)`` presses a button of a message the bot sent,
``await standin.replay(interaction)`` redelivers one with the same id and token. Faults:
``standin.fail_next("POST", r"/webhooks/", 429, retry_after=0.05)`` (``global_=True``: the global
limit; ``after=True``: the call is carried out and only its answer fails, as a 502 on the way back).
Channel messages honour ``nonce`` with ``enforce_nonce``. Shards: a server's events go to the session
of shard ``(guild id >> 22) % count``, DMs to shard 0. Reusable by the benchmark:
interactions carry ``dispatched_at`` and ``acked_at`` (time.perf_counter()).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from tests.standins.local import serve_local

API = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
NAME = re.compile(r"^[-_\w]{1,32}$")
MAX_INT = 2**53 - 1

# Option types (application commands)
(
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    STRING,
    INTEGER,
    BOOLEAN,
    USER,
    CHANNEL,
    ROLE,
    MENTIONABLE,
    NUMBER,
) = range(1, 11)
# Interaction callback types
PONG, MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 1, 4, 5, 6, 7
ACKS = {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, 8, 9}


PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message content


class ApiError(Exception):
    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid(where: str, message: str) -> ApiError:
    return ApiError(
        400,
        50035,
        "Invalid Form Body",
        {where: {"_errors": [{"code": "BASE_TYPE_INVALID", "message": message}]}},
    )


@dataclass
class Call:
    method: str
    path: str  # under /api/v10, without the query
    query: dict[str, str]
    body: Any  # the JSON body (for multipart: payload_json), or None
    files: dict[str, tuple[str, bytes]] = field(
        default_factory=dict
    )  # field -> (filename, content)
    at: float = 0.0
    status: int = 0
    response: Any = None
    done: bool = False  # carried out although answered with a failure (fail_next(after=True))

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    retry_after: float
    times: int
    code: int
    message: str
    global_: bool = False  # a 429 of the bot's global limit rather than the route's
    after: bool = False  # the call is carried out first; only its answer is the failure


@dataclass
class Interaction:
    """One interaction the stand-in dispatched, and what the bot did with it."""

    id: int
    token: str
    payload: dict[str, Any]
    dispatched_at: float = 0.0
    acked_at: float | None = None
    ack_type: int | None = None
    ack_data: dict[str, Any] | None = None
    original_id: int | None = None  # the response message (or the message a button sits on)
    followup_ids: list[int] = field(default_factory=list)
    shards: list[tuple[int, int]] = field(default_factory=list)  # (shard id, count) per delivery

    @property
    def type(self) -> int:
        return self.payload["type"]

    @property
    def user_id(self) -> int:
        user = self.payload.get("member", {}).get("user") or self.payload["user"]
        return int(user["id"])

    @property
    def ephemeral_ack(self) -> bool:
        return bool((self.ack_data or {}).get("flags", 0) & EPHEMERAL)


def snowflake_at(ms: int, counter: int) -> int:
    return ((ms - DISCORD_EPOCH_MS) << 22) | (counter & 0x3FFFFF)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body as JSON only when the content type is exactly "application/json".
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return web.Response(status=status, body=json.dumps(data).encode(), headers=h)


# --- Discord's payload rules we check ----------------------------------------------------------

EMBED_LIMITS = {"title": 256, "description": 4096, "footer": 2048, "author": 256}


def check_message(body: dict[str, Any]) -> None:
    content = body.get("content")
    if content is not None and len(content) > 2000:
        raise invalid("content", "Must be 2000 or fewer in length.")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        raise invalid("embeds", "Must be 10 or fewer in length.")
    total_all = 0
    for i, e in enumerate(embeds):
        total = 0
        for key in ("title", "description"):
            value = e.get(key) or ""
            if len(value) > EMBED_LIMITS[key]:
                raise invalid(
                    f"embeds.{i}.{key}", f"Must be {EMBED_LIMITS[key]} or fewer in length."
                )
            total += len(value)
        footer = (e.get("footer") or {}).get("text") or ""
        if len(footer) > 2048:
            raise invalid(f"embeds.{i}.footer.text", "Must be 2048 or fewer in length.")
        total += len(footer)
        fields = e.get("fields") or []
        if len(fields) > 25:
            raise invalid(f"embeds.{i}.fields", "Must be 25 or fewer in length.")
        for j, f in enumerate(fields):
            if not f.get("name") or len(f["name"]) > 256:
                raise invalid(f"embeds.{i}.fields.{j}.name", "Must be between 1 and 256 in length.")
            if not f.get("value") or len(f["value"]) > 1024:
                raise invalid(
                    f"embeds.{i}.fields.{j}.value", "Must be between 1 and 1024 in length."
                )
            total += len(f["name"]) + len(f["value"])
        if total > 6000:
            raise invalid(f"embeds.{i}", "Embed size exceeds maximum size of 6000")
        total_all += total
    if total_all > 6000:
        raise invalid("embeds", "Embed size exceeds maximum size of 6000")
    rows = body.get("components") or []
    if len(rows) > 5:
        raise invalid("components", "Must be 5 or fewer in length.")
    ids: set[str] = set()
    for r, row in enumerate(rows):
        for c, comp in enumerate(row.get("components") or []):
            cid = comp.get("custom_id")
            if comp.get("type") == 2 and comp.get("style") != 5 and not cid:
                raise invalid(f"components.{r}.components.{c}.custom_id", "A custom id is required")
            if cid is not None:
                if len(cid) > 100:
                    raise invalid(
                        f"components.{r}.components.{c}.custom_id",
                        "Must be 100 or fewer in length.",
                    )
                if cid in ids:
                    raise invalid(
                        f"components.{r}.components.{c}.custom_id",
                        "Component custom id cannot be duplicated",
                    )
                ids.add(cid)
            if len(comp.get("label") or "") > 80:
                raise invalid(
                    f"components.{r}.components.{c}.label", "Must be 80 or fewer in length."
                )


def _check_options(options: list[dict[str, Any]], where: str, depth: int) -> None:
    if len(options) > 25:
        raise invalid(where, "Must be 25 or fewer in length.")
    names: set[str] = set()
    seen_optional = False
    for i, opt in enumerate(options):
        here = f"{where}.{i}"
        name, t = opt.get("name", ""), opt.get("type")
        if not NAME.match(name) or name != name.lower():
            raise invalid(f"{here}.name", "Command name is invalid")
        if name in names:
            raise invalid(f"{here}.name", "Option names must be unique")
        names.add(name)
        if not 1 <= len(opt.get("description") or "") <= 100:
            raise invalid(f"{here}.description", "Must be between 1 and 100 in length.")
        if t in (SUB_COMMAND, SUB_COMMAND_GROUP):
            if depth >= 2 or (t == SUB_COMMAND_GROUP and depth >= 1):
                raise invalid(f"{here}.type", "Sub-command groups nest at most once")
            _check_options(
                opt.get("options") or [],
                f"{here}.options",
                depth + (1 if t == SUB_COMMAND_GROUP else 2),
            )
            continue
        if opt.get("required"):
            if seen_optional:
                raise invalid(
                    f"{here}.required",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        if len(opt.get("choices") or []) > 25:
            raise invalid(f"{here}.choices", "Must be 25 or fewer in length.")
        for key in ("min_value", "max_value"):
            if key in opt and opt[key] is not None and abs(opt[key]) > MAX_INT:
                raise invalid(
                    f"{here}.{key}", f"int value should be less than or equal to {MAX_INT}."
                )
        for key in ("min_length", "max_length"):
            if key in opt and opt[key] is not None and not 0 <= opt[key] <= 6000:
                raise invalid(f"{here}.{key}", "Must be between 0 and 6000.")


def check_commands(commands: list[dict[str, Any]]) -> None:
    if len([c for c in commands if c.get("type", 1) == 1]) > 100:
        raise invalid("_root", "Maximum number of application commands reached (100)")
    names: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        name = cmd.get("name", "")
        if not NAME.match(name) or name != name.lower():
            raise invalid(f"{i}.name", "Command name is invalid")
        key = (cmd.get("type", 1), name)
        if key in names:
            raise invalid(f"{i}.name", "Application command names must be unique")
        names.add(key)
        if not 1 <= len(cmd.get("description") or "") <= 100:
            raise invalid(f"{i}.description", "Must be between 1 and 100 in length.")
        _check_options(cmd.get("options") or [], f"{i}.options", 0)


# --- the server ----------------------------------------------------------------------------------


class _Session:
    """One gateway connection (one shard)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.seq = 0
        self.session_id = secrets.token_hex(16)
        self.shard = (0, 1)
        self.identified = asyncio.Event()
        self.lock = asyncio.Lock()

    async def send(self, op: int, d: Any, t: str | None = None) -> None:
        async with self.lock:
            frame: dict[str, Any] = {"op": op, "d": d, "s": None, "t": t}
            if op == 0:
                self.seq += 1
                frame["s"] = self.seq
            await self.ws.send_str(json.dumps(frame))


class DiscordStandin:
    APP_ID = 1_300_000_000_000_000_001
    BOT_ID = 1_300_000_000_000_000_001  # a bot user's id is its application's id
    BOT_NAME = "Bounty Test Bot"
    heartbeat_interval_ms = 41_250

    def __init__(self, *, token: str = "test-token", shard_count: int = 1) -> None:
        self.token = token
        self.shard_count = shard_count
        self.calls: list[Call] = []
        self.commands: dict[
            int | None, list[dict[str, Any]]
        ] = {}  # guild id (None: global) -> commands
        self.command_puts: dict[int | None, int] = {}
        self.guilds: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.attachment_data: dict[str, bytes] = {}
        self.users: dict[int, dict[str, Any]] = {}
        # Whether the application may use privileged intents (Developer Portal switches).
        self.privileged_intents = True
        self.no_dms: set[int] = (
            set()
        )  # users whose privacy settings refuse the bot's direct messages  # attachment id -> the bytes uploaded
        self.interactions: dict[int, Interaction] = {}
        self._by_token: dict[str, Interaction] = {}
        self.webhooks: dict[int, dict[str, Any]] = {}
        # Team chats: MESSAGE_CREATE/UPDATE for messages posted in guild channels (by the bot, a
        # webhook or a user) are dispatched only when a test asks, as the Message Content bridge does.
        self.dispatch_messages = False
        self.thread_members: dict[int, set[int]] = {}
        self._faults: list[_Fault] = []
        self._sessions: list[_Session] = []
        self._resumable: dict[str, _Session] = {}  # session id -> its latest connection
        self.identifies = 0
        self.resumes = 0
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._ws_tasks: set[web.WebSocketResponse] = set()
        self.port = 0
        self.bot_user = self.user(self.BOT_ID, self.BOT_NAME, bot=True)

    # --- set-up -----------------------------------------------------------------------------

    async def start(self) -> DiscordStandin:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner, self.port = await serve_local(app)
        return self

    async def close(self) -> None:
        for s in list(self._sessions):
            if not s.ws.closed:
                await s.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + API

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def new_id(self) -> int:
        return snowflake_at(int(time.time() * 1000), next(self._ids))

    @staticmethod
    def user(
        user_id: int, username: str, *, global_name: str | None = None, bot: bool = False
    ) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": username,
            "global_name": global_name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
            "flags": 0,
        }

    def add_guild(
        self, guild_id: int, name: str = "Bounty Test Server", *, owner_id: int | None = None
    ) -> dict[str, Any]:
        """A server the bot is in, with its @everyone role; sent as GUILD_CREATE when the bot connects."""
        guild = {
            "id": str(guild_id),
            "name": name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(owner_id or self.BOT_ID),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [
                self._role_payload(
                    guild_id, "@everyone", guild_id, permissions=0x0000_0400 | 0x0000_0800
                )
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": _now_iso(),
            "large": False,
            "unavailable": False,
            "member_count": 1,
            "voice_states": [],
            "members": [],
            "channels": [],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }
        self.guilds[guild_id] = guild
        guild["members"].append(self.member(guild_id, self.bot_user))
        return guild

    @staticmethod
    def _role_payload(
        role_id: int, name: str, position: int, *, permissions: int = 0
    ) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 0 if name == "@everyone" else position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def add_role(
        self, guild_id: int, role_id: int, name: str, *, permissions: int = 0
    ) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        role = self._role_payload(role_id, name, len(guild["roles"]), permissions=permissions)
        guild["roles"].append(role)
        return role

    def add_channel(
        self,
        guild_id: int | None,
        channel_id: int,
        name: str = "general",
        *,
        type: int = 0,
        parent_id: int | None = None,
    ) -> dict[str, Any]:
        channel: dict[str, Any] = {
            "id": str(channel_id),
            "type": type,
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": [],
            "parent_id": str(parent_id) if parent_id else None,
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if guild_id is not None:
            channel["guild_id"] = str(guild_id)
            self.guilds[guild_id]["channels"].append(channel)
        self.channels[channel_id] = channel
        return channel

    def add_user(self, user: dict[str, Any], *, accepts_dms: bool = True) -> dict[str, Any]:
        """A Discord user the stand-in knows (fetch_user, direct messages)."""
        self.users[int(user["id"])] = user
        if not accepts_dms:
            self.no_dms.add(int(user["id"]))
        return user

    def _dm_channel(self, user_id: int) -> dict[str, Any]:
        if user_id not in self.users:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == str(user_id):
                return channel
        cid = self.new_id()
        channel = {
            "id": str(cid),
            "type": 1,
            "last_message_id": None,
            "recipients": [self.users[user_id]],
        }
        self.channels[cid] = channel
        return channel

    def dms_to(self, user_id: int) -> list[dict[str, Any]]:
        """Direct messages the bot sent to this user, oldest first."""
        ids = {
            int(c["id"])
            for c in self.channels.values()
            if c["type"] == 1 and c["recipients"][0]["id"] == str(user_id)
        }
        return [m for m in self.messages.values() if int(m["channel_id"]) in ids]

    def member(
        self,
        guild_id: int,
        user: dict[str, Any],
        roles: list[int] | tuple[int, ...] = (),
        *,
        nick: str | None = None,
    ) -> dict[str, Any]:
        return {
            "user": user,
            "roles": [str(r) for r in roles],
            "nick": nick,
            "avatar": None,
            "banner": None,
            "joined_at": _now_iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "permissions": "0",
        }

    # --- recorded calls -----------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.calls)

    def calls_to(self, method: str, pattern: str, *, after: int = 0) -> list[Call]:
        rx = re.compile(pattern)
        return [c for c in self.calls[after:] if c.method == method and rx.search(c.path)]

    async def wait_for(
        self, predicate: Callable[[Call], bool], *, after: int = 0, timeout: float = 15.0
    ) -> Call:
        """The first recorded call (answered) from ``after`` on that satisfies ``predicate``."""

        def found() -> Call | None:
            return next((c for c in self.calls[after:] if c.status and predicate(c)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
        return found()  # type: ignore[return-value]

    async def wait_message(
        self, channel_id: int, *, contains: str = "", timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first message the bot posted in ``channel_id`` whose text contains ``contains``."""

        def found() -> dict[str, Any] | None:
            return next(
                (
                    m
                    for m in self.messages.values()
                    if int(m["channel_id"]) == channel_id and contains in message_text(m)
                ),
                None,
            )

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
        return found()  # type: ignore[return-value]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def fail_next(
        self,
        method: str,
        pattern: str,
        status: int,
        *,
        retry_after: float = 0.05,
        times: int = 1,
        code: int = 0,
        message: str | None = None,
        global_: bool = False,
        after: bool = False,
    ) -> None:
        """The next ``times`` calls of ``method`` whose path matches ``pattern`` (re.search) fail.
        ``global_``: a 429 of the global limit. ``after``: the call is carried out and only then
        answered with the failure (a 502 on the way back: the work is done, the client cannot know)."""
        default = {
            429: "You are being rate limited.",
            404: "Unknown Channel",
            500: "500: Internal Server Error",
            403: "Missing Access",
        }.get(status, "Error")
        self._faults.append(
            _Fault(
                method,
                re.compile(pattern),
                status,
                retry_after,
                times,
                code,
                message or default,
                global_,
                after,
            )
        )

    def _fault_for(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.pattern.search(path) and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- REST ---------------------------------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        return _json({"message": "404: Not Found", "code": 0}, 404)

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        call = Call(request.method, path, dict(request.query), body, files, at=time.perf_counter())
        self.calls.append(call)
        try:
            fault = self._fault_for(request.method, path)
            if fault is not None and not fault.after:
                response = self._fault_response(fault)
            else:
                self._authorize(request, path)
                data, status = await self._route(request.method, path, request.query, body, files)
                response = _json(data, status) if status != 204 else web.Response(status=204)
                call.response = data
                if fault is not None:  # done, and the answer is lost on the way back
                    call.done = True
                    response = self._fault_response(fault)
        except ApiError as exc:
            response = _json(exc.body(), exc.status)
            call.response = exc.body()
        call.status = response.status
        await self._notify()
        return response

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        if fault.status == 429:
            # discord.py retries a 429 only when it came through Discord's proxy (a Via header).
            headers = {
                "Retry-After": f"{fault.retry_after}",
                "Via": "1.1 google",
                "X-RateLimit-Scope": "global" if fault.global_ else "user",
            }
            if fault.global_:
                headers["X-RateLimit-Global"] = "true"
            return _json(
                {
                    "message": fault.message,
                    "retry_after": fault.retry_after,
                    "global": fault.global_,
                    "code": 0,
                },
                429,
                headers,
            )
        return _json({"message": fault.message, "code": fault.code}, fault.status)

    def _authorize(self, request: web.Request, path: str) -> None:
        if path.startswith(("/interactions/", "/webhooks/")):
            return  # authorised by the interaction or webhook token in the path
        if request.headers.get("Authorization") != f"Bot {self.token}":
            raise ApiError(401, 0, "401: Unauthorized")

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, dict[str, tuple[str, bytes]]]:
        files: dict[str, tuple[str, bytes]] = {}
        if request.content_type.startswith("multipart/"):
            body = None
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":  # type: ignore[union-attr]
                    body = json.loads(data)
                else:
                    files[part.name or ""] = (part.filename or "", bytes(data))  # type: ignore[union-attr]
            return body, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), files

    async def _route(
        self, method: str, path: str, query: Any, body: Any, files: dict[str, Any]
    ) -> tuple[Any, int]:
        parts = path.strip("/").split("/")
        app = str(self.APP_ID)
        team_route = await self._route_team_chats(method, parts, query, body or {}, files)
        if team_route is not None:
            return team_route
        match (method, parts):
            case ("GET", ["gateway"]):
                return {"url": self.gateway_url}, 200
            case ("GET", ["gateway", "bot"]):
                return {
                    "url": self.gateway_url,
                    "shards": self.shard_count,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }, 200
            case ("GET", ["users", "@me"]):
                return self.bot_user, 200
            case ("GET", ["users", uid]):
                if int(uid) not in self.users:
                    raise ApiError(404, 10013, "Unknown User")
                return self.users[int(uid)], 200
            case ("POST", ["users", "@me", "channels"]):
                return self._dm_channel(int((body or {}).get("recipient_id", 0))), 200
            case ("GET", ["oauth2", "applications", "@me"]) | ("GET", ["applications", "@me"]):
                return self._application(), 200
            case ("GET", ["applications", a, "commands"]) if a == app:
                return self._commands_out(None), 200
            case ("PUT", ["applications", a, "commands"]) if a == app:
                return self._put_commands(None, body), 200
            case ("GET", ["applications", a, "guilds", g, "commands"]) if a == app:
                return self._commands_out(self._guild(g)), 200
            case ("PUT", ["applications", a, "guilds", g, "commands"]) if a == app:
                return self._put_commands(self._guild(g), body), 200
            case ("POST", ["interactions", iid, token, "callback"]):
                return await self._callback(int(iid), token, body or {}, files, query)
            case (_, ["webhooks", wid, token, *rest]) if wid == app:
                return await self._interaction_webhook(
                    method, token, rest, body or {}, files, query
                )
            case ("POST", ["webhooks", wid, token]):
                return await self._execute_webhook(int(wid), token, body or {}, files, query)
            case ("GET", ["channels", cid]):
                return self._channel(cid), 200
            case ("PATCH", ["channels", cid]):
                return await self._modify_channel(self._channel(cid), body or {}), 200
            case ("DELETE", ["channels", cid]):
                return await self._delete_channel(self._channel(cid)), 200
            case ("POST", ["channels", cid, "messages"]):
                return await self._create_message(self._channel(cid), body or {}, files), 200
            case ("GET", ["channels", cid, "messages", mid]):
                return self._message_in(cid, mid), 200
            case ("PATCH", ["channels", cid, "messages", mid]):
                return await self._edit_message(self._message_in(cid, mid), body or {}, files), 200
            case ("DELETE", ["channels", cid, "messages", mid]):
                self.messages.pop(int(self._message_in(cid, mid)["id"]))
                return None, 204
            case ("PUT", ["channels", cid, "permissions", oid]):
                return self._put_overwrite(self._channel(cid), oid, body or {}), 204
            case ("DELETE", ["channels", cid, "permissions", oid]):
                channel = self._channel(cid)
                channel["permission_overwrites"] = [
                    o for o in channel["permission_overwrites"] if o["id"] != oid
                ]
                return None, 204
            case ("POST", ["channels", cid, "webhooks"]):
                return self._create_webhook(self._channel(cid), body or {}), 200
            case ("GET", ["channels", cid, "webhooks"]):
                return [w for w in self.webhooks.values() if w["channel_id"] == cid], 200
            case ("GET", ["guilds", g]):
                return self._guild_out(self._guild(g)), 200
            case ("GET", ["guilds", g, "channels"]):
                return self._guild(g)["channels"], 200
            case ("POST", ["guilds", g, "channels"]):
                return await self._create_channel(self._guild(g), body or {}), 201
            case ("GET", ["guilds", g, "roles"]):
                return self._guild(g)["roles"], 200
            case ("GET", ["guilds", g, "members", uid]):
                guild = self._guild(g)
                found = next((m for m in guild["members"] if m["user"]["id"] == uid), None)
                if found is None:
                    raise ApiError(404, 10007, "Unknown Member")
                return found, 200
        raise ApiError(404, 0, "404: Not Found")

    def _application(self) -> dict[str, Any]:
        return {
            "id": str(self.APP_ID),
            "name": self.BOT_NAME,
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.user(1, "owner"),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "summary": "",
            "interactions_endpoint_url": None,
            "bot": self.bot_user,
            "redirect_uris": [],
            "tags": [],
        }

    def _guild(self, gid: str | int) -> dict[str, Any]:
        guild = self.guilds.get(int(gid))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    def _guild_out(self, guild: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in guild.items()
            if k not in ("members", "channels", "threads", "presences", "voice_states")
        }

    def _channel(self, cid: str | int) -> dict[str, Any]:
        channel = self.channels.get(int(cid))
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    def _message_in(self, cid: str, mid: str) -> dict[str, Any]:
        message = self.messages.get(int(mid))
        if message is None or message["channel_id"] != cid:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    # --- application commands ---------------------------------------------------------------

    def _commands_out(self, guild: dict[str, Any] | None) -> list[dict[str, Any]]:
        gid = int(guild["id"]) if guild else None
        return copy.deepcopy(self.commands.get(gid, []))

    def _put_commands(self, guild: dict[str, Any] | None, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise invalid("_root", "Expected a list")
        check_commands(body)
        gid = int(guild["id"]) if guild else None
        old = {(c.get("type", 1), c["name"]): c for c in self.commands.get(gid, [])}
        stored = []
        for cmd in body:
            previous = old.get((cmd.get("type", 1), cmd["name"]))
            # What Discord stores and returns: ids, a version, its own defaults filled in.
            out = copy.deepcopy(cmd)
            out.update(
                {
                    "id": previous["id"] if previous else str(self.new_id()),
                    "application_id": str(self.APP_ID),
                    "version": str(self.new_id()),
                    "type": cmd.get("type", 1),
                    "default_member_permissions": None
                    if cmd.get("default_member_permissions") is None
                    else str(cmd["default_member_permissions"]),
                    "nsfw": bool(cmd.get("nsfw", False)),
                    "description_localizations": None,
                    "name_localizations": None,
                    "integration_types": [0],
                    "contexts": None if gid else (cmd.get("contexts") or [0, 1, 2]),
                }
            )
            out.pop("dm_permission", None)
            if gid:
                out["guild_id"] = str(gid)
            stored.append(out)
        self.commands[gid] = stored
        self.command_puts[gid] = self.command_puts.get(gid, 0) + 1
        return copy.deepcopy(stored)

    def command_paths(self, guild_id: int | None) -> dict[tuple[str, ...], dict[str, Any]]:
        """Every invocable path (``("admin", "bounty", "new")``) of the registered chat commands."""
        out: dict[tuple[str, ...], dict[str, Any]] = {}

        def walk(prefix: tuple[str, ...], node: dict[str, Any]) -> None:
            subs = [
                o
                for o in node.get("options") or []
                if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)
            ]
            if not subs:
                out[prefix] = node
            for sub in subs:
                walk((*prefix, sub["name"]), sub)

        for cmd in self.commands.get(guild_id, []):
            if cmd.get("type", 1) == 1:
                walk((cmd["name"],), cmd)
        return out

    # --- interactions -------------------------------------------------------------------------

    def _interaction_for(self, token: str) -> Interaction:
        interaction = self._by_token.get(token)
        if interaction is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        return interaction

    async def _callback(
        self, iid: int, token: str, body: dict[str, Any], files: dict[str, Any], query: Any
    ) -> tuple[Any, int]:
        interaction = self.interactions.get(iid)
        if interaction is None or interaction.token != token:
            raise ApiError(404, 10062, "Unknown interaction")
        if interaction.ack_type is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        kind = body.get("type")
        if kind not in ACKS:
            raise invalid("type", "Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.")
        data = body.get("data") or {}
        if kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and interaction.type != 3:
            raise ApiError(
                400, 40004, "Interaction callback type is only valid for component interactions"
            )
        if kind in (MESSAGE, UPDATE_MESSAGE):
            check_message(data)
        interaction.acked_at = time.perf_counter()
        interaction.ack_type = kind
        interaction.ack_data = data
        channel_id = interaction.payload["channel_id"]
        message: dict[str, Any] | None = None
        if kind in (MESSAGE, DEFERRED_MESSAGE):
            flags = data.get("flags", 0) & EPHEMERAL
            if kind == DEFERRED_MESSAGE:
                flags |= LOADING
                data = {}
            message = self._new_message(
                channel_id, data, files, flags=flags, interaction=interaction
            )
            interaction.original_id = int(message["id"])
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            interaction.original_id = int(interaction.payload["message"]["id"])
            if kind == UPDATE_MESSAGE:
                message = self._update_message(self.messages[interaction.original_id], data, files)
        await self._notify()
        if "with_response" not in query:
            return None, 204
        response: dict[str, Any] = {
            "interaction": {
                "id": str(iid),
                "type": interaction.type,
                "response_message_id": str(interaction.original_id)
                if interaction.original_id
                else None,
                "response_message_loading": kind == DEFERRED_MESSAGE,
                "response_message_ephemeral": bool(message and message["flags"] & EPHEMERAL),
            }
        }
        response["resource"] = {
            "type": kind,
            **({"message": message} if message is not None else {}),
        }
        return response, 200

    async def _interaction_webhook(
        self,
        method: str,
        token: str,
        rest: list[str],
        body: dict[str, Any],
        files: dict[str, Any],
        query: Any,
    ) -> tuple[Any, int]:
        interaction = self._interaction_for(token)
        if interaction.ack_type is None:
            raise ApiError(
                404, 10015, "Unknown Webhook"
            )  # Discord: no follow-up before the response
        if method == "POST" and not rest:
            check_message(body)
            original = self.messages.get(interaction.original_id or 0)
            if original is not None and original["flags"] & LOADING:
                # The first follow-up after a deferral fills the "thinking" message, keeping its visibility.
                message = self._update_message(original, body, files, clear_loading=True)
            else:
                message = self._new_message(
                    interaction.payload["channel_id"],
                    body,
                    files,
                    flags=body.get("flags", 0) & EPHEMERAL,
                    interaction=interaction,
                )
                interaction.followup_ids.append(int(message["id"]))
            await self._notify()
            return (message, 200) if query.get("wait") in ("true", "True", "1") else (None, 204)
        if len(rest) == 2 and rest[0] == "messages":
            mid = interaction.original_id if rest[1] == "@original" else int(rest[1])
            if (
                rest[1] != "@original"
                and mid not in interaction.followup_ids
                and mid != interaction.original_id
            ):
                raise ApiError(404, 10008, "Unknown Message")
            message = self.messages.get(mid or 0)
            if message is None:
                raise ApiError(404, 10008, "Unknown Message")
            if method == "GET":
                return message, 200
            if method == "PATCH":
                check_message(body)
                updated = self._update_message(message, body, files, clear_loading=True)
                await self._notify()
                return updated, 200
            if method == "DELETE":
                self.messages.pop(int(message["id"]))
                await self._notify()
                return None, 204
        raise ApiError(404, 0, "404: Not Found")

    # --- messages -----------------------------------------------------------------------------

    def _new_message(
        self,
        channel_id: str,
        body: dict[str, Any],
        files: dict[str, Any],
        *,
        flags: int = 0,
        interaction: Interaction | None = None,
        author: dict[str, Any] | None = None,
        webhook_id: int | None = None,
    ) -> dict[str, Any]:
        mid = self.new_id()
        channel = self.channels.get(int(channel_id))
        message: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": author or self.bot_user,
            "content": "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "mention_channels": [],
            "attachments": [],
            "embeds": [],
            "reactions": [],
            "pinned": False,
            "type": 0 if interaction is None else 20,
            "flags": flags,
            "components": [],
            "allowed_mentions": None,
        }
        if channel is not None and channel.get("guild_id"):
            message["guild_id"] = channel["guild_id"]
        if webhook_id is not None:
            message["webhook_id"] = str(webhook_id)
        if interaction is not None:
            message["webhook_id"] = str(self.APP_ID)
            message["application_id"] = str(self.APP_ID)
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self._interaction_user(interaction),
                "authorizing_integration_owners": {},
            }
        self._apply(message, body, files)
        self.messages[mid] = message
        return message

    @staticmethod
    def _interaction_user(interaction: Interaction) -> dict[str, Any]:
        return interaction.payload.get("member", {}).get("user") or interaction.payload["user"]

    def _update_message(
        self,
        message: dict[str, Any],
        body: dict[str, Any],
        files: dict[str, Any],
        *,
        clear_loading: bool = False,
    ) -> dict[str, Any]:
        if clear_loading:
            message["flags"] &= ~LOADING
        message["edited_timestamp"] = _now_iso()
        self._apply(message, body, files, edit=True)
        return message

    def _apply(
        self,
        message: dict[str, Any],
        body: dict[str, Any],
        files: dict[str, Any],
        *,
        edit: bool = False,
    ) -> None:
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        if "allowed_mentions" in body:
            message["allowed_mentions"] = body["allowed_mentions"]
        attachments = []
        if edit and "attachments" in body:
            keep = {str(a.get("id")) for a in body["attachments"]}
            attachments = [a for a in message["attachments"] if a["id"] in keep]
        elif edit:
            attachments = message["attachments"]
        for name, (filename, content) in files.items():
            aid = self.new_id()
            attachments.append(
                {
                    "id": str(aid),
                    "filename": filename,
                    "size": len(content),
                    "url": f"{self.url}/attachments/{aid}/{filename}",
                    "proxy_url": "",
                    "content": content.decode("utf-8", "replace"),
                    "field": name,
                }
            )
            self.attachment_data[str(aid)] = content
        message["attachments"] = attachments
        content = message.get("content") or ""
        parse = (message.get("allowed_mentions") or {"parse": ["everyone", "users", "roles"]}).get(
            "parse", []
        )
        message["mention_everyone"] = "everyone" in parse and (
            "@everyone" in content or "@here" in content
        )

    async def _create_message(
        self, channel: dict[str, Any], body: dict[str, Any], files: dict[str, Any]
    ) -> dict[str, Any]:
        check_message(body)
        if not (body.get("content") or body.get("embeds") or files or body.get("components")):
            raise ApiError(400, 50006, "Cannot send an empty message")
        if channel.get("type") == 1 and int(channel["recipients"][0]["id"]) in self.no_dms:
            raise ApiError(403, 50007, "Cannot send messages to this user")
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            # Discord: a message with the same nonce sent in the last few minutes is returned
            # instead of a new one, so a create retried after a lost answer posts once.
            for earlier in self.messages.values():
                if earlier["channel_id"] == str(channel["id"]) and earlier.get("nonce") == str(
                    nonce
                ):
                    return earlier
        message = self._new_message(channel["id"], body, files)
        if nonce is not None:
            message["nonce"] = str(nonce)
        await self._dispatch_message("MESSAGE_CREATE", message)
        await self._notify()
        return message

    async def _edit_message(
        self, message: dict[str, Any], body: dict[str, Any], files: dict[str, Any]
    ) -> dict[str, Any]:
        check_message(body)
        updated = self._update_message(message, body, files)
        await self._notify()
        return updated

    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if int(m["channel_id"]) == channel_id]

    def message(self, message_id: int | str | None) -> dict[str, Any]:
        return self.messages[int(message_id or 0)]

    # --- channels, overwrites, webhooks (for team channels) -----------------------------------

    async def _create_channel(self, guild: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name") or ""
        if not 1 <= len(name) <= 100:
            raise invalid("name", "Must be between 1 and 100 in length.")
        parent = body.get("parent_id")
        if parent is not None:
            siblings = [c for c in guild["channels"] if c.get("parent_id") == str(parent)]
            if len(siblings) >= 50:
                raise ApiError(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "parent_id": {
                            "_errors": [
                                {
                                    "code": "CHANNEL_PARENT_MAX_CHANNELS",
                                    "message": "Maximum number of channels in category reached (50)",
                                }
                            ]
                        }
                    },
                )
        if len(guild["channels"]) >= 500:
            raise ApiError(400, 30013, "Maximum number of guild channels reached (500)")
        channel = self.add_channel(
            int(guild["id"]),
            self.new_id(),
            name,
            type=body.get("type", 0),
            parent_id=int(parent) if parent else None,
        )
        channel["permission_overwrites"] = [
            {
                "id": str(o["id"]),
                "type": o.get("type", 0),
                "allow": str(o.get("allow", 0)),
                "deny": str(o.get("deny", 0)),
            }
            for o in body.get("permission_overwrites") or []
        ]
        channel["topic"] = body.get("topic")
        await self.dispatch("CHANNEL_CREATE", channel)
        return channel

    async def _modify_channel(
        self, channel: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        for key in ("name", "topic", "position", "nsfw"):
            if key in body:
                channel[key] = body[key]
        if "parent_id" in body:
            channel["parent_id"] = str(body["parent_id"]) if body["parent_id"] else None
        if "permission_overwrites" in body:
            channel["permission_overwrites"] = [
                {
                    "id": str(o["id"]),
                    "type": o.get("type", 0),
                    "allow": str(o.get("allow", 0)),
                    "deny": str(o.get("deny", 0)),
                }
                for o in body["permission_overwrites"]
            ]
        if channel.get("type") in (11, 12):
            for key in ("archived", "locked", "auto_archive_duration", "invitable"):
                if key in body:
                    channel["thread_metadata"][key] = body[key]
            await self.dispatch("THREAD_UPDATE", channel)
            return channel
        await self.dispatch("CHANNEL_UPDATE", channel)
        return channel

    async def _delete_channel(self, channel: dict[str, Any]) -> dict[str, Any]:
        self.channels.pop(int(channel["id"]), None)
        if channel.get("guild_id"):
            guild = self.guilds[int(channel["guild_id"])]
            guild["channels"] = [c for c in guild["channels"] if c["id"] != channel["id"]]
            if channel.get("type") in (11, 12):
                guild["threads"] = [c for c in guild["threads"] if c["id"] != channel["id"]]
                await self.dispatch(
                    "THREAD_DELETE",
                    {
                        "id": channel["id"],
                        "guild_id": channel["guild_id"],
                        "parent_id": channel["parent_id"],
                        "type": channel["type"],
                    },
                )
                return channel
        await self.dispatch("CHANNEL_DELETE", channel)
        return channel

    def _put_overwrite(self, channel: dict[str, Any], oid: str, body: dict[str, Any]) -> None:
        others = [o for o in channel["permission_overwrites"] if o["id"] != oid]
        others.append(
            {
                "id": oid,
                "type": body.get("type", 0),
                "allow": str(body.get("allow", 0)),
                "deny": str(body.get("deny", 0)),
            }
        )
        channel["permission_overwrites"] = others

    def _create_webhook(self, channel: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        wid = self.new_id()
        hook = {
            "id": str(wid),
            "type": 1,
            "guild_id": channel.get("guild_id"),
            "channel_id": channel["id"],
            "name": body.get("name") or "webhook",
            "avatar": None,
            "token": secrets.token_urlsafe(32),
            "application_id": str(self.APP_ID),
            "user": self.bot_user,
        }
        self.webhooks[wid] = hook
        return hook

    async def _execute_webhook(
        self, wid: int, token: str, body: dict[str, Any], files: dict[str, Any], query: Any
    ) -> tuple[Any, int]:
        hook = self.webhooks.get(wid)
        if hook is None or hook["token"] != token:
            raise ApiError(404, 10015, "Unknown Webhook")
        check_message(body)
        username = body.get("username") or hook["name"]
        if not 1 <= len(username) <= 80 or re.search(r"(?i)discord|clyde", username):
            raise invalid(
                "username", 'Username cannot contain "discord" or "clyde" and has 1-80 characters'
            )
        channel_id = hook["channel_id"]
        if query.get("thread_id"):
            thread = self._channel(query["thread_id"])
            if thread.get("parent_id") != hook["channel_id"]:
                raise ApiError(400, 50035, "Invalid Form Body")
            channel_id = thread["id"]
        author = self.user(wid, username, bot=True)
        message = self._new_message(channel_id, body, files, author=author, webhook_id=wid)
        await self._dispatch_message("MESSAGE_CREATE", message)
        await self._notify()
        return (message, 200) if query.get("wait") in ("true", "True", "1") else (None, 204)

    # --- team chats: threads, users' messages, the bot's permissions -------------------------

    async def _route_team_chats(
        self, method: str, parts: list[str], query: Any, body: dict[str, Any], files: dict[str, Any]
    ) -> tuple[Any, int] | None:
        match (method, parts):
            case ("POST", ["channels", cid, "threads"]):
                return await self._start_thread(self._channel(cid), body), 201
            case ("PUT", ["channels", cid, "thread-members", uid]):
                thread = self._thread(cid)
                self.thread_members.setdefault(int(thread["id"]), set()).add(int(uid))
                return None, 204
            case ("DELETE", ["channels", cid, "thread-members", uid]):
                self.thread_members.get(int(self._thread(cid)["id"]), set()).discard(int(uid))
                return None, 204
            case ("GET", ["channels", cid, "thread-members"]):
                thread = self._thread(cid)
                return [
                    {
                        "id": thread["id"],
                        "user_id": str(u),
                        "join_timestamp": _now_iso(),
                        "flags": 0,
                    }
                    for u in sorted(self.thread_members.get(int(thread["id"]), set()))
                ], 200
            case ("PATCH", ["webhooks", wid, token, "messages", mid]) if wid != str(self.APP_ID):
                hook = self.webhooks.get(int(wid))
                message = self.messages.get(int(mid))
                if (
                    hook is None
                    or hook["token"] != token
                    or message is None
                    or message.get("webhook_id") != str(hook["id"])
                ):
                    raise ApiError(404, 10008, "Unknown Message")
                check_message(body)
                updated = self._update_message(message, body, files)
                await self._dispatch_message("MESSAGE_UPDATE", updated)
                await self._notify()
                return updated, 200
        return None

    def _thread(self, cid: str) -> dict[str, Any]:
        thread = self._channel(cid)
        if thread.get("type") not in (11, 12):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        return thread

    async def _start_thread(self, parent: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if parent.get("type") != 0:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        name = body.get("name") or ""
        if not 1 <= len(name) <= 100:
            raise invalid("name", "Must be between 1 and 100 in length.")
        tid = self.new_id()
        thread: dict[str, Any] = {
            "id": str(tid),
            "type": body.get("type", 11),
            "name": name,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": str(self.BOT_ID),
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "flags": 0,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": body.get("auto_archive_duration", 4320),
                "archive_timestamp": _now_iso(),
                "locked": False,
                "invitable": body.get("invitable", True),
                "create_timestamp": _now_iso(),
            },
        }
        self.channels[tid] = thread
        self.guilds[int(parent["guild_id"])]["threads"].append(thread)
        self.thread_members[tid] = {self.BOT_ID}
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    def threads_in(self, guild_id: int) -> list[dict[str, Any]]:
        return list(self.guilds[guild_id]["threads"])

    def restrict_bot(self, guild_id: int, permissions: int) -> None:
        """The bot is no longer the server's owner: it has only ``permissions`` (a role given to it).
        Call before the bot connects (the guild is sent as GUILD_CREATE)."""
        guild = self.guilds[guild_id]
        guild["owner_id"] = str(self.BOT_ID + 1)
        role = self.add_role(guild_id, self.new_id(), "Bounty Bot", permissions=permissions)
        for member in guild["members"]:
            if member["user"]["id"] == str(self.BOT_ID):
                member["roles"] = [role["id"]]

    async def _dispatch_message(self, event: str, message: dict[str, Any]) -> None:
        if self.dispatch_messages and message.get("guild_id"):
            await self.dispatch(event, copy.deepcopy(message))

    async def post(
        self,
        user: dict[str, Any],
        channel_id: int | str,
        content: str,
        *,
        reply_to: int | str | None = None,
        roles: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        """A user writes ``content`` in a channel (or thread): stored and dispatched as MESSAGE_CREATE."""
        channel = self._channel(channel_id)
        message = self._new_message(channel["id"], {"content": content}, {}, author=user)
        if reply_to is not None:
            message["type"] = 19
            message["message_reference"] = {
                "message_id": str(reply_to),
                "channel_id": channel["id"],
                "guild_id": channel.get("guild_id"),
                "type": 0,
            }
            message["referenced_message"] = copy.deepcopy(self.messages.get(int(reply_to)))
        gid = channel.get("guild_id")
        if gid:
            message["member"] = {
                k: v for k, v in self.member(int(gid), user, roles).items() if k != "user"
            }
        await self.dispatch("MESSAGE_CREATE", copy.deepcopy(message))
        await self._notify()
        return message

    async def edit_post(self, message_id: int | str, content: str) -> dict[str, Any]:
        """The author edits their message: MESSAGE_UPDATE with the new content."""
        message = self.messages[int(message_id)]
        message["content"] = content
        message["edited_timestamp"] = _now_iso()
        await self.dispatch("MESSAGE_UPDATE", copy.deepcopy(message))
        await self._notify()
        return message

    async def delete_by_hand(self, channel_id: int | str) -> None:
        """Someone deletes a channel in the Discord client."""
        await self._delete_channel(self._channel(channel_id))

    async def edit_by_hand(self, channel_id: int | str, **changes: Any) -> dict[str, Any]:
        """Someone edits a channel (name, overwrites...) in the Discord client."""
        return await self._modify_channel(self._channel(channel_id), changes)

    # --- the gateway --------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, autoping=True, max_msg_size=0)
        await ws.prepare(request)
        session = _Session(ws)
        await session.send(10, {"heartbeat_interval": self.heartbeat_interval_ms})
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                await self._on_frame(session, frame.get("op"), frame.get("d"))
        finally:
            if session in self._sessions:
                self._sessions.remove(session)
            await self._notify()
        return ws

    async def _on_frame(self, session: _Session, op: int | None, d: Any) -> None:
        if op == 1:
            await session.send(11, None)
        elif op == 2:
            if d.get("token") != self.token:
                await session.ws.close(code=4004, message=b"Authentication failed.")
                return
            if int(d.get("intents") or 0) & PRIVILEGED_INTENTS and not self.privileged_intents:
                await session.ws.close(code=4014, message=b"Disallowed intent(s).")
                return
            shard = d.get("shard") or [0, 1]
            session.shard = (int(shard[0]), int(shard[1]))
            if not 0 <= session.shard[0] < session.shard[1]:
                await session.ws.close(code=4010, message=b"Invalid shard.")
                return
            mine = [
                g
                for gid, g in self.guilds.items()
                if (gid >> 22) % session.shard[1] == session.shard[0]
            ]
            await session.send(
                0,
                {
                    "v": 10,
                    "user": self.bot_user,
                    "guilds": [{"id": g["id"], "unavailable": True} for g in mine],
                    "session_id": session.session_id,
                    "resume_gateway_url": self.gateway_url,
                    "shard": list(session.shard),
                    "application": {"id": str(self.APP_ID), "flags": 0},
                    "private_channels": [],
                    "relationships": [],
                    "presences": [],
                    "guild_join_requests": [],
                    "geo_ordered_rtc_regions": [],
                    "user_settings": {},
                },
                "READY",
            )
            for guild in mine:
                await session.send(0, copy.deepcopy(guild), "GUILD_CREATE")
            self._resumable[session.session_id] = session
            self.identifies += 1
            self._sessions.append(session)
            session.identified.set()
            await self._notify()
        elif op == 6:
            old = self._resumable.get((d or {}).get("session_id", ""))
            if old is None or d.get("token") != self.token:
                await session.send(9, False)  # unknown session: the client must IDENTIFY again
                return
            session.session_id, session.seq, session.shard = old.session_id, old.seq, old.shard
            await session.send(0, {}, "RESUMED")
            self._resumable[session.session_id] = session
            self.resumes += 1
            self._sessions.append(session)
            session.identified.set()
            await self._notify()

    @property
    def shards_connected(self) -> list[tuple[int, int]]:
        """(shard id, shard count) of every identified gateway connection, sorted."""
        return sorted(s.shard for s in self._sessions if s.identified.is_set() and not s.ws.closed)

    @property
    def connected(self) -> bool:
        return any(s.identified.is_set() and not s.ws.closed for s in self._sessions)

    async def wait_connected(self, timeout: float = 15.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.connected), timeout)

    async def dispatch(
        self, event: str, data: dict[str, Any], *, guild_id: int | None = None
    ) -> tuple[int, int] | None:
        """Send a dispatch to the session holding ``guild_id``'s shard, ``(guild_id >> 22) % shard
        count`` as Discord routes them (no guild, a DM: shard 0); the shard it went to, if any."""
        gid = (
            guild_id
            if guild_id is not None
            else (int(data["guild_id"]) if data.get("guild_id") else None)
        )
        for session in list(self._sessions):
            if session.ws.closed:
                continue
            shard_id, count = session.shard
            if (0 if gid is None else (gid >> 22) % count) == shard_id:
                await session.send(0, data, event)
                return session.shard
        return None

    def forget_sessions(self) -> None:
        """Forget every gateway session: a RESUME is refused (invalid session) and the bot must IDENTIFY."""
        self._resumable.clear()

    async def drop_connections(self) -> None:
        """Close every gateway connection (as Discord does now and then): the bot must reconnect."""
        for s in list(self._sessions):
            await s.ws.close(code=4000, message=b"Unknown error")

    # --- driving interactions -----------------------------------------------------------------

    def _new_interaction(
        self,
        itype: int,
        user: dict[str, Any],
        *,
        guild_id: int | None,
        channel_id: int,
        roles: tuple[int, ...],
        data: dict[str, Any],
        message: dict[str, Any] | None = None,
        nick: str | None = None,
    ) -> Interaction:
        iid = self.new_id()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.APP_ID),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "locale": "en-US",
            "app_permissions": "2248473465835073",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)}
            if guild_id
            else {"1": user["id"]},
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        channel = self.channels.get(channel_id)
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = "en-US"
            payload["guild"] = {"id": str(guild_id), "locale": "en-US", "features": []}
            member = self.member(guild_id, user, roles, nick=nick)
            payload["member"] = member
            payload["context"] = 0
            payload["channel"] = channel or {
                "id": str(channel_id),
                "type": 0,
                "guild_id": str(guild_id),
                "name": "general",
            }
        else:
            payload["user"] = user
            payload["context"] = 1
            payload["channel"] = {
                "id": str(channel_id),
                "type": 1,
                "recipients": [user],
                "last_message_id": None,
                "flags": 0,
            }
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        interaction = Interaction(iid, token, payload)
        self.interactions[iid] = interaction
        self._by_token[token] = interaction
        return interaction

    async def _deliver(self, interaction: Interaction) -> Interaction:
        if not self.connected:
            await self.wait_connected()
        interaction.dispatched_at = time.perf_counter()
        gid = int(interaction.payload["guild_id"]) if "guild_id" in interaction.payload else None
        shard = await self.dispatch("INTERACTION_CREATE", interaction.payload, guild_id=gid)
        if shard is not None:
            interaction.shards.append(shard)
        return interaction

    def _resolve_command(
        self, name: str, guild_id: int | None
    ) -> tuple[tuple[str, ...], dict[str, Any], int | None]:
        words = tuple(name.lstrip("/").split())
        for scope in [guild_id, None] if guild_id is not None else [None]:
            node = self.command_paths(scope).get(words)
            if node is not None:
                return words, node, scope
        raise LookupError(
            f"/{' '.join(words)} is not registered (the bot registered: "
            f"{sorted(' '.join(p) for s in self.commands for p in self.command_paths(s))})"
        )

    @staticmethod
    def _option_value(option: dict[str, Any], value: Any) -> Any:
        t = option["type"]
        if t == INTEGER and isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        if t == STRING and not isinstance(value, str):
            return str(value)
        return value

    def command_payload(
        self, name: str, options: dict[str, Any], *, guild_id: int | None
    ) -> dict[str, Any]:
        """The ``data`` of an application-command interaction, typed from the registered definition."""
        words, node, scope = self._resolve_command(name, guild_id)
        root = next(
            c for c in self.commands[scope] if c["name"] == words[0] and c.get("type", 1) == 1
        )
        defined = {o["name"]: o for o in node.get("options") or []}
        unknown = set(options) - set(defined)
        if unknown:
            raise LookupError(
                f"/{name} has no option {sorted(unknown)[0]!r}; it has {sorted(defined)}"
            )
        leaf = [
            {"type": defined[k]["type"], "name": k, "value": self._option_value(defined[k], v)}
            for k, v in options.items()
            if v is not None
        ]
        nested: list[dict[str, Any]] = leaf
        level = root
        chain = []
        for word in words[1:]:
            level = next(o for o in level["options"] if o["name"] == word)
            chain.append(level)
        for sub in reversed(chain):
            nested = [{"type": sub["type"], "name": sub["name"], "options": nested}]
        data: dict[str, Any] = {
            "id": root["id"],
            "name": root["name"],
            "type": 1,
            "options": nested,
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        return data

    async def slash(
        self,
        user: dict[str, Any],
        name: str,
        /,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        roles: tuple[int, ...] | list[int] = (),
        dm: bool = False,
        nick: str | None = None,
        **options: Any,
    ) -> Interaction:
        """Dispatch ``/name`` typed by ``user`` (in the only guild unless told, or in a DM)."""
        if not dm and guild_id is None and len(self.guilds) == 1:
            guild_id = next(iter(self.guilds))
        if dm:
            guild_id = None
        if channel_id is None:
            channel_id = self._default_channel(guild_id, user)
        data = self.command_payload(name, options, guild_id=guild_id)
        if dm and "guild_id" in data:
            raise LookupError(f"/{name} is a guild command: Discord does not offer it in DMs")
        interaction = self._new_interaction(
            2,
            user,
            guild_id=guild_id,
            channel_id=channel_id,
            roles=tuple(roles),
            data=data,
            nick=nick,
        )
        return await self._deliver(interaction)

    async def autocomplete(
        self,
        user: dict[str, Any],
        name: str,
        focused: str,
        typed: str,
        /,
        *,
        roles: tuple[int, ...] | list[int] = (),
        **options: Any,
    ) -> Interaction:
        """The user is typing ``typed`` into option ``focused`` of ``/name`` (interaction type 4)."""
        guild_id = next(iter(self.guilds)) if len(self.guilds) == 1 else None
        data = self.command_payload(name, {**options, focused: typed}, guild_id=guild_id)
        leaf = data["options"]
        while (
            leaf
            and leaf[0].get("options") is not None
            and leaf[0]["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)
        ):
            leaf = leaf[0]["options"]
        for option in leaf:
            if option["name"] == focused:
                option["value"], option["focused"] = str(typed), True
        interaction = self._new_interaction(
            4,
            user,
            guild_id=guild_id,
            channel_id=self._default_channel(guild_id, user),
            roles=tuple(roles),
            data=data,
        )
        return await self._deliver(interaction)

    def _default_channel(self, guild_id: int | None, user: dict[str, Any]) -> int:
        if guild_id is None:
            return int(user["id"]) + 1  # a DM channel id
        text = [c for c in self.guilds[guild_id]["channels"] if c["type"] == 0]
        if not text:
            return int(self.add_channel(guild_id, self.new_id(), "general")["id"])
        return int(text[0]["id"])

    def message_with(self, custom_id: str) -> dict[str, Any]:
        """The latest message carrying a component with ``custom_id``."""
        for message in reversed(list(self.messages.values())):
            for row in message.get("components") or []:
                if any(c.get("custom_id") == custom_id for c in row.get("components") or []):
                    return message
        raise LookupError(f"no message has a component {custom_id!r}")

    async def click(
        self,
        user: dict[str, Any],
        custom_id: str,
        *,
        message: dict[str, Any] | None = None,
        roles: tuple[int, ...] | list[int] = (),
    ) -> Interaction:
        """Press the button ``custom_id`` (of ``message``, else of the latest message that has it)."""
        message = message or self.message_with(custom_id)
        guild_id = int(message["guild_id"]) if message.get("guild_id") else None
        data = {"custom_id": custom_id, "component_type": 2}
        interaction = self._new_interaction(
            3,
            user,
            guild_id=guild_id,
            channel_id=int(message["channel_id"]),
            roles=tuple(roles),
            data=data,
            message=message,
        )
        return await self._deliver(interaction)

    async def replay(self, interaction: Interaction) -> Interaction:
        """Deliver the same interaction (same id and token) again, as a redelivered gateway event."""
        return await self._deliver(interaction)

    # --- reading what the bot answered --------------------------------------------------------

    def answers(self, interaction: Interaction) -> list[dict[str, Any]]:
        """The messages answering ``interaction``: its response (or edited message), then follow-ups."""
        ids = (
            [interaction.original_id] if interaction.original_id else []
        ) + interaction.followup_ids
        return [self.messages[i] for i in ids if i in self.messages]

    def visible_to_others(self, message: dict[str, Any]) -> bool:
        return not message["flags"] & EPHEMERAL

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            c
            for row in message.get("components") or []
            for c in row.get("components") or []
            if c.get("type") == 2
        ]

    def message_payloads(self, *, after: int = 0) -> list[Call]:
        """Every answered call that sent message content (for checks on every payload)."""
        out = []
        for c in self.calls[after:]:
            body = c.body if isinstance(c.body, dict) else {}
            if c.path.endswith("/callback"):
                body = body.get("data") or {}
            if any(k in body for k in ("content", "embeds")) and c.method in ("POST", "PATCH"):
                out.append(c)
        return out


def message_text(message: dict[str, Any]) -> str:
    """Everything a person reads in a message: content, embed titles, descriptions, fields, footers."""
    parts = [message.get("content") or ""]
    for e in message.get("embeds") or []:
        parts += [e.get("title") or "", e.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in e.get("fields") or []]
        parts.append((e.get("footer") or {}).get("text") or "")
    for a in message.get("attachments") or []:
        parts.append(a.get("content") or "")
    return "\n".join(p for p in parts if p)


def call_payload(call: Call) -> dict[str, Any]:
    body = call.body if isinstance(call.body, dict) else {}
    return body.get("data") or {} if call.path.endswith("/callback") else body
