"""ASGI guards in front of the control plane: body size and admission control.

Admission control keeps a bound on control-plane requests in flight. Above it, a request is
refused with 503 and a jittered Retry-After *before* any work is done, so an overloaded node
answers quickly instead of queueing until everything times out. Media requests (`/hls/`) never
pass through here: people already listening are never refused for control-plane load.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json_error(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    """Send a complete JSON error response from raw ASGI code."""
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not they announce a length.

    A body without Content-Length (chunked) is read here first, up to the limit, and handed on
    whole: the framework would otherwise turn a failure while reading into a vague 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"the body is larger than {self.max_bytes} bytes"
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await send_json_error(send, 400, "bad_request", "bad Content-Length")
                    return
                length = int(value)
        if length is not None:
            if length > self.max_bytes:
                await send_json_error(send, 413, "too_large", too_large)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_json_error(send, 413, "too_large", too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Admission:
    """At most `limit` requests in flight; the rest get 503 + Retry-After at once."""

    def __init__(self, app: ASGIApp, limit: int, retry_after: tuple[int, int] = (1, 5)) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Event streams are long-lived and cost nothing while idle: they are not "work in
        # flight". Health checks must answer even under overload.
        if (
            scope["type"] != "http"
            or scope["path"] in ("/healthz", "/metrics")
            or scope["path"].endswith("/events")
        ):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.refused += 1
            # Jitter spreads the retries so refused clients do not come back in one wave.
            wait = random.randint(*self.retry_after)
            await send_json_error(
                send,
                503,
                "unavailable",
                f"the server is busy; please retry in {wait} s",
                [(b"retry-after", str(wait).encode())],
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
