"""Cross-origin access (Fetch standard, "CORS protocol") for what players and embeds read.

Everything a listener fetches is public and sent without credentials (tokens travel in
`Authorization`, never in cookies), so `Access-Control-Allow-Origin: *` is right for it, and the
same for every origin: edges cache one copy (no `Vary: Origin`). Who needs it:

- a player on another site (hls.js, dash.js, Shaka) reading playlists, segments, the manifest,
  `/time` and the live events (`/feed/`): the origins in hls.py, dash.py and feed.py send it,
  errors included, and answer preflights with `media_preflight`;
- the embeddable player (`/embed/{id}`) when a CMS sandboxes its iframe without
  `allow-same-origin` (WordPress does, for every provider it discovered): the page then has an
  opaque origin, so even its own node is another origin to it. Its module scripts, the space's
  details, its join and heartbeats are cross-origin requests: `PublicCors` below.
"""

from __future__ import annotations

import re

from ..asgi import ASGIApp, Message, Receive, Scope, Send

ALLOW_ANY_ORIGIN = (b"access-control-allow-origin", b"*")
EXPOSE = (b"access-control-expose-headers", b"Date, Retry-After")
"""Beyond the CORS-safelisted response headers: the details' `Date` (how old an edge's copy
is, feed.js) and `Retry-After` (how long to wait after a 503 or 429)."""
MAX_AGE = (b"access-control-max-age", b"86400")

# Control-plane paths the embeddable player uses, and what may be asked of them.
_READS = re.compile(
    r"^/(?:api/spaces(?:/[A-Za-z0-9_-]{1,32})?|api/settings|oembed|embed/[A-Za-z0-9_-]{1,32}"
    r"|static/.+)$"
)
_LISTENER_WRITES = re.compile(r"^/api/spaces/[A-Za-z0-9_-]{1,32}/(?:join|heartbeat)$")
READ_METHODS = b"GET, HEAD"
WRITE_METHODS = b"POST"
WRITE_HEADERS = b"Authorization, Content-Type"


def is_preflight(scope: Scope) -> bool:
    """An `OPTIONS` request with `Access-Control-Request-Method`: a browser asking first."""
    return scope["method"] == "OPTIONS" and any(
        name == b"access-control-request-method" for name, _ in scope["headers"]
    )


async def send_preflight(send: Send, methods: bytes, headers: bytes | None = None) -> None:
    """Allow `methods` (and request `headers`) from any origin, for a day."""
    answer = [ALLOW_ANY_ORIGIN, (b"access-control-allow-methods", methods), MAX_AGE]
    if headers is not None:
        answer.append((b"access-control-allow-headers", headers))
    answer.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": 204, "headers": answer})
    await send({"type": "http.response.body", "body": b""})


async def media_preflight(scope: Scope, send: Send) -> bool:
    """Answer a preflight for media (GET, HEAD; any request header: a player may send `Range`
    or its own). False when the request is not one."""
    if not is_preflight(scope):
        return False
    await send_preflight(send, READ_METHODS, b"*")
    return True


class PublicCors:
    """Adds the CORS headers to the control plane's answers the embeddable player needs (its
    page, scripts, the space's details, oEmbed, settings; the join and heartbeat), errors and
    refusals included, and answers their preflights. Every other path is left as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if _READS.match(path):
            allowed = method in ("GET", "HEAD")
            if is_preflight(scope):
                await send_preflight(send, READ_METHODS)
                return
        elif _LISTENER_WRITES.match(path):
            allowed = method == "POST"
            if is_preflight(scope):
                await send_preflight(send, WRITE_METHODS, WRITE_HEADERS)
                return
        else:
            allowed = False
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), ALLOW_ANY_ORIGIN, EXPOSE]
            await send(message)

        await self.app(scope, receive, send_with_cors)
