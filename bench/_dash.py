"""Simulated LL-DASH listeners, as the listener page is: segments streamed chunk by chunk, and
the live events in windows.

A listener does what dash.js does with causerie's manifest (docs/dash.md), on raw asyncio
sockets (uvloop), cheap enough to run thousands in one process:

- **segments**: on one keep-alive connection, GET each segment once, when the manifest says its
  first chunk is due (`availabilityTimeOffset`), and read it as it streams (chunked transfer),
  noting when each CMAF chunk (a `moof+mdat`) was complete: the time its `mdat` box ended;
- **events** (`feed=True`): on a second connection, GET the window of live events in progress
  (`/feed/{space}/{n}.ndjson`, streamed until the window closes), then the next one, as the
  page does.

A reference follows the same segments straight from the origin: when it had a chunk is when
the chunk was ready there. A listener's chunk is *on time* if it arrived before the next one
was due, i.e. at most one chunk duration after the reference had it.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import numpy as np

from bench._http import HttpError

FEED_SECONDS = 15.0  # node/feed.py WINDOW_SECONDS
FEED_GRACE = 1.0  # node/feed.py GRACE_SECONDS: a window closes this long after its end


@dataclass(frozen=True)
class Manifest:
    """What a listener reads from the live MPD: where segments are and when each is due."""

    base: str  # "/dash/{space}/"
    space_id: str
    run: str
    period_start: float  # wall time of the run's first sample
    start_number: int
    segment_seconds: float
    availability_offset: float

    @property
    def chunk_seconds(self) -> float:
        """One chunk: a segment may be asked for once its first chunk is due."""
        return self.segment_seconds - self.availability_offset

    def due(self, number: int) -> float:
        """When segment `number` may be asked for (its first chunk is due), wall time."""
        first_end = (number - self.start_number + 1) * self.segment_seconds
        return self.period_start + first_end - self.availability_offset

    def number_at(self, at: float) -> int:
        """The newest segment that may be asked for at wall time `at`."""
        elapsed = at - self.period_start + self.availability_offset
        return self.start_number + math.floor(elapsed / self.segment_seconds) - 1

    def segment_path(self, number: int) -> bytes:
        return f"{self.base}{self.run}/{number}.m4s".encode()

    @property
    def manifest_path(self) -> bytes:
        return f"{self.base}manifest.mpd".encode()


def parse_manifest(text: str, space_id: str) -> Manifest:
    """The live Period of causerie's MPD (one Period, SegmentTemplate with `$Number$`)."""
    period = re.search(r'<Period id="([^"]+)" start="PT([0-9.]+)S"', text)
    template = re.search(r"<SegmentTemplate [^>]*>", text)
    if period is None or template is None:
        raise ValueError("not a live causerie manifest")

    def attribute(name: str) -> str:
        found = re.search(rf'{name}="([^"]+)"', template[0])  # type: ignore[index]
        if found is None:
            raise ValueError(f"SegmentTemplate without {name}")
        return found[1]

    return Manifest(
        base=f"/dash/{space_id}/",
        space_id=space_id,
        run=period[1],
        period_start=float(period[2]),  # availabilityStartTime is the epoch (docs/dash.md)
        start_number=int(attribute("startNumber")),
        segment_seconds=int(attribute("duration")) / int(attribute("timescale")),
        availability_offset=float(attribute("availabilityTimeOffset")),
    )


def fetch_manifest(base_url: str, space_id: str) -> Manifest:
    """The live manifest of a space from a node (or an edge)."""
    text = httpx.get(f"{base_url}/dash/{space_id}/manifest.mpd", timeout=10).text
    return parse_manifest(text, space_id)


def window_path(space_id: str, number: int) -> bytes:
    return f"/feed/{space_id}/{number}.ndjson".encode()


def feed_window_at(at: float) -> int:
    """The window of live events in progress at wall time `at`."""
    return math.floor(at / FEED_SECONDS)


# ---- one connection ---------------------------------------------------------------------

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER = range(6)


class _Stream(asyncio.Protocol):
    """HTTP/1.1 responses read as they stream, one at a time; a body's ISO BMFF boxes are
    followed so that the end of each `mdat` (a complete CMAF chunk) is timed."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future[tuple[int, list[float], int]] | None = None
        self.head_only = False
        self._reset()

    def _reset(self) -> None:
        self.state = _HEAD
        self.buffer = bytearray()
        self.status = 0
        self.left = 0  # body bytes left (Content-Length), or of the current chunk
        self.size = 0  # body bytes received
        self.box_left = 0  # bytes left in the current box
        self.box_header = bytearray()
        self.in_mdat = False
        self.chunk_times: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish(HttpError(f"connection closed: {exc}"))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            return  # nothing asked: a late end of an abandoned response
        if self.state == _HEAD:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            rest = bytes(self.buffer[end + 4 :])
            self.buffer.clear()
            self.status = int(head[9:12])
            length = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            if self.head_only or self.status in (204, 304):
                self._finish(None)
                return
            if b"\r\ntransfer-encoding: chunked" in head:
                self.state = _CHUNK_SIZE
            elif length is not None:
                self.state, self.left = _LENGTH, int(length[1])
                if self.left == 0:
                    self._finish(None)
                    return
            else:
                self._finish(HttpError("a response without a length"))
                return
            data = rest
        if self.state == _LENGTH:
            taken = data[: self.left]
            self.left -= len(taken)
            self._body(taken)
            if self.left == 0:
                self._finish(None)
            return
        self._chunked(data)

    def _chunked(self, data: bytes) -> None:
        """RFC 9112 §7.1: size CRLF data CRLF ... 0 CRLF CRLF."""
        at, end = 0, len(data)
        while at < end:
            if self.state == _CHUNK_DATA:
                taken = data[at : at + self.left]
                at += len(taken)
                self.left -= len(taken)
                self._body(taken)
                if self.left == 0:
                    self.state, self.left = _CHUNK_END, 2
                continue
            if self.state == _CHUNK_END:
                skipped = min(self.left, end - at)
                at += skipped
                self.left -= skipped
                if self.left == 0:
                    self.state = _CHUNK_SIZE
                continue
            # _CHUNK_SIZE or _TRAILER: a line
            self.buffer += data[at:]
            at = end
            while True:
                line_end = self.buffer.find(b"\r\n")
                if line_end < 0:
                    return
                line = bytes(self.buffer[:line_end])
                rest = bytes(self.buffer[line_end + 2 :])
                self.buffer.clear()
                if self.state == _TRAILER:
                    if not line:  # the empty line after the last chunk: done
                        self._finish(None)
                        return
                    self.buffer += rest
                    continue
                size = int(line.split(b";", 1)[0], 16)
                if size == 0:
                    self.state = _TRAILER
                    self.buffer += rest
                    continue
                self.state, self.left = _CHUNK_DATA, size
                data, at, end = rest, 0, len(rest)
                break

    def _body(self, data: bytes) -> None:
        """Follow the boxes: each box is a 32-bit size and a type, then its payload."""
        self.size += len(data)
        at, end = 0, len(data)
        while at < end:
            if self.box_left == 0:
                need = 8 - len(self.box_header)
                self.box_header += data[at : at + need]
                at += need
                if len(self.box_header) < 8:
                    return
                self.box_left = int.from_bytes(self.box_header[:4], "big") - 8
                self.in_mdat = self.box_header[4:8] == b"mdat"
                self.box_header.clear()
                if self.box_left <= 0:  # an empty box (or a size we do not follow)
                    self.box_left = 0
                    continue
            taken = min(self.box_left, end - at)
            at += taken
            self.box_left -= taken
            if self.box_left == 0 and self.in_mdat:
                self.chunk_times.append(time.time())

    def _finish(self, error: Exception | None) -> None:
        waiter, self.waiter = self.waiter, None
        result = (self.status, self.chunk_times, self.size)
        self._reset()
        if waiter is None or waiter.done():
            return
        if error is None:
            waiter.set_result(result)
        else:
            waiter.set_exception(error)


class StreamConnection:
    """One keep-alive connection for streamed responses; reconnects by itself after a close."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._protocol: _Stream | None = None
        self._suffix = f" HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()

    async def request(
        self, path: bytes, *, head: bool = False, timeout: float = 10.0
    ) -> tuple[int, list[float], int]:
        """GET (or HEAD) `path`: (status, when each mdat ended, body bytes)."""
        if self._protocol is None or self._protocol.closed:
            loop = asyncio.get_running_loop()
            _transport, self._protocol = await loop.create_connection(_Stream, self.host, self.port)
        protocol = self._protocol
        assert protocol.transport is not None
        protocol.head_only = head
        waiter = asyncio.get_running_loop().create_future()
        protocol.waiter = waiter
        method = b"HEAD " if head else b"GET "
        protocol.transport.write(method + path + self._suffix)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException:
            self.close()  # the rest may still come: never reuse this connection
            raise

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


# ---- listeners ----------------------------------------------------------------------------


@dataclass
class Tally:
    """What the listeners of one process did (counted in the window)."""

    segment_requests: int = 0
    feed_requests: int = 0
    chunks: int = 0  # chunks received in the window
    errors: int = 0
    resyncs: int = 0
    cpu_seconds: float = 0.0
    wait_seconds: float = 0.0


@dataclass
class Window:
    """The measuring window and the end of a run, wall times."""

    start: float
    end: float
    stop: float

    def holds(self, at: float) -> bool:
        return self.start <= at < self.end


ERRORS = (HttpError, TimeoutError, OSError, ValueError)


class SegmentFollower:
    """Asks for every segment when it is due and reads it to the end; keeps the chunk times."""

    __slots__ = ("conn", "manifest", "segments", "tally", "window")

    def __init__(
        self, conn: StreamConnection, manifest: Manifest, window: Window, tally: Tally
    ) -> None:
        self.conn = conn
        self.manifest = manifest
        self.window = window
        self.tally = tally
        self.segments: list[tuple[int, list[float]]] = []

    async def follow(self) -> None:
        manifest, window, tally = self.manifest, self.window, self.tally
        # Joining: the segment in progress (its chunks so far at once), as dash.js at the live edge.
        number = manifest.number_at(time.time())
        while time.time() < window.stop:
            await asyncio.sleep(max(0.0, manifest.due(number) - time.time()))
            try:
                status, times, _size = await self.conn.request(manifest.segment_path(number))
            except ERRORS:
                tally.errors += 1
                await asyncio.sleep(0.1)
                number = manifest.number_at(time.time())
                continue
            if window.holds(time.time()):
                tally.segment_requests += 1
                tally.chunks += sum(1 for at in times if window.holds(at))
            if status != 200:  # expired (fell behind) or not yet: back to the live edge
                tally.errors += 1
                tally.resyncs += 1
                await asyncio.sleep(0.1)
                number = manifest.number_at(time.time())
                continue
            self.segments.append((number, times))
            number += 1


class FeedFollower:
    """Reads the live events one window after the other, each streamed while it is open."""

    __slots__ = ("conn", "space_id", "tally", "window")

    def __init__(self, conn: StreamConnection, space_id: str, window: Window, tally: Tally) -> None:
        self.conn = conn
        self.space_id = space_id
        self.window = window
        self.tally = tally

    async def follow(self) -> None:
        number = feed_window_at(time.time())
        while time.time() < self.window.stop:
            path = window_path(self.space_id, number)
            try:
                status, _times, _size = await self.conn.request(
                    path, timeout=FEED_SECONDS + FEED_GRACE + 10
                )
            except ERRORS:
                self.tally.errors += 1
                await asyncio.sleep(0.5)
                number = feed_window_at(time.time())
                continue
            if self.window.holds(time.time()):
                self.tally.feed_requests += 1
            if status == 200:
                number += 1
            elif status == 404:  # not begun yet (clocks): ask again shortly
                await asyncio.sleep(0.25)
            else:
                self.tally.errors += 1
                await asyncio.sleep(0.5)
                number = feed_window_at(time.time())


async def run_until(stop: float, coroutine: Callable[[], Awaitable[None]]) -> None:
    """Run a follower until wall time `stop` (a response in progress is abandoned then)."""
    try:
        async with asyncio.timeout(max(0.0, stop - time.time())):
            await coroutine()
    except TimeoutError:
        pass


@dataclass
class Listener:
    """One simulated listener page: a segment follower and, with `feed`, a feed follower."""

    host: str
    port: int
    manifest: Manifest
    window: Window
    tally: Tally
    feed: bool
    segments: SegmentFollower = field(init=False)

    def __post_init__(self) -> None:
        media = StreamConnection(self.host, self.port)
        self.segments = SegmentFollower(media, self.manifest, self.window, self.tally)

    async def run(self, delay: float) -> None:
        await asyncio.sleep(delay)
        tasks = [run_until(self.window.stop, self.segments.follow)]
        events = StreamConnection(self.host, self.port)
        if self.feed:
            follower = FeedFollower(events, self.manifest.space_id, self.window, self.tally)
            tasks.append(run_until(self.window.stop, follower.follow))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.segments.conn.close()
            events.close()


def chunk_table(listeners: list[Listener], first_row: int) -> np.ndarray:
    """(row, segment, chunk index, time) for every chunk every listener got, one per column."""
    rows: list[int] = []
    numbers: list[int] = []
    indices: list[int] = []
    times: list[float] = []
    for row, listener in enumerate(listeners, first_row):
        for number, chunk_times in listener.segments.segments:
            count = len(chunk_times)
            rows += [row] * count
            numbers += [number] * count
            indices += range(count)
            times += chunk_times
    return np.array([rows, numbers, indices, times], dtype=np.float64).reshape(4, -1)


async def reference(
    port: int, host: str, manifest: Manifest, stop: float
) -> dict[int, list[float]]:
    """When each chunk of each segment was ready at the origin: a direct listener's times."""
    tally = Tally()
    follower = SegmentFollower(
        StreamConnection(host, port), manifest, Window(stop, stop, stop), tally
    )
    await run_until(stop, follower.follow)
    follower.conn.close()
    return dict(follower.segments)


@dataclass
class Judged:
    """How the listeners' chunks arrived, against the reference."""

    segments: int = 0  # segments judged (every chunk ready inside the window)
    on_time: float = 0.0  # share of (listener, segment) pairs with every chunk on time
    chunks_on_time: float = 0.0  # share of (listener, chunk) pairs on time
    missing: float = 0.0  # share of (listener, chunk) pairs never received
    delay_p50_ms: float = math.nan
    delay_p99_ms: float = math.nan


def judge(
    table: np.ndarray,
    ready: dict[int, list[float]],
    listeners: int,
    window: Window,
    chunk_seconds: float,
    slack: float = 0.5,
) -> Judged:
    """Judge the segments whose chunks were all ready in the window (the last `slack` seconds
    left for delivery): a chunk is on time if a listener had it at most one chunk duration
    after the reference did; a segment, if every chunk of it was."""
    judged = {
        number: times
        for number, times in ready.items()
        if times and window.start <= times[0] and times[-1] < window.end - slack
    }
    result = Judged(segments=len(judged))
    if not judged or listeners == 0:
        return result
    rows, numbers, indices, times = table
    keep = np.isin(numbers, np.fromiter(judged, dtype=np.float64, count=len(judged)))
    rows, numbers, indices, times = rows[keep], numbers[keep], indices[keep], times[keep]
    offsets: dict[int, int] = {}
    flat: list[float] = []
    for number, ready_times in judged.items():
        offsets[number] = len(flat)
        flat += ready_times
    ready_flat = np.asarray(flat)
    counts = np.array([len(judged[int(n)]) for n in numbers]) if len(numbers) else np.zeros(0)
    valid = indices < counts
    rows, numbers, indices, times = rows[valid], numbers[valid], indices[valid], times[valid]
    at = np.array([offsets[int(n)] for n in numbers], dtype=np.int64) + indices.astype(np.int64)
    delays = times - ready_flat[at] if len(at) else np.zeros(0)
    expected_chunks = listeners * len(ready_flat)
    late = delays > chunk_seconds
    result.chunks_on_time = float(np.sum(~late)) / expected_chunks
    result.missing = 1 - len(delays) / expected_chunks
    if len(delays):
        result.delay_p50_ms = float(np.percentile(delays, 50) * 1000)
        result.delay_p99_ms = float(np.percentile(delays, 99) * 1000)
    # A (listener, segment) pair is on time if it got every chunk, none late.
    pair = rows.astype(np.int64) * 1_000_003 + (numbers - min(judged)).astype(np.int64)
    good_pairs = 0
    if len(pair):
        _unique, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
        got = np.bincount(inverse)
        late_count = np.bincount(inverse, weights=late.astype(np.float64))
        needed = np.array([len(judged[int(n)]) for n in numbers[first]])
        good_pairs = int(np.sum((got == needed) & (late_count == 0)))
    result.on_time = good_pairs / (listeners * len(judged))
    return result
