"""Time limits on reading a request, against slow clients (slowloris).

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
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 10.0

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: uvicorn falls back to h11, without these deadlines
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def timed_http_protocol(
    header_timeout: float = HEADER_TIMEOUT, body_timeout: float = BODY_TIMEOUT
) -> type[asyncio.Protocol] | str:
    """The protocol class for `uvicorn.Config(http=...)`; "auto" when httptools is missing."""
    if HttpToolsProtocol is None:
        log.warning("httptools is missing: no header or body deadlines against slow clients")
        return "auto"

    class TimedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, with a deadline for the headers and for the body."""

        _deadline: asyncio.TimerHandle | None = None

        def _arm(self, seconds: float, what: str) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._too_slow, what)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self, what: str) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                log.debug("closing a connection from %s: %s too slow", self.client, what)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(header_timeout, "headers")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:
                self._arm(header_timeout, "headers")

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm(body_timeout, "body")

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedHttpToolsProtocol
