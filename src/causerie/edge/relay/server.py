"""The relay's listener side: one asyncio loop serving many keep-alive HTTP/1.1 connections.

Each connection parses requests with httptools (llhttp) and answers them in order (pipelined
requests wait their turn). A request for a shared object follows its `Entry`: the object's
bytes so far at once, then each new piece as the origin sends it, written by the one loop
that receives it (cache.Entry.append) to every reader in turn, with no task or thread per
listener. A reader that does not take its bytes is dropped, never waited for: its write buffer
is bounded (`reader_buffer`), and a connection whose writes stay paused for `send_timeout` is
closed. Slow requests (slowloris), idle keep-alive connections and silent origins are swept
once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus

import httptools

from .cache import Cache, Entry
from .policy import MAX_FIELDS, MAX_HEAD, MAX_TARGET, Refusal, Route, check_request, route
from .upstream import OriginClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """The relay's bounds (one worker process)."""

    memory: int = 256 * 1024 * 1024
    """Bytes of complete objects kept; least recently used out first."""
    reader_buffer: int = 256 * 1024
    """Bytes waiting to be written to one listener before it is dropped as stalled."""
    send_timeout: float = 10.0
    """Seconds a listener's writes may stay paused (it reads nothing) before it is dropped."""
    header_timeout: float = 10.0
    """Seconds from a connection (or a request's first byte) to the end of its headers."""
    idle_timeout: float = 30.0
    """Seconds a keep-alive connection may wait for its next request."""
    fetches: int = 1024
    """Origin requests in progress at once; beyond, listeners get 503 (Retry-After: 1)."""


MAX_PIPELINED = 16
"""Requests read ahead of the one being answered; then reading pauses until they are."""

_LINGER_RESET = struct.pack("ii", 1, 0)


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return b"HTTP/1.1 %d %b\r\n" % (status, reason.encode())


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


class _Refused(Exception):
    """Raised in a parser callback to stop parsing: the request is refused."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class _Request:
    method: bytes
    path: str
    keep_alive: bool
    http10: bool
    refusal: Refusal | None


class Relay:
    """One worker's state: its cache, its origin client, its listener connections."""

    def __init__(self, origin: OriginClient, limits: Limits) -> None:
        self.origin = origin
        self.limits = limits
        self.cache = Cache(limits.memory)
        self.connections: set[Connection] = set()
        self.fetching = 0
        self.requests = 0
        self.dropped = 0
        """Listeners dropped for not reading."""
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.abort()
        self.origin.close()

    def shared(self, path: str, now: float) -> tuple[Entry | None, bool]:
        """(the entry for a shared object, whether it was already there); None: too many
        fetches in progress."""
        entry = self.cache.get(path, now)
        if entry is not None:
            return entry, True
        return self._fetch(Entry(path)), False

    def passed(self) -> Entry | None:
        """A fresh entry for one request alone (the clock), never kept."""
        return self._fetch(Entry("/time", keep=False))

    def _fetch(self, entry: Entry) -> Entry | None:
        if self.fetching >= self.limits.fetches:
            return None
        self.fetching += 1
        if entry.keep:
            self.cache.add(entry)
        self.origin.fetch(entry, entry.key, self._finished, self._failed)
        return entry

    def _finished(self, entry: Entry, lifetime: float) -> None:
        self.fetching -= 1
        entry.finish(asyncio.get_running_loop().time(), lifetime)
        self.cache.settled(entry)

    def _failed(self, entry: Entry) -> None:
        self.fetching -= 1
        self.cache.discard(entry)
        entry.fail()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for connection in list(self.connections):
                connection.check(now)
            self.origin.sweep(now)
            self.cache.expire(now)


class Connection(asyncio.Protocol):
    """One listener's connection; while it answers a shared object, a reader of its entry."""

    __slots__ = (
        "answering",
        "broken",
        "chunked",
        "closing",
        "deadline",
        "entry",
        "field_bytes",
        "fields",
        "has_body",
        "head_bytes",
        "head_only",
        "hosts",
        "in_head",
        "keep_alive",
        "loop",
        "parser",
        "paused",
        "paused_at",
        "pending",
        "raw",
        "relay",
        "request",
        "sent_head",
        "streaming",
        "transport",
        "url",
        "x_cache",
    )

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending: deque[_Request] = deque()
        self.url = bytearray()
        self.fields = 0
        self.hosts = 0
        self.has_body = False
        self.head_bytes = 0
        self.field_bytes = 0
        self.in_head = False
        self.closing = False
        self.answering = False
        self.broken = False  # a request could not be read: nothing after it is
        self.paused = False
        self.paused_at = 0.0
        self.deadline = self.loop.time() + relay.limits.header_timeout
        # the response in progress
        self.request: _Request | None = None
        self.entry: Entry | None = None
        self.head_only = False
        self.raw = False  # HTTP/1.0: the body as it is, the end of it told by the close
        self.keep_alive = True
        self.sent_head = False
        self.streaming = False  # a body in progress
        self.chunked = False  # ... sent with chunked transfer (else as it is)
        self.x_cache = b"MISS"

    # ---- asyncio ----
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.relay.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.relay.connections.discard(self)
        if self.entry is not None:
            self.entry.leave(self)
            self.entry = None

    def pause_writing(self) -> None:
        self.paused = True
        self.paused_at = self.loop.time()

    def resume_writing(self) -> None:
        self.paused = False
        self._next()

    def data_received(self, data: bytes) -> None:
        if self.closing or self.broken:
            return
        # httptools keeps a header field's bytes until it ends: count what a head has sent.
        self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except _Refused as exc:
            self._refuse_now(exc.refusal)
            return
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._refuse_now(refused.refusal)
            else:
                log.exception("relay: a request could not be read")
                self._refuse_now(Refusal(400, "malformed request", close=True))
            return
        except httptools.HttpParserUpgrade:
            # The request asking to upgrade is answered as a plain one (RFC 9110 §7.8: a server
            # may ignore Upgrade), then the connection closes: nothing after it is read.
            self.broken = True
            if self.transport is not None:
                self.transport.pause_reading()
        except httptools.HttpParserError as exc:
            self._refuse_now(Refusal(400, f"malformed request: {exc}", close=True))
            return
        if self.in_head and self.head_bytes > MAX_HEAD:
            self._refuse_now(Refusal(431, "request header fields too large", close=True))
            return
        if len(self.pending) >= MAX_PIPELINED and self.transport is not None:
            self.transport.pause_reading()
        self._next()

    # ---- httptools ----
    def on_message_begin(self) -> None:
        self.in_head = True
        self.url.clear()
        self.fields = self.hosts = self.field_bytes = 0
        self.has_body = False
        self.deadline = self.loop.time() + self.relay.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_TARGET:
            raise _Refused(Refusal(414, "the request target is too long", close=True))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields += 1
        if self.fields > MAX_FIELDS:
            raise _Refused(Refusal(431, "too many header fields", close=True))
        # A head that arrived in one read is parsed whole before data_received can measure it:
        # its fields are counted here too.
        self.field_bytes += len(name) + len(value)
        if self.field_bytes > MAX_HEAD:
            raise _Refused(Refusal(431, "request header fields too large", close=True))
        lowered = name.lower()
        if lowered == b"host":
            self.hosts += 1
        elif lowered == b"transfer-encoding" or (
            lowered == b"content-length" and value.strip() != b"0"
        ):
            self.has_body = True

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        parser = self.parser
        version = parser.get_http_version()
        method = parser.get_method()
        try:
            path = httptools.parse_url(bytes(self.url)).path.decode("latin-1")
        except httptools.HttpParserInvalidURLError:
            raise _Refused(Refusal(400, "malformed request target", close=True)) from None
        refusal = check_request(method, version, path, self.hosts, self.has_body)
        if refusal is not None and refusal.close:
            raise _Refused(refusal)
        keep_alive = parser.should_keep_alive() and not parser.should_upgrade()
        self.pending.append(_Request(method, path, keep_alive, version == "1.0", refusal))

    # ---- answering, one request after the other ----
    def _next(self) -> None:
        # Answers that complete at once call this again: the loop below takes them in turn
        # (no recursion, however many requests came pipelined in one read).
        if self.answering:
            return
        self.answering = True
        try:
            while self.pending and self.request is None and not self.paused and not self.closing:
                request = self.pending.popleft()
                if len(self.pending) < MAX_PIPELINED // 2 and self.transport is not None:
                    self.transport.resume_reading()
                self._serve(request)
        finally:
            self.answering = False

    def _serve(self, request: _Request) -> None:
        self.relay.requests += 1
        self.request = request
        self.keep_alive = request.keep_alive
        self.head_only = request.method == b"HEAD"
        self.raw = request.http10
        self.sent_head = self.streaming = self.chunked = False
        if request.refusal is not None:
            self._error(request.refusal)
            return
        where = route(request.path)
        if where is Route.HEALTH:
            self._plain(200, b"text/plain; charset=utf-8", b"ok\n")
            return
        now = self.loop.time()
        if where is Route.SHARED:
            entry, found = self.relay.shared(request.path, now)
            self.x_cache = b"HIT" if found else b"MISS"
        else:
            entry = self.relay.passed()
            self.x_cache = b"PASS"
        if entry is None:
            self._error(
                Refusal(503, "the relay is fetching too many objects: try again"), retry=True
            )
            return
        self.entry = entry
        entry.follow(self)

    # cache.Reader
    def headers_ready(self, entry: Entry) -> None:
        if entry is not self.entry or self.transport is None:
            return
        parts = [_STATUS_LINES.get(entry.status) or _status_line(entry.status), entry.fields]
        parts.append(b"X-Cache: %b\r\n" % self.x_cache)
        body = b""
        if entry.complete:
            body = entry.received
            parts.append(b"Content-Length: %d\r\n" % len(body))
            if self.x_cache == b"HIT":
                parts.append(b"Age: %d\r\n" % int(self.loop.time() - entry.stored))
        elif entry.length is not None:
            # The origin said how long: the bytes as they come, no chunks needed.
            body = entry.received
            parts.append(b"Content-Length: %d\r\n" % entry.length)
            self.streaming = not self.head_only
            self.chunked = False
        elif self.raw:
            self.keep_alive = False  # HTTP/1.0 has no chunks: the close ends the body
            body = entry.received
        else:
            parts.append(b"Transfer-Encoding: chunked\r\n")
            self.streaming = not self.head_only
            self.chunked = True
            so_far = entry.received
            if so_far:
                body = b"%x\r\n%b\r\n" % (len(so_far), so_far)
        if not self.keep_alive:
            parts.append(b"Connection: close\r\n")
        elif self.raw:
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        if not self.head_only:
            parts.append(body)
        self.transport.write(b"".join(parts))
        self.sent_head = True
        if self.head_only:
            entry.leave(self)
            self._done()

    def data(self, entry: Entry, data: bytes, framed: bytes) -> None:
        transport = self.transport
        if entry is not self.entry or transport is None or self.closing:
            return
        if transport.get_write_buffer_size() > self.relay.limits.reader_buffer:
            self.relay.dropped += 1
            self.abort()  # stalled: dropped, never waited for
            return
        transport.write(framed if self.chunked else data)

    def finished(self, entry: Entry) -> None:
        if entry is not self.entry or self.transport is None:
            return
        if self.streaming and self.chunked:
            self.transport.write(b"0\r\n\r\n")
        self._done()

    def failed(self, entry: Entry) -> None:
        if entry is not self.entry:
            return
        if self.sent_head:
            self.abort()  # cut off without the last chunk: the listener knows it is incomplete
            return
        self.entry = None
        self._error(Refusal(502, "the origin did not answer"))

    def _done(self) -> None:
        self.entry = self.request = None
        self.streaming = False
        if not self.keep_alive:
            self.close()
            return
        self.deadline = self.loop.time() + self.relay.limits.idle_timeout
        self._next()

    # small answers of the relay's own
    def _error(self, refusal: Refusal, retry: bool = False) -> None:
        body = json.dumps({"error": refusal.status, "message": refusal.message}).encode()
        extra = [b"Cache-Control: no-store\r\n", b"Access-Control-Allow-Origin: *\r\n"]
        if refusal.allow:
            extra.append(b"Allow: GET, HEAD\r\n")
        if retry:
            extra.append(b"Retry-After: 1\r\n")
        if refusal.close:
            self.keep_alive = False
        self._plain(refusal.status, b"application/json", body, extra)

    def _plain(
        self, status: int, content_type: bytes, body: bytes, extra: list[bytes] | None = None
    ) -> None:
        if self.transport is None:
            return
        parts = [
            _STATUS_LINES.get(status) or _status_line(status),
            b"Content-Type: %b\r\n" % content_type,
            b"Content-Length: %d\r\n" % len(body),
            *(extra or ()),
        ]
        if not self.keep_alive:
            parts.append(b"Connection: close\r\n")
        parts.append(b"\r\n")
        if not self.head_only:
            parts.append(body)
        self.transport.write(b"".join(parts))
        self._done()

    def _refuse_now(self, refusal: Refusal) -> None:
        """A request that cannot be read on: nothing more is read; the requests before it are
        answered, then this refusal, and the connection is closed."""
        self.broken = True
        if self.transport is not None:
            self.transport.pause_reading()
        refused = Refusal(refusal.status, refusal.message, close=True, allow=refusal.allow)
        self.pending.append(_Request(b"GET", "", False, False, refused))
        self._next()

    # ---- closing ----
    def close(self) -> None:
        """Close once what is written has been sent."""
        if not self.closing and self.transport is not None:
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        """Close now, dropping what is not sent, the kernel's buffers too: a reset (SO_LINGER
        0), so that the listener learns at once and a stalled one holds no memory anywhere."""
        if self.transport is not None:
            self.closing = True
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self.transport.abort()

    def check(self, now: float) -> None:
        """The sweep: slow heads, idle connections, listeners that stopped reading."""
        if self.paused and now - self.paused_at > self.relay.limits.send_timeout:
            self.relay.dropped += 1
            self.abort()
        elif self.request is None and not self.pending and now > self.deadline:
            self.close()
