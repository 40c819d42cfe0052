"""A local stand-in for Anthropic's Messages API and OpenAI's chat completions, so the real SDKs run
against it.

An aiohttp server on 127.0.0.1 (ephemeral port) answering ``POST /v1/messages`` in Anthropic's shape
and ``POST /v1/chat/completions`` in OpenAI's, plus ``POST /v1/embeddings`` (deterministic vectors
from the words of each input, so texts sharing words are near each other). Tests script what the "model" does next, one
behaviour per HTTP request (an SDK retry is a new request and takes the next one): call
approve_transfer or reject_transfer, answer plain text, echo the player's message, fail with HTTP
500 or 529 (in each API's error shape), answer a malformed body, or hang until the stand-in stops.
With nothing scripted it answers ``default`` (plain text, no tool call).

Every request is recorded (path, lower-cased headers, JSON body) so tests can check what the SDKs
really send: the key, the model, the system prompt and its cache_control, the tools, the turns.
Error answers carry ``retry-after-ms: 1``: both SDKs ignore a zero ``retry-after`` and fall back to
their exponential backoff (0.5 s, 1 s), so a positive, tiny wait is what makes retries quick.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.standins.local import serve_local

Kind = Literal["tools", "text", "echo", "error", "malformed", "garbage", "hang"]
ANTHROPIC = "anthropic"
OPENAI = "openai"
OPENAI_ERRORS = {
    401: ("invalid_request_error", "Incorrect API key provided."),
    429: ("requests", "Rate limit reached."),
    500: ("server_error", "The server had an error while processing your request."),
}
ANTHROPIC_ERRORS = {  # status -> (error.type, error.message)
    400: (
        "invalid_request_error",
        "There was an issue with the format or content of your request.",
    ),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    429: ("rate_limit_error", "Your account has hit a rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass(frozen=True)
class Behaviour:
    """What the stand-in model does with one request."""

    kind: Kind
    text: str = ""
    calls: tuple[tuple[str, Any], ...] = ()  # (tool name, input: a dict, or a raw arguments string)
    status: int = 200

    @classmethod
    def approve(cls, reason: str = "you convinced me", text: str = "") -> Behaviour:
        return cls("tools", text=text, calls=(("approve_transfer", {"reason": reason}),))

    @classmethod
    def reject(cls, reason: str = "not convinced", text: str = "No.") -> Behaviour:
        return cls("tools", text=text, calls=(("reject_transfer", {"reason": reason}),))

    @classmethod
    def tool_calls(cls, *calls: tuple[str, Any], text: str = "") -> Behaviour:
        return cls("tools", text=text, calls=tuple(calls))

    @classmethod
    def say(cls, text: str) -> Behaviour:
        """Plain text, no tool call (whatever the text says)."""
        return cls("text", text=text)

    @classmethod
    def echo(cls) -> Behaviour:
        """Plain text repeating the last user message word for word (a model fooled into quoting)."""
        return cls("echo")

    @classmethod
    def server_error(cls) -> Behaviour:
        return cls("error", status=500)

    @classmethod
    def http_error(cls, status: int) -> Behaviour:
        """Any error status, in each API's error shape (401 for a wrong key, 429, ...)."""
        return cls("error", status=status)

    @classmethod
    def overloaded(cls) -> Behaviour:
        return cls("error", status=529)

    @classmethod
    def malformed(cls) -> Behaviour:
        """HTTP 200 with JSON that is not a message/completion at all."""
        return cls("malformed")

    @classmethod
    def garbage(cls) -> Behaviour:
        """HTTP 200 declared as JSON whose body is not JSON."""
        return cls("garbage")

    @classmethod
    def hang(cls) -> Behaviour:
        """Never answer (until the stand-in stops)."""
        return cls("hang")


@dataclass
class Recorded:
    api: str  # "anthropic" | "openai"
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.perf_counter)
    answered: Kind | None = None
    raw: bytes = b""  # the body exactly as the SDK sent it

    @property
    def api_key(self) -> str | None:
        """The key as sent: ``x-api-key`` or an ``Authorization: Bearer`` header."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None


class LlmStandin:
    """Both APIs on one port; ``url`` is the host root (Anthropic's base URL), ``url + '/v1'`` OpenAI's."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.default = Behaviour.say("I am a stand-in model with nothing scripted.")
        self._queue: deque[Behaviour] = deque()
        self._ids = itertools.count(1)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    embeddings_fail: int = 0  # answer the next N embedding requests with HTTP 500

    def script(self, *behaviours: Behaviour) -> None:
        """Queue what the next requests get, in order."""
        self._queue.extend(behaviours)

    @property
    def pending(self) -> int:
        """Scripted behaviours not yet used."""
        return len(self._queue)

    def by_api(self, api: str) -> list[Recorded]:
        return [r for r in self.requests if r.api == api]

    async def start(self) -> LlmStandin:
        app = web.Application()
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner, self.port = await serve_local(app)
        return self

    async def stop(self) -> None:
        self._release.set()  # let hanging handlers finish so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LlmStandin:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- request handling ---------------------------------------------------------------------

    async def _take(self, api: str, request: web.Request) -> tuple[Recorded, Behaviour]:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        rec = Recorded(
            api, request.path, {k.lower(): v for k, v in request.headers.items()}, body, raw=raw
        )
        self.requests.append(rec)
        behaviour = self._queue.popleft() if self._queue else self.default
        rec.answered = behaviour.kind
        if behaviour.kind == "hang":
            await self._release.wait()
        return rec, behaviour

    @staticmethod
    def _last_user_text(api: str, body: dict[str, Any]) -> str:
        for msg in reversed(body.get("messages") or []):
            if msg.get("role") != "user":
                continue
            content = msg.get("content")
            if isinstance(content, str):
                return content
            return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))
        return ""

    async def _anthropic(self, request: web.Request) -> web.Response:
        rec, b = await self._take(ANTHROPIC, request)
        if b.kind in ("error", "hang"):
            kind, message = ANTHROPIC_ERRORS.get(b.status, ANTHROPIC_ERRORS[500])
            return _json(
                {
                    "type": "error",
                    "error": {"type": kind, "message": message},
                    "request_id": f"req_{next(self._ids)}",
                },
                status=b.status if b.kind == "error" else 500,
            )
        if b.kind == "malformed":
            return _json({"type": "message", "id": f"msg_{next(self._ids)}", "unexpected": True})
        if b.kind == "garbage":
            return web.Response(text="<html>not json", content_type="application/json")
        text = self._last_user_text(ANTHROPIC, rec.body) if b.kind == "echo" else b.text
        content: list[dict[str, Any]] = []
        if text:
            content.append({"type": "text", "text": text})
        for name, args in b.calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{next(self._ids):06d}",
                    "name": name,
                    "input": args,
                }
            )
        return _json(
            {
                "id": f"msg_{next(self._ids):06d}",
                "type": "message",
                "role": "assistant",
                "model": rec.body.get("model", "unknown"),
                "content": content,
                "stop_reason": "tool_use" if b.calls else "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 100,
                    "output_tokens": 20,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            }
        )

    async def _embeddings(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        rec = Recorded(
            OPENAI, request.path, {k.lower(): v for k, v in request.headers.items()}, body
        )
        self.requests.append(rec)
        if self.embeddings_fail > 0:
            self.embeddings_fail -= 1
            return _json(
                {
                    "error": {
                        "message": OPENAI_ERRORS[500][1],
                        "type": OPENAI_ERRORS[500][0],
                        "param": None,
                        "code": None,
                    }
                },
                status=500,
            )
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dimensions = int(body.get("dimensions") or 1536)
        return _json(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": word_vector(t, dimensions)}
                    for i, t in enumerate(inputs)
                ],
                "model": body.get("model", "unknown"),
                "usage": {
                    "prompt_tokens": sum(len(t.split()) for t in inputs),
                    "total_tokens": sum(len(t.split()) for t in inputs),
                },
            }
        )

    async def _openai(self, request: web.Request) -> web.Response:
        rec, b = await self._take(OPENAI, request)
        if b.kind in ("error", "hang"):
            return _json(
                {
                    "error": {
                        "message": OPENAI_ERRORS.get(b.status, OPENAI_ERRORS[500])[1],
                        "type": OPENAI_ERRORS.get(b.status, OPENAI_ERRORS[500])[0],
                        "param": None,
                        "code": None,
                    }
                },
                status=b.status if b.kind == "error" else 500,
            )
        if b.kind == "malformed":
            return _json(
                {
                    "id": f"chatcmpl-{next(self._ids)}",
                    "object": "chat.completion",
                    "unexpected": True,
                }
            )
        if b.kind == "garbage":
            return web.Response(text="<html>not json", content_type="application/json")
        text = self._last_user_text(OPENAI, rec.body) if b.kind == "echo" else b.text
        tool_calls = [
            {
                "id": f"call_{next(self._ids):06d}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for name, args in b.calls
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return _json(
            {
                "id": f"chatcmpl-{next(self._ids):06d}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": rec.body.get("model", "unknown"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": "tool_calls" if tool_calls else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }
        )


def word_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector from the words of ``text`` (hashed into buckets): shared words, near vectors."""
    import hashlib
    import math

    v = [0.0] * dimensions
    for word in text.lower().split():
        h = hashlib.sha256(word.encode()).digest()
        v[int.from_bytes(h[:4], "big") % dimensions] += 1.0 if h[4] % 2 else -1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v] if any(v) else [1.0] + [0.0] * (dimensions - 1)


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    headers = {"retry-after-ms": "1"} if status >= 500 else {}
    return web.json_response(payload, status=status, headers=headers)
