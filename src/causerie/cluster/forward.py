"""Forwarding to a space's owner: the node that runs its media (media/ownership.py).

With several nodes, any node may receive a listener's LL-HLS request or a speaker's WHIP
request, but only the space's owner has its parts and its WebRTC sessions. The other nodes
reverse-proxy such requests to the owner: a redirect would send listeners behind a caching edge
around it, to an origin. The owner's answer is passed on as it is (status, Cache-Control,
Content-Type, body streamed), so the edge in front caches it as if the owner had answered.

- A forwarded request carries ``X-Causerie-Forwarded``; a node that receives one for a space it
  does not run answers 503 instead of forwarding again (no loops between nodes that disagree).
- Between two owners (the previous one died, its lease has not expired yet), a listener's
  request is held, polling the lease, until a new owner answers (``HOLD_SECONDS`` at most, less
  than an edge's proxy timeout); then 503 with Retry-After, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import httpx

from ..asgi import Scope, Send, send_error
from ..logs import RepeatedErrors
from .ownership import Ownership

log = logging.getLogger(__name__)

FORWARDED = "x-causerie-forwarded"
HOLD_SECONDS = 7.5
"""How long a listener's request waits for a new owner (a lease lives 5 s, a tick is 1 s)."""
POLL_SECONDS = 0.25
READ_TIMEOUT = 12.0
"""Longer than the owner holds a blocking playlist request (6 s)."""

# Request headers passed to the owner (the rest concern this hop, or are the edge's business).
_REQUEST_HEADERS = (
    "accept",
    "accept-encoding",
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "origin",
    "range",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-proto",
)
# Response headers not passed back: hop-by-hop ones (RFC 9110 §7.6.1) and those the server
# in front of us sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "date",
        "server",
    }
)

SpaceState = Callable[[str], Awaitable[str | None]]
"""The state of a space ("live", "ended", ...), None if there is no such space."""


def forwarded(scope: Scope) -> bool:
    """Whether another node forwarded this request."""
    return any(name == FORWARDED.encode() for name, _ in scope.get("headers", ()))


class Forwarder:
    """Reverse-proxies requests for spaces this node does not run to their owner."""

    def __init__(
        self, ownership: Ownership, space_state: SpaceState, hold: float = HOLD_SECONDS
    ) -> None:
        self.ownership = ownership
        self.space_state = space_state
        self.hold = hold
        """Seconds a listener's request waits for a reachable owner before a 503."""
        self.forwarded = 0
        """Requests passed to another node (a counter for tests and metrics)."""
        self.lookup_errors = RepeatedErrors("could not look up a space's owner")
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(READ_TIMEOUT, connect=1.0),
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _headers(self, headers: list[tuple[bytes, bytes]], client: str | None) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in headers:
            key = name.decode("latin-1").lower()
            if key in _REQUEST_HEADERS:
                out[key] = value.decode("latin-1")
        if client:
            previous = out.get("x-forwarded-for")
            out["x-forwarded-for"] = f"{previous}, {client}" if previous else client
        out[FORWARDED] = self.ownership.node_url
        return out

    async def hls(
        self, scope: Scope, send: Send, space_id: str, runs_here: Callable[[], bool]
    ) -> bool:
        """Answer a listener's request for a space not running here, from its owner.

        Returns False, having sent nothing, if the space came to run here meanwhile (this node
        took it over while the request waited): the caller serves it then.
        """
        if forwarded(scope):
            # The node that sent it thinks we own the space; we do not (any more).
            await _unavailable(send, "this node does not run this space (forwarded request)")
            return True
        deadline = time.monotonic() + self.hold
        while True:
            if runs_here():
                return False
            try:
                owner = await self.ownership.owner(space_id)
                state = "live" if owner is not None else await self.space_state(space_id)
            except Exception as exc:  # Redis unreachable: as if the owner were unknown, a while
                self.lookup_errors.record(exc, space_id)
                owner, state = None, "live"
            if owner is not None and not owner.here:
                if await self._proxy_stream(scope, send, owner.url):
                    return True
                self.ownership.forget(space_id)  # unreachable: dead, or restarting
            elif state != "live":
                await send_error(send, 404, "this space is not on the air")
                return True
            # Live, but its owner is unknown, unreachable or just starting here: wait for one.
            if time.monotonic() + POLL_SECONDS > deadline:
                await _unavailable(send, "this space is changing servers; retry in a moment")
                return True
            await asyncio.sleep(POLL_SECONDS)

    async def _proxy_stream(self, scope: Scope, send: Send, base: str) -> bool:
        """Pass the request to `base` and stream its answer back; False if it was unreachable
        (nothing has been sent then)."""
        query = scope.get("query_string", b"").decode("latin-1")
        url = base + scope["path"] + (f"?{query}" if query else "")
        client = scope.get("client")
        request = self.client.build_request(
            scope["method"], url, headers=self._headers(scope["headers"], client and client[0])
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            log.info("owner at %s did not answer: %s", base, exc)
            return False
        self.forwarded += 1
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (name.lower(), value)
                        for name, value in response.headers.raw
                        if name.decode("latin-1").lower() not in _HOP_BY_HOP
                    ],
                }
            )
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.TransportError as exc:
                # Too late for another status: the client sees a truncated body (and an edge
                # does not cache it: its length does not match Content-Length).
                log.info("owner at %s broke off: %s", base, exc)
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()
        return True

    async def whip(
        self,
        method: str,
        path: str,
        space_id: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        client: str | None,
    ) -> httpx.Response | str | None:
        """A speaker's WHIP request, for the owner: its answer, or the reason to answer 503
        (text), or None when this node should handle it itself (it owns the space, or nobody
        does because it is not live: the local checks then say what is wrong)."""
        try:
            owner = await self.ownership.owner(space_id)
            if owner is None:
                if await self.space_state(space_id) == "live":
                    return "this space is changing servers; retry in a moment"
                return None
        except Exception as exc:
            self.lookup_errors.record(exc, space_id)
            return "this server cannot find the space's media right now; retry in a moment"
        if owner.here:
            return None
        if any(name == FORWARDED.encode() for name, _ in headers):
            return "this node does not run this space (forwarded request)"
        try:
            response = await self.client.request(
                method, owner.url + path, headers=self._headers(headers, client), content=body
            )
        except httpx.TransportError as exc:
            log.info("owner at %s did not answer: %s", owner.url, exc)
            self.ownership.forget(space_id)
            return "the server running this space does not answer; retry in a moment"
        self.forwarded += 1
        return response


def response_headers(response: httpx.Response) -> dict[str, str]:
    """The owner's response headers worth passing on (not hop-by-hop, not the length)."""
    return {
        name: value
        for name, value in response.headers.items()
        if name.lower() not in _HOP_BY_HOP and name.lower() not in ("content-length",)
    }


async def _unavailable(send: Send, message: str) -> None:
    await send_error(send, 503, message, [(b"retry-after", b"1")])
