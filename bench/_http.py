"""A minimal HTTP/1.1 keep-alive client on an asyncio Protocol, cheap per request.

Only what the benchmarks need: GET and body-less POST, responses with Content-Length (uvicorn
and nginx send it for everything here), one request at a time per connection. A load generator
built on it costs a few tens of microseconds per request, several times less than a general-purpose
client.
"""

from __future__ import annotations

import asyncio

_HEADER_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


class HttpError(Exception):
    """The connection closed or sent something this client does not understand."""


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None:
            self._complete()

    def _complete(self) -> None:
        buffer = self.buffer
        end = buffer.find(_HEADER_END)
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(_LENGTH)
        if at < 0:
            self._fail(HttpError("response without Content-Length"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + len(_LENGTH) : stop if stop > 0 else len(head)])
        total = end + 4 + length
        if len(buffer) < total:
            return
        status = int(buffer[9:12])
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, head, body))

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpError(f"connection closed: {exc}"))


class Connection:
    """One keep-alive connection to host:port; reconnects by itself after a close."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._protocol: _Protocol | None = None
        self._suffix = f" HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        self._post_suffix = f" HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n"

    async def connect(self) -> None:
        """Open the connection (done by get() too, when needed)."""
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        self._protocol = protocol

    async def get(self, path: bytes | str, timeout: float = 10.0) -> tuple[int, bytes]:
        """GET `path`: (status, body). Raises HttpError or TimeoutError."""
        if isinstance(path, str):
            path = path.encode()
        status, _head, body = await self._exchange(b"GET " + path + self._suffix, timeout)
        return status, body

    async def post(self, path: str, timeout: float = 10.0) -> tuple[int, bytes, bytes]:
        """POST `path` with an empty body: (status, lower-cased head, body)."""
        return await self._exchange(f"POST {path}{self._post_suffix}".encode(), timeout)

    async def _exchange(self, request: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        if self._protocol is None or self._protocol.closed:
            await self.connect()
        protocol = self._protocol
        assert protocol is not None and protocol.transport is not None
        waiter = asyncio.get_running_loop().create_future()
        protocol.waiter = waiter
        protocol.transport.write(request)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException:
            self.close()  # a response may still come: never reuse this connection
            raise

    def close(self) -> None:
        """Close the connection."""
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


def header(head: bytes, name: bytes) -> bytes | None:
    """The value of header `name` (lower case) in a lower-cased response head, or None."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    stop = head.find(b"\r\n", start)
    return head[start : stop if stop > 0 else len(head)].strip()
