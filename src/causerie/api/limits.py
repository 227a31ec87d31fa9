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


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not they announce a length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await send_json_error(send, 400, "bad_request", "bad Content-Length")
                    return
                if int(value) > self.max_bytes:
                    await send_json_error(
                        send, 413, "too_large", f"the body is larger than {self.max_bytes} bytes"
                    )
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await send_json_error(
                    send, 413, "too_large", f"the body is larger than {self.max_bytes} bytes"
                )


class Admission:
    """At most `limit` requests in flight; the rest get 503 + Retry-After at once."""

    def __init__(
        self, app: ASGIApp, limit: int, retry_after: tuple[int, int] = (1, 5)
    ) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ("/healthz", "/metrics"):
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
