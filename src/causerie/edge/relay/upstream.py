"""The relay's requests to its origin: one per object, over a few keep-alive connections.

Each fetch sends `GET path` with the relay's one Host and nothing a listener sent, parses the
answer with httptools (llhttp, the parser uvicorn uses) and feeds it to the object's `Entry`
as it arrives: the status and headers, then each piece of the body (the origin sends one HTTP
chunk per CMAF chunk or event line; they are forwarded as they come, never held back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import httptools

from .cache import Entry
from .policy import HOP_BY_HOP, freshness

log = logging.getLogger(__name__)

HEADERS_TIMEOUT = 15.0
"""Seconds an origin may take to answer: it holds a segment due soon until its first chunk
(up to ~7 s, api/dash.py) and answers the rest at once."""
BETWEEN_BYTES_TIMEOUT = 10.0
"""Seconds without a byte once the answer began: a segment in progress sends a chunk every
213 ms, a window of events an empty line every 5 s (api/feed.py)."""
IDLE_CONNECTIONS = 16
"""Idle keep-alive connections to the origin kept for the next fetches."""


class _Stale(Exception):
    """A reused connection was closed by the origin before it answered: try a new one."""


class _Upstream(asyncio.Protocol):
    """One connection to the origin, one fetch at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.entry: Entry | None = None
        self.done: asyncio.Future[bool] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.framed = False  # the answer says how it ends (Content-Length or chunked)
        self.begun = False  # a byte of the answer arrived
        self.started = False  # the entry was given the headers
        self.last = 0.0  # loop time of the last byte (or of the request)
        self.closed = False
        self.on_finish: Callable[[Entry, float], None] = lambda entry, lifetime: None

    # asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.begun = True
        self.last = asyncio.get_running_loop().time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._end(ConnectionError(f"the origin's answer is not HTTP/1.1: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.entry is None:
            return
        if self.started and not self.framed:
            self._complete(keep_alive=False)  # a body delimited by the close (RFC 9112 §6.3)
        elif not self.begun:
            self._end(_Stale())
        else:
            self._end(ConnectionError(f"the origin closed the connection mid-answer: {exc}"))

    # httptools
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # 1xx: an interim answer, the real one follows
            self.headers = []
            return
        names = {name for name, _ in self.headers}
        self.framed = b"content-length" in names or b"transfer-encoding" in names
        length = None
        if b"content-length" in names and b"transfer-encoding" not in names:
            length = self.parser_length()
        fields = b"".join(
            b"%b: %b\r\n" % (name, value) for name, value in self.headers if name not in HOP_BY_HOP
        )
        self.started = True
        assert self.entry is not None
        self.entry.start(status, fields, length)

    def parser_length(self) -> int:
        """The Content-Length the origin sent (llhttp has checked it is one number)."""
        return next(int(value) for name, value in self.headers if name == b"content-length")

    def on_body(self, body: bytes) -> None:
        if self.entry is not None:
            self.entry.append(body)

    def on_message_complete(self) -> None:
        if self.started:
            self._complete(keep_alive=self.parser.should_keep_alive())

    # the fetch
    def request(self, entry: Entry, head: bytes, now: float) -> asyncio.Future[bool]:
        """Send the request for `entry`; the future is True once its answer is complete (the
        connection may be reused), and fails if it cannot be."""
        self.entry, self.headers, self.last = entry, [], now
        self.framed = self.begun = self.started = False
        self.done = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(head)
        return self.done

    def _complete(self, keep_alive: bool) -> None:
        entry, self.entry = self.entry, None
        assert entry is not None
        self.on_finish(entry, freshness(entry.status, self.headers))
        if self.done is not None and not self.done.done():
            self.done.set_result(keep_alive and not self.closed)

    def _end(self, error: Exception) -> None:
        """The fetch cannot be completed on this connection."""
        self.entry = None
        if self.transport is not None:
            self.transport.abort()
        if self.done is not None and not self.done.done():
            self.done.set_exception(error)

    def expired(self, now: float) -> bool:
        """Waited too long for the origin (its answer, or its next byte)."""
        if self.entry is None:
            return False
        limit = BETWEEN_BYTES_TIMEOUT if self.begun else HEADERS_TIMEOUT
        return now - self.last > limit

    def time_out(self) -> None:
        self._end(TimeoutError("the origin did not answer in time"))


class OriginClient:
    """Fetches objects from one origin (host:port), sending it `host` as the Host."""

    def __init__(self, host: str, port: int, public_host: str) -> None:
        self.host = host
        self.port = port
        self.public_host = public_host.encode()
        self._idle: list[_Upstream] = []
        self._busy: set[_Upstream] = set()
        self.fetches = 0
        """Requests sent to the origin."""
        self.failures = 0

    def fetch(
        self,
        entry: Entry,
        path: str,
        finished: Callable[[Entry, float], None],
        failed: Callable[[Entry], None],
    ) -> asyncio.Task[None]:
        """Fetch `path` into `entry`; `finished(entry, lifetime)` once complete (lifetime: how
        long it may be kept, s), `failed(entry)` if it cannot be."""
        return asyncio.get_running_loop().create_task(self._fetch(entry, path, finished, failed))

    async def _fetch(
        self,
        entry: Entry,
        path: str,
        finished: Callable[[Entry, float], None],
        failed: Callable[[Entry], None],
    ) -> None:
        head = b"GET %b HTTP/1.1\r\nHost: %b\r\nVia: 1.1 causerie-relay\r\n\r\n" % (
            path.encode(),
            self.public_host,
        )
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            upstream = self._take() if attempt == 0 else None
            try:
                if upstream is None:
                    _transport, upstream = await loop.create_connection(
                        _Upstream, self.host, self.port
                    )
                upstream.on_finish = finished
                self._busy.add(upstream)
                self.fetches += 1
                reusable = await upstream.request(entry, head, loop.time())
            except _Stale:
                continue  # the origin had closed the idle connection: once more, on a new one
            except (OSError, ConnectionError, TimeoutError) as exc:
                self.failures += 1
                log.warning("origin %s:%d, %s: %s", self.host, self.port, path, exc)
                failed(entry)
                return
            finally:
                if upstream is not None:
                    self._busy.discard(upstream)
            if reusable and len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(upstream)
            elif upstream.transport is not None:
                upstream.transport.close()
            return
        failed(entry)

    def _take(self) -> _Upstream | None:
        while self._idle:
            upstream = self._idle.pop()
            if not upstream.closed:
                return upstream
        return None

    def sweep(self, now: float) -> None:
        """Give up on fetches the origin has stopped answering."""
        for upstream in list(self._busy):
            if upstream.expired(now):
                upstream.time_out()

    def close(self) -> None:
        for upstream in [*self._idle, *self._busy]:
            if upstream.transport is not None:
                with contextlib.suppress(Exception):
                    upstream.transport.abort()
        self._idle.clear()
