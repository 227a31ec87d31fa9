"""The LL-DASH origin: manifests, init sections and segments streamed while they are made.

Beside the LL-HLS origin (hls.py), from the same packager: a listener asks for each segment
once, when its first chunk is due, and receives it with chunked transfer, one chunk (the
``moof+mdat`` of one part, 213 ms) the moment the packager closes it. A listener that asks in
the middle of a segment gets the chunks made so far at once. Every answer is the same for
everyone, so an edge that streams an object while it is fetched (Varnish) sends the origin one
request per segment whatever the audience (docs/dash.md).

    /dash/{space}/manifest.mpd       the MPD (media/dash.py): changes only when the run does
    /dash/{space}/{run}/init.mp4     init section (immutable)
    /dash/{space}/{run}/{number}.m4s a segment (immutable; streamed while in progress)
    /time                            the node's clock for players (UTCTiming http-iso)

A segment in progress is sent with the same immutable Cache-Control as a complete one: its
bytes, once the response ends, are the complete segment. A response that cannot be finished
(the pipeline stopped making parts, the listener stopped reading) is cut off without its last
chunk, so no cache keeps it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from ..asgi import Receive, Scope, Send, send_error
from ..cluster.forward import Forwarder
from ..media import dash
from ..media.broadcasts import Broadcasts
from ..media.pipeline import LivePipeline
from .cors import ALLOW_ANY_ORIGIN, media_preflight

MANIFEST_TYPE = b"application/dash+xml"
MEDIA_TYPE = b"audio/mp4"
IMMUTABLE = b"public, max-age=31536000, immutable"
MANIFEST_CACHE = b"public, max-age=1"
"""The manifest only changes when the run changes or the space ends, but players reload it
about a second after the end (the last chunk's event): edges keep it a second at most, and a
join storm costs the origin about one manifest request per edge per second."""
CORS = ALLOW_ANY_ORIGIN
"""Players on other origins (dash.js on another site) fetch all of this."""

SEGMENT_SECONDS = 3.84
"""The segment length chosen (two HLS segments): docs/dash.md has the measurements."""
AHEAD_SECONDS = 4.0
"""A segment due to begin within this long may be waited for (one of 3.84 s, two of 1.92 s);
a request further ahead is answered 404 at once."""
PART_TIMEOUT = 3.0
"""A part comes every 213 ms: none for this long means the pipeline stopped; the response is
cut off."""
SEND_TIMEOUT = 10.0
"""How long one chunk may wait for a listener that does not read, before it is let go."""
START_TIMEOUT = 6.0
"""How long a manifest request waits for a run's first part (a space just put on the air)."""

_MANIFEST_PATH = re.compile(r"^/dash/(?P<space>[A-Za-z0-9_-]{1,32})/manifest\.mpd$")
_MEDIA_PATH = re.compile(r"^/dash/(?P<space>[A-Za-z0-9_-]{1,32})/(?P<run>[^/]+)/(?P<name>[^/]+)$")
_RUN = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NUMBER = re.compile(r"(?:0|[1-9][0-9]{0,11})")  # canonical: one URL per segment


class CutOff(Exception):
    """A streamed response had to be cut off (internal: ends the request)."""


class DashOrigin:
    """Serves the LL-DASH view of what the live pipelines of this node produce."""

    def __init__(
        self,
        broadcasts: Broadcasts,
        on_request: Callable[[str, int], None] | None = None,
        forwarder: Forwarder | None = None,
        segment_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broadcasts = broadcasts
        self.forwarder = forwarder
        """Set with several nodes: where requests for spaces running elsewhere go."""
        self.on_request = on_request or (lambda kind, status: None)
        self.segment_seconds = SEGMENT_SECONDS if segment_seconds is None else segment_seconds
        """DASH segment length; a whole number of HLS segments (1.92 s each)."""
        self.clock = clock
        self.streams_open = 0
        """Segment responses being streamed now."""
        self._manifests: dict[str, tuple[object, bool, bytes]] = {}

    def hls_segments(self, pipeline: LivePipeline) -> int:
        """HLS segments per DASH segment for this pipeline's packager."""
        return max(1, round(self.segment_seconds / float(pipeline.packager.segment_duration)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await media_preflight(scope, send):  # a player on another site asking first
            return
        if scope["method"] not in ("GET", "HEAD"):
            self.on_request("other", 405)
            await _error(send, 405, "only GET and HEAD", (b"allow", b"GET, HEAD"))
            return
        path = scope["path"]
        if path == "/time":
            self.on_request("time", 200)
            now = dash.format_time(self.clock()).encode()
            await _send(send, scope, b"text/plain; charset=utf-8", b"no-store", now)
            return
        match = _MANIFEST_PATH.match(path)
        if match:
            await self._manifest(scope, send, match["space"])
            return
        match = _MEDIA_PATH.match(path)
        if match:
            await self._media(scope, send, match["space"], match["run"], match["name"])
            return
        self.on_request("other", 404)
        await _error(send, 404, "there is nothing at this address")

    async def _pipeline(
        self, scope: Scope, send: Send, space_id: str
    ) -> tuple[LivePipeline | None, bool]:
        """(the space's pipeline here or None, whether the request was answered already: by
        the space's owner, another node, to which it was forwarded)."""
        pipeline = self.broadcasts.get(space_id)
        if pipeline is None and self.forwarder is not None:

            def runs_here() -> bool:
                return self.broadcasts.get(space_id) is not None

            if await self.forwarder.hls(scope, send, space_id, runs_here):
                return None, True
            pipeline = self.broadcasts.get(space_id)  # taken over while the request waited
        return pipeline, False

    async def _manifest(self, scope: Scope, send: Send, space_id: str) -> None:
        pipeline, answered = await self._pipeline(scope, send, space_id)
        if pipeline is None:
            self._manifests.pop(space_id, None)
            if not answered:
                self.on_request("manifest", 404)
                await _error(send, 404, "this space is not on the air here")
            return
        packager = pipeline.packager
        if packager.start_time is None and not packager.ended:
            # Just put on the air: the run's start time is its first frame's.
            await pipeline.wait_for(packager.first_msn, 0, timeout=START_TIMEOUT)
        body = self._rendered(space_id, pipeline)
        if body is None:
            self.on_request("manifest", 404)
            await _error(send, 404, "this space's stream has not started")
            return
        self.on_request("manifest", 200)
        await _send(send, scope, MANIFEST_TYPE, MANIFEST_CACHE, body)

    def _rendered(self, space_id: str, pipeline: LivePipeline) -> bytes | None:
        """The manifest, rendered once per run and once more when it ends."""
        packager = pipeline.packager
        cached = self._manifests.get(space_id)
        if cached is not None and cached[0] is packager and cached[1] == packager.ended:
            return cached[2]
        timeline = dash.Timeline.of(packager, self.hls_segments(pipeline))
        if timeline is None:
            return None  # no frame yet (or a run that ended before its first)
        body = dash.render_mpd(packager, timeline).encode()
        self._manifests[space_id] = (packager, packager.ended, body)
        return body

    async def _media(self, scope: Scope, send: Send, space_id: str, run: str, name: str) -> None:
        kind = "init" if name == "init.mp4" else "segment"
        number: int | None = None
        if kind == "segment":
            stem = name.removesuffix(".m4s")
            if stem == name:
                self.on_request("other", 404)
                await _error(send, 404, "there is nothing at this address")
                return
            if not _NUMBER.fullmatch(stem):
                self.on_request("segment", 400)
                await _error(
                    send, 400, "a segment number is a decimal integer without leading zeros"
                )
                return
            number = int(stem)
        if not _RUN.fullmatch(run):
            self.on_request(kind, 404)
            await _error(send, 404, "no such run")
            return
        pipeline, answered = await self._pipeline(scope, send, space_id)
        if answered:
            return
        if pipeline is None or pipeline.packager.run_id != run:
            self.on_request(kind, 404)
            await _error(send, 404, "no such run (yet): reload the manifest")
            return
        if number is None:
            self.on_request("init", 200)
            await _send(send, scope, MEDIA_TYPE, IMMUTABLE, pipeline.packager.init)
            return
        await self._segment(scope, send, pipeline, number)

    async def _segment(self, scope: Scope, send: Send, pipeline: LivePipeline, number: int) -> None:
        packager = pipeline.packager
        timeline = dash.Timeline.of(packager, self.hls_segments(pipeline))
        chunks = None if timeline is None else dash.segment_chunks(packager, timeline, number)
        if chunks is None and timeline is not None and not packager.ended:
            chunks = await self._wait_for_start(pipeline, timeline, number)
        if chunks is None or timeline is None:
            self.on_request("segment", 404)
            await _error(send, 404, "no such segment: not yet, or not any more")
            return
        if chunks.complete:
            self.on_request("segment", 200)
            await _send(send, scope, MEDIA_TYPE, IMMUTABLE, b"".join(chunks.data))
            return
        self.on_request("segment", 200)
        self.streams_open += 1
        try:
            await self._stream(scope, send, pipeline, timeline, number, chunks)
        except CutOff:
            pass  # cut off: the server closes the connection, no cache keeps a part of it
        finally:
            self.streams_open -= 1

    async def _wait_for_start(
        self, pipeline: LivePipeline, timeline: dash.Timeline, number: int
    ) -> dash.Chunks | None:
        """Hold a request for a segment that begins soon until its first chunk exists."""
        last = pipeline.packager.last_part()
        current = timeline.number_of(last[0]) if last else timeline.start_number - 1
        ahead = number - current
        if ahead < 1 or ahead * float(timeline.segment_duration) > AHEAD_SECONDS:
            return None  # expired, or too far ahead to hold a connection for
        msn, index = timeline.chunk_position(number, 0)
        timeout = ahead * float(timeline.segment_duration) + PART_TIMEOUT
        await pipeline.wait_for(msn, index, timeout=timeout)
        return dash.segment_chunks(pipeline.packager, timeline, number)

    async def _stream(
        self,
        scope: Scope,
        send: Send,
        pipeline: LivePipeline,
        timeline: dash.Timeline,
        number: int,
        chunks: dash.Chunks,
    ) -> None:
        """Send a segment in progress: the chunks made so far, then each as it is made."""
        start = {
            "type": "http.response.start",
            "status": 200,
            # No Content-Length: chunked transfer (RFC 9112 §7.1), one chunk per part.
            "headers": [(b"content-type", MEDIA_TYPE), (b"cache-control", IMMUTABLE), CORS],
        }
        await _bounded(send, start)
        if scope["method"] == "HEAD":
            await _bounded(send, {"type": "http.response.body", "body": b""})
            return
        sent = 0
        while True:
            for chunk in chunks.data[sent:]:
                await _bounded(
                    send, {"type": "http.response.body", "body": chunk, "more_body": True}
                )
            sent = len(chunks.data)
            if chunks.complete:
                break
            msn, index = timeline.chunk_position(number, sent)
            await pipeline.wait_for(msn, index, timeout=PART_TIMEOUT)
            later = dash.segment_chunks(pipeline.packager, timeline, number)
            if later is None or (len(later.data) == sent and not later.complete):
                raise CutOff("no new part in time")
            chunks = later
        await _bounded(send, {"type": "http.response.body", "body": b""})


async def _bounded(send: Send, message: dict[str, object]) -> None:
    """Send, but let go of a listener that has not taken the previous bytes in time (the
    server buffers a little; beyond that ``send`` waits for the socket to drain)."""
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            await send(message)
    except TimeoutError:
        raise CutOff("the listener stopped reading") from None


async def _send(send: Send, scope: Scope, content_type: bytes, cache: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", cache),
                CORS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _error(send: Send, status: int, message: str, *headers: tuple[bytes, bytes]) -> None:
    # CORS on errors too: a player on another origin then sees the status, not a CORS failure.
    await send_error(send, status, message, [CORS, *headers])
