"""Limits on reading a request: time, against slow clients (slowloris), and the size of its
headers, against clients that send endless ones.

uvicorn closes a keep-alive connection that stays idle between requests (`timeout_keep_alive`),
but a connection that sends its request line and headers one byte at a time, or dribbles its
body, is held open for as long as the client likes: a few hundred of those from one machine
would hold as many sockets and, for bodies, as many admitted requests. This protocol adds two
deadlines to uvicorn's httptools protocol (the one `uvicorn[standard]` uses):

- `HEADER_TIMEOUT`: from the connection (or the first byte of a request) to the end of its
  headers;
- `BODY_TIMEOUT`: from the end of the headers to the end of the body (bodies are at most
  64 KiB here, see limits.BodyLimit).

Past a deadline the connection is closed; the application, if it was reading the body, sees
the client go away (`http.disconnect`). Responses are not limited: event streams and blocking
playlist reloads stay open as long as they need.

Header size: httptools keeps every byte of a header field until the field ends, and uvicorn
sets no bound, so four connections each sending 512 MiB of one header took a node from 0.7 to
2.4 GiB. Here the bytes of a request read before its headers end are counted as they arrive;
past `MAX_HEADER_READ` the request gets 431 (RFC 6585 §5) and the connection is closed, so a
request never holds more than that plus one read (256 KiB) in memory. (The number and size of
the fields of a request whose headers did end are checked again by admission.header_limit_error.)
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 10.0
MAX_HEADER_READ = 64 * 1024
"""Bytes of a request line and header fields read before they must have ended."""
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024
"""After a 431, what is still coming is read and thrown away for this long (or this much) before
the connection is closed: closing with unread data makes the kernel send a reset, and the client
would lose the answer (the lingering close of RFC 9112 §9.6, as nginx does)."""

KEEP_ALIVE = "keep-alive"

_TOO_LARGE = b'{"error":"too_large","message":"the request\'s header fields are too large"}'
TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"cache-control: no-store\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_TOO_LARGE)).encode() + b"\r\n\r\n" + _TOO_LARGE
)

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: uvicorn falls back to h11, without these deadlines
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def timed_http_protocol(
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    max_header_read: int = MAX_HEADER_READ,
) -> type[asyncio.Protocol] | str:
    """The protocol class for `uvicorn.Config(http=...)`; "auto" when httptools is missing."""
    if HttpToolsProtocol is None:
        log.warning("httptools is missing: no header or body deadlines against slow clients")
        return "auto"

    class TimedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, with a deadline for the headers and for the body."""

        _timer: asyncio.TimerHandle | None = None  # fires at `_timer_at`, at or before `_due`
        _timer_at = 0.0
        _due: float | None = None  # when the current deadline passes (loop time); None: none
        _what = ""  # what it is for
        _in_headers = True  # reading a request line and header fields
        _header_read = 0  # bytes read while in them
        _refused = False  # a 431 was sent: what comes now is thrown away
        _discarded = 0

        def _arm(self, seconds: float, what: str) -> None:
            # One timer per connection, made again only when it fires before the deadline:
            # arming and disarming a deadline per request costs two assignments, not a timer
            # made and cancelled (a few µs of every join).
            self._due, self._what = self.loop.time() + seconds, what
            if self._timer is None or self._due < self._timer_at:
                self._set_timer(self._due)

        def _keep_alive(self) -> None:
            """What uvicorn does once a response is complete (`on_response_complete`), with
            its idle timeout as one of these deadlines (the next request's first byte ends it)."""
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self._unset_keepalive_if_required()
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            else:
                self._arm(self.timeout_keep_alive, KEEP_ALIVE)

        def _disarm(self) -> None:
            self._due = None

        def _set_timer(self, when: float) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = self.loop.call_at(when, self._check), when

        def _check(self) -> None:
            self._timer = None
            if self._due is None:
                return
            if self.loop.time() < self._due:
                self._set_timer(self._due)  # moved on since this timer was set
                return
            self._due = None
            if not self.transport.is_closing():
                log.debug("closing a connection from %s: %s too slow", self.client, self._what)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(header_timeout, "headers")

        def data_received(self, data: bytes) -> None:
            if self._refused:
                self._discarded += len(data)
                if self._discarded > LINGER_BYTES:
                    self.transport.close()
                return
            if self._in_headers and self._header_read > max_header_read:
                # Refused before the parser buffers more of an endless header.
                self._refuse()
                return
            if self._in_headers:
                self._header_read += len(data)
            super().data_received(data)

        def _refuse(self) -> None:
            self._disarm()
            self._refused = True
            if self.transport.is_closing():
                return
            log.debug("refusing oversized header fields from %s", self.client)
            self.transport.write(TOO_LARGE_RESPONSE)
            if self.transport.can_write_eof():
                self.transport.write_eof()  # the answer is complete; reading goes on
            self._arm(LINGER_SECONDS, "lingering close")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            if self._due is None or self._what == KEEP_ALIVE:
                self._arm(header_timeout, "headers")

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._headers_ended()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._message_ended()

        def _headers_ended(self) -> None:
            """The headers are read: the body's deadline starts."""
            self._in_headers, self._header_read = False, 0
            self._arm(body_timeout, "body")

        def _message_ended(self) -> None:
            """The whole request is read: no deadline until the next one begins."""
            self._in_headers, self._header_read = True, 0
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._timer is not None:
                self._timer.cancel()  # the loop would hold the protocol until it fired
                self._timer = None
            super().connection_lost(exc)

    return TimedHttpToolsProtocol
