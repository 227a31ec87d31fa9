"""Simulated LL-HLS listeners for the edge tests: cheap, one coroutine and one connection each.

Each follows the live playlist the way hls.js does with blocking reload: GET
`index.m3u8?_HLS_msn=M&_HLS_part=P` for the part after the last one it has (answered once that
part exists), then GET the part, over one keep-alive HTTP/1.1 connection. The HTTP client is a
bare asyncio Protocol (responses with Content-Length only, which both edges send here): a
thousand listeners cost one Python process a fraction of a core.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field

_HEADER_END = b"\r\n\r\n"
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_PART = re.compile(rb'#EXT-X-PART:[^\n]*URI="([^"/]+)/(\d+)\.(\d+)\.m4s"')


class HttpError(Exception):
    """The connection closed, or sent what this client does not understand."""


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None:
            return
        end = self.buffer.find(_HEADER_END)
        if end < 0:
            return
        match = _LENGTH.search(self.buffer, 0, end + 2)
        if match is None:
            self._finish(exc=HttpError("a response without Content-Length"))
            return
        total = end + 4 + int(match[1])
        if len(self.buffer) < total:
            return
        status = int(self.buffer[9:12])
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        self._finish(result=(status, body))

    def _finish(
        self, result: tuple[int, bytes] | None = None, exc: Exception | None = None
    ) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(result)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish(exc=HttpError(f"connection closed: {exc}"))


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port; reconnects after a close."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._protocol: _Protocol | None = None
        self._suffix = f" HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()

    async def get(self, path: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
        if self._protocol is None or self._protocol.closed:
            loop = asyncio.get_running_loop()
            _, self._protocol = await loop.create_connection(_Protocol, self.host, self.port)
        protocol = self._protocol
        assert protocol.transport is not None
        waiter: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        protocol.waiter = waiter
        protocol.transport.write(b"GET " + path + self._suffix)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


def newest_part(playlist: bytes) -> tuple[str, int, int]:
    """(run, msn, index) of the last EXT-X-PART of a playlist (not the preload hint)."""
    parts = _PART.findall(playlist)
    if not parts:
        raise ValueError("the playlist lists no part")
    run, msn, index = parts[-1]
    return run.decode(), int(msn), int(index)


@dataclass
class Follower:
    """One listener: the parts it got (msn, index) → when its bytes were all in."""

    port: int
    playlist_path: str
    received: dict[tuple[int, int], float] = field(default_factory=dict)
    sizes: int = 0
    errors: int = 0
    requests: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    """(when, what) of the first errors, for a failure message."""

    async def follow(self, until: float, start_delay: float = 0.0) -> None:
        await asyncio.sleep(start_delay)
        conn = Connection(self.port)
        path = self.playlist_path.encode()
        base = path.rsplit(b"/", 1)[0] + b"/"
        run = ""
        msn = index = -1
        try:
            while time.monotonic() < until:
                try:
                    if not run:
                        status, body = await conn.get(path)
                        self.requests += 1
                        if status != 200:
                            raise HttpError(f"playlist: {status}")
                        run, msn, index = newest_part(body)
                        continue
                    status, body = await conn.get(
                        b"%s?_HLS_msn=%d&_HLS_part=%d" % (path, msn, index + 1)
                    )
                    self.requests += 1
                    if status != 200:
                        raise HttpError(f"blocking playlist: {status}")
                    listed = self._next_listed(body, run, msn, index)
                    if listed is None:  # fell out of the window: start again from the edge
                        self._failed(f"part after {msn}.{index} not listed")
                        run = ""
                        continue
                    status, data = await conn.get(b"%s%s/%d.%d.m4s" % (base, run.encode(), *listed))
                    self.requests += 1
                    if status != 200:
                        raise HttpError(f"part: {status}")
                    self.received[listed] = time.monotonic()
                    self.sizes += len(data)
                    msn, index = listed
                except (HttpError, OSError, TimeoutError, ValueError) as exc:
                    self._failed(repr(exc))
                    await asyncio.sleep(0.05)
        finally:
            conn.close()

    def _failed(self, what: str) -> None:
        self.errors += 1
        if len(self.failures) < 20:
            self.failures.append((time.monotonic(), what))

    @staticmethod
    def _next_listed(body: bytes, run: str, msn: int, index: int) -> tuple[int, int] | None:
        end = body.rfind(b"#EXT-X-PRELOAD-HINT")
        end = len(body) if end < 0 else end
        for candidate in ((msn, index + 1), (msn + 1, 0)):
            if body.find(b'%s/%d.%d.m4s"' % (run.encode(), *candidate), 0, end) >= 0:
                return candidate
        return None


@dataclass
class Audience:
    """What a crowd of followers did."""

    followers: list[Follower]
    seconds: float

    @property
    def parts_fetched(self) -> set[tuple[int, int]]:
        """Every part that at least one listener got."""
        union: set[tuple[int, int]] = set()
        for f in self.followers:
            union.update(f.received)
        return union

    @property
    def errors(self) -> int:
        return sum(f.errors for f in self.followers)

    @property
    def requests(self) -> int:
        return sum(f.requests for f in self.followers)


async def listen(port: int, playlist_path: str, listeners: int, seconds: float) -> Audience:
    """`listeners` followers for `seconds` (they start over the first 0.5 s), then all stop."""
    followers = [Follower(port, playlist_path) for _ in range(listeners)]
    until = time.monotonic() + seconds
    tasks = [
        asyncio.create_task(f.follow(until, start_delay=0.5 * n / listeners))
        for n, f in enumerate(followers)
    ]
    try:
        async with asyncio.timeout(seconds + 15):
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
    return Audience(followers, seconds)
