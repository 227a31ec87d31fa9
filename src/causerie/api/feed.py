"""The audience's live events through the edges: `/feed/{space}/{window}.ndjson` (node/feed.py).

    /feed/{space}/now                 {"window": n, "seconds": W, "url": …}, cached a second
    /feed/{space}/{n}.ndjson          window n: one JSON event per line, then {"type": "end"}
                                      (empty lines, sent while a window is quiet, are skipped)

A window in progress is streamed as its events are published and ends with the window; a
complete one is sent at once. Both are the same bytes for every listener and never change, so
edges cache them as immutable and collapse each into one request to a node. A plain ASGI app
beside the media origin, outside admission control: a listener already in is never refused.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable

from ..asgi import Receive, Scope, Send, send_error
from ..node.feed import Feeds, Window, WindowAhead, WindowGone
from .cors import ALLOW_ANY_ORIGIN, media_preflight

NDJSON = b"application/x-ndjson"
IMMUTABLE = b"public, max-age=31536000, immutable"
SEND_TIMEOUT = 10.0
"""A listener that reads nothing for this long is let go (it is not waited for)."""
WAKE_SECONDS = 5.0

_WINDOW_PATH = re.compile(r"^/feed/(?P<space>[A-Za-z0-9_-]{1,32})/(?P<n>\d{1,12})\.ndjson$")
_NOW_PATH = re.compile(r"^/feed/(?P<space>[A-Za-z0-9_-]{1,32})/now$")


def window_url(space_id: str, number: int) -> str:
    """Where window `number` of a space's live events is."""
    return f"/feed/{space_id}/{number}.ndjson"


class FeedOrigin:
    """Serves the event windows of every space (any node can: the bus is shared)."""

    def __init__(
        self,
        feeds: Feeds,
        created: Callable[[str], Awaitable[float | None]],
        on_request: Callable[[str, int], None] | None = None,
    ) -> None:
        self.feeds = feeds
        self.created = created
        """When a space was created (Unix time), None if there is no such space: a node follows
        the events of real spaces only."""
        self.on_request = on_request or (lambda kind, status: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await media_preflight(scope, send):  # a player on another site asking first
            return
        if scope["method"] not in ("GET", "HEAD"):
            self.on_request("other", 405)
            await _error(send, 405, "only GET and HEAD", [(b"allow", b"GET, HEAD")])
            return
        path = scope["path"]
        if match := _NOW_PATH.match(path):
            await self._now(scope, send, match["space"])
        elif match := _WINDOW_PATH.match(path):
            await self._window(scope, send, match["space"], int(match["n"]))
        else:
            self.on_request("other", 404)
            await _error(send, 404, "there is nothing at this address")

    async def _now(self, scope: Scope, send: Send, space_id: str) -> None:
        number = self.feeds.current()
        body = json.dumps(
            {
                "window": number,
                "seconds": self.feeds.seconds,
                "url": window_url(space_id, number),
            }
        ).encode()
        self.on_request("now", 200)
        await send(_start(200, b"application/json", b"public, max-age=1", len(body)))
        await send({"type": "http.response.body", "body": b"" if _head(scope) else body})

    async def _window(self, scope: Scope, send: Send, space_id: str, number: int) -> None:
        created = await self.created(space_id)
        if created is None:
            self.on_request("window", 404)
            await _error(send, 404, "no such space")
            return
        try:
            window = await self.feeds.window(space_id, number, created)
        except WindowAhead as exc:
            self.on_request("window", 404)
            await _error(send, 404, str(exc))
            return
        except WindowGone as exc:
            self.on_request("window", 410)
            await _error(send, 410, str(exc))
            return
        self.on_request("window", 200)
        if window.complete:
            body = b"".join(window.lines)
            await send(_start(200, NDJSON, IMMUTABLE, len(body)))
            await send({"type": "http.response.body", "body": b"" if _head(scope) else body})
            return
        await send(_start(200, NDJSON, IMMUTABLE, None))
        if _head(scope):
            await send({"type": "http.response.body", "body": b""})
            return
        await _stream(window, send)


async def _stream(window: Window, send: Send) -> None:
    """Send the window's lines as they come, until it is complete (chunked transfer)."""
    sent = 0
    while True:
        if sent < len(window.lines):
            chunk = b"".join(window.lines[sent:])
            sent += len(window.lines) - sent
            # A stalled reader must not hold this task (or its memory) for long.
            await asyncio.wait_for(
                send({"type": "http.response.body", "body": chunk, "more_body": True}),
                SEND_TIMEOUT,
            )
            continue
        if window.complete:
            await send({"type": "http.response.body", "body": b""})
            return
        if window.abandoned:
            # Ending without the last chunk: the client and the edges see an incomplete
            # response (never cached), and the client asks again.
            raise ConnectionAbortedError("this node stopped following the space")
        before = len(window.lines)
        await window.changed(WAKE_SECONDS)
        if len(window.lines) == before and not window.complete and not window.abandoned:
            # A quiet window: an empty line now and then keeps edges and proxies from taking
            # the silence for a dead origin (Varnish's between_bytes_timeout). Readers skip it.
            await asyncio.wait_for(
                send({"type": "http.response.body", "body": b"\n", "more_body": True}),
                SEND_TIMEOUT,
            )


def _head(scope: Scope) -> bool:
    return bool(scope["method"] == "HEAD")


def _start(status: int, content_type: bytes, cache: bytes, length: int | None) -> dict:
    headers = [
        (b"content-type", content_type),
        (b"cache-control", cache),
        # Players and pages on other origins (embeds) read the events too.
        (b"access-control-allow-origin", b"*"),
        (b"x-accel-buffering", b"no"),
    ]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    # CORS on errors too: a player on another origin then sees the status, not a CORS failure.
    await send_error(send, status, message, [ALLOW_ANY_ORIGIN, *(headers or ())])
