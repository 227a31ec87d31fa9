"""What the relay serves and keeps: routes, request checks, freshness. Pure: no I/O, no clock.

The relay serves the objects every listener of a space fetches identically, and nothing else:

    /dash/{space}/manifest.mpd          the LL-DASH manifest           (shared, cached as told)
    /dash/{space}/{run}/init.mp4        an init section                (shared, cached as told)
    /dash/{space}/{run}/{number}.m4s    a segment, streamed while made (shared, cached as told)
    /feed/{space}/now                   which window of events is open (shared, cached as told)
    /feed/{space}/{n}.ndjson            a window of live events        (shared, cached as told)
    /time                               the node's clock (UTCTiming)   (passed, never shared)

"Shared": one origin request however many listeners ask meanwhile, each listener streamed the
bytes as they arrive. Query strings are dropped (the origin ignores them on these paths), and so
are the client's headers: the origin is sent the path, one Host and nothing a client chose, so
its answer cannot depend on who asked and is the same object for everyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

MAX_TARGET = 2048
"""Bytes of a request target (URI): the longest route above is ~120."""
MAX_HEAD = 16 * 1024
"""Bytes of a request line and its header fields together."""
MAX_FIELDS = 64
"""Header fields of one request."""

_SPACE = r"[A-Za-z0-9_-]{1,32}"
_SHARED = re.compile(
    rf"^/dash/{_SPACE}/(?:manifest\.mpd|{_SPACE}/(?:init\.mp4|(?:0|[1-9][0-9]{{0,11}})\.m4s))$"
    rf"|^/feed/{_SPACE}/(?:now|[0-9]{{1,12}}\.ndjson)$"
)
# A percent-encoded unreserved character (RFC 3986 §2.3, §6.2.2.2: A-Z a-z 0-9 - . _ ~) means the
# character itself, so the origin would read /dash/%61 as /dash/a while routes match the raw
# text. No client needs to send one; the Varnish edge refuses them the same way (400).
_ENCODED_UNRESERVED = re.compile(
    r"%(?:2[DEde]|3[0-9]|4[1-9A-Fa-f]|5[0-9AFaf]|6[1-9A-Fa-f]|7[0-9AEae])"
)


class Route(Enum):
    """What the relay does with a request's path."""

    SHARED = "shared"
    """One fetch shared by every reader; kept as long as the origin allows."""
    PASS = "pass"
    """Fetched for this request alone, never kept (the clock)."""
    HEALTH = "health"
    """Answered by the relay itself: it is running."""
    NOT_HERE = "not here"
    """Not served by the relay (404)."""


@dataclass(frozen=True)
class Refusal:
    """A request refused before anything is fetched: status, message, and whether the
    connection must close (what follows on it cannot be trusted)."""

    status: int
    message: str
    close: bool = False
    allow: bool = False
    """Send `Allow: GET, HEAD` (405)."""


def route(path: str) -> Route:
    """The route of a request path (no query string)."""
    if _SHARED.match(path):
        return Route.SHARED
    if path == "/time":
        return Route.PASS
    if path == "/healthz":
        return Route.HEALTH
    return Route.NOT_HERE


def check_request(
    method: bytes, version: str, path: str, hosts: int, has_body: bool
) -> Refusal | None:
    """Why a complete request head is refused, or None. `hosts`: how many Host fields it had;
    `has_body`: it announced a body (Content-Length other than 0, or Transfer-Encoding)."""
    if version not in ("1.0", "1.1"):
        return Refusal(505, "HTTP/1.1 or HTTP/1.0 only", close=True)
    if hosts > 1 or (version == "1.1" and hosts == 0):
        # RFC 9112 §3.2: exactly one Host in HTTP/1.1, else 400.
        return Refusal(400, "a request has exactly one Host header", close=True)
    if has_body:
        # Nothing here takes a body; not reading one keeps the connection's framing simple.
        return Refusal(400, "a request to the relay has no body", close=True)
    if not path.startswith("/"):
        return Refusal(400, "the request target is a path (origin-form)", close=True)
    if _ENCODED_UNRESERVED.search(path):
        return Refusal(400, "percent-encoded unreserved characters are refused in a path")
    where = route(path)
    if where is Route.NOT_HERE:
        return Refusal(
            404, "this relay serves /dash/, /feed/ and /time only: the rest is the node's"
        )
    if method not in (b"GET", b"HEAD"):
        return Refusal(405, "only GET and HEAD", allow=True)
    return None


HOP_BY_HOP = frozenset(
    {
        # RFC 9110 §7.6.1: meant for one connection, never forwarded; the framing is the relay's.
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"age",  # the relay sends its own (RFC 9111 §5.1)
    }
)


def cache_directives(values: list[bytes]) -> dict[str, str]:
    """Cache-Control field values (RFC 9111 §5.2) → {directive: argument}, names lower-case,
    quoted arguments unquoted."""
    directives: dict[str, str] = {}
    for value in values:
        for item in value.decode("latin-1").split(","):
            name, _, argument = item.strip().partition("=")
            if name:
                directives[name.strip().lower()] = argument.strip().strip('"')
    return directives


def _seconds(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    return int(text)


def freshness(status: int, headers: list[tuple[bytes, bytes]]) -> float:
    """How long a shared cache may keep a complete response, in seconds (RFC 9111 §3, §4.2);
    0: not at all.

    Only explicit freshness counts (no heuristics): `s-maxage`, else `max-age`, minus `Age`.
    `no-store`, `private`, `no-cache` (which asks for revalidation the relay does not do),
    `Vary: *` and `Set-Cookie` mean not kept. Any status may be kept when the origin says so
    (§3): an error is negative-cached only as long as its own Cache-Control allows.
    """
    if status < 200 or status == 206:
        return 0.0
    control: list[bytes] = []
    age = 0
    for name, value in headers:
        if name == b"cache-control":
            control.append(value)
        elif name == b"age":
            age = _seconds(value.decode("latin-1").strip()) or 0
        elif name == b"set-cookie" or (name == b"vary" and value.strip() == b"*"):
            return 0.0
    directives = cache_directives(control)
    if {"no-store", "private", "no-cache"} & directives.keys():
        return 0.0
    lifetime = _seconds(directives.get("s-maxage"))
    if lifetime is None:
        lifetime = _seconds(directives.get("max-age"))
    if lifetime is None:
        return 0.0
    return float(max(0, lifetime - age))
