"""The origin for listeners: LL-HLS playlists, init sections, parts and segments.

A plain ASGI app, outside the API framework, because it is the hot path: every listener fetches
a playlist and a part about five times a second. Everything it serves is either immutable
(media, cached for a year) or a playlist that changes every part (cached for about a second,
and served with blocking reload so edges can collapse identical requests: RFC 8216bis §6.2.5.2).

    /hls/{space}/main.m3u8                                multivariant playlist (CODECS, BANDWIDTH)
    /hls/{space}/index.m3u8[?_HLS_msn=N[&_HLS_part=P]]   media playlist (blocking reload)
    /hls/{space}/{run}/init.mp4                           init section
    /hls/{space}/{run}/{msn}.{part}.m4s                   a part
    /hls/{space}/{run}/{msn}.m4s                          a whole segment
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs

from ..asgi import Receive, Scope, Send, send_error
from ..cluster.forward import Forwarder
from ..media.broadcasts import Broadcasts
from ..media.packager import Packager, parse_blocking_request
from ..media.playlist import render_multivariant
from .cors import ALLOW_ANY_ORIGIN, media_preflight

PLAYLIST_TYPE = b"application/vnd.apple.mpegurl"
MEDIA_TYPE = b"audio/mp4"
IMMUTABLE = b"public, max-age=31536000, immutable"
# A plain playlist changes every part; a blocking one names the part it waited for, so it can be
# cached a little longer by edges (identical URLs collapse into one origin request).
PLAYLIST_PLAIN = b"public, max-age=1"
PLAYLIST_BLOCKING = b"public, max-age=6"

# A blocking request is held at most three target durations (RFC 8216bis §6.2.5.2).
BLOCK_TIMEOUT = 6.0

_MEDIA_PATH = re.compile(
    r"^/hls/(?P<space>[A-Za-z0-9_-]{1,32})/(?P<run>[A-Za-z0-9_-]{1,32})/"
    r"(?:(?P<init>init\.mp4)|(?P<msn>\d{1,12})(?:\.(?P<part>\d{1,4}))?\.m4s)$"
)
_PLAYLIST_PATH = re.compile(r"^/hls/(?P<space>[A-Za-z0-9_-]{1,32})/index\.m3u8$")
_MULTIVARIANT_PATH = re.compile(r"^/hls/(?P<space>[A-Za-z0-9_-]{1,32})/main\.m3u8$")
MULTIVARIANT_CACHE = b"public, max-age=10"
"""It names the media playlist and the codec, which do not change during a run."""
OVERHEAD = 1.1
"""fMP4 and part framing over the encoder's bit rate, for BANDWIDTH before any segment."""


class HlsOrigin:
    """Serves what the live pipelines of this node produce."""

    def __init__(
        self,
        broadcasts: Broadcasts,
        on_request: Callable[[str, int], None] | None = None,
        forwarder: Forwarder | None = None,
    ) -> None:
        self.broadcasts = broadcasts
        self.forwarder = forwarder
        """Set with several nodes: where requests for spaces running elsewhere go."""
        self.on_request = on_request or (lambda kind, status: None)
        # The playlist changes once per part, but every listener asks for it: render it once
        # per change. Keyed by space; the entry remembers the packager and its state.
        self._playlists: dict[str, tuple[object, object, bytes]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await media_preflight(scope, send):  # a player on another site asking first
            return
        if scope["method"] not in ("GET", "HEAD"):
            self.on_request("other", 405)
            await _error(send, 405, "only GET and HEAD", [(b"allow", b"GET, HEAD")])
            return
        path = scope["path"]
        match = _PLAYLIST_PATH.match(path)
        if match:
            await self._playlist(scope, send, match["space"])
            return
        match = _MULTIVARIANT_PATH.match(path)
        if match:
            await self._multivariant(scope, send, match["space"])
            return
        match = _MEDIA_PATH.match(path)
        if match:
            await self._media(scope, send, match)
            return
        self.on_request("other", 404)
        await _error(send, 404, "there is nothing at this address")

    async def _playlist(self, scope: Scope, send: Send, space_id: str) -> None:
        pipeline = self.broadcasts.get(space_id)
        if pipeline is None and self.forwarder is not None:
            self._playlists.pop(space_id, None)
            if await self.forwarder.hls(scope, send, space_id, self._runs_here(space_id)):
                return
            pipeline = self.broadcasts.get(space_id)  # taken over while the request waited
        if pipeline is None:
            self._playlists.pop(space_id, None)
            self.on_request("playlist", 404)
            await _error(send, 404, "this space is not on the air here")
            return
        query = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        try:
            request = parse_blocking_request(
                _single(query, "_HLS_msn"), _single(query, "_HLS_part")
            )
        except ValueError as exc:
            self.on_request("playlist", 400)
            await _error(send, 400, str(exc))
            return
        cache = PLAYLIST_PLAIN
        if request is not None:
            msn, part = request
            if pipeline.packager.too_far(msn, part):
                # RFC 8216bis §6.2.5.2: more than two segments ahead is a Bad Request.
                self.on_request("playlist", 400)
                await _error(send, 400, "_HLS_msn/_HLS_part is too far ahead of the live edge")
                return
            ready = await pipeline.wait_for(msn, part, timeout=BLOCK_TIMEOUT)
            if not ready:
                # RFC 8216bis §6.2.5.2: when the part does not appear in time, say so briefly.
                self.on_request("playlist", 503)
                await _error(
                    send,
                    503,
                    "the requested part did not appear in time",
                    [(b"retry-after", b"1")],
                )
                return
            cache = PLAYLIST_BLOCKING
        body = self._rendered(space_id, pipeline.packager)
        self.on_request("playlist", 200)
        await _send(send, scope, 200, PLAYLIST_TYPE, cache, body)

    async def _multivariant(self, scope: Scope, send: Send, space_id: str) -> None:
        pipeline = self.broadcasts.get(space_id)
        if pipeline is None and self.forwarder is not None:
            if await self.forwarder.hls(scope, send, space_id, self._runs_here(space_id)):
                return
            pipeline = self.broadcasts.get(space_id)
        if pipeline is None:
            self.on_request("multivariant", 404)
            await _error(send, 404, "this space is not on the air here")
            return
        measured = pipeline.packager.bit_rates()
        estimate = round(pipeline.encoder.bit_rate * OVERHEAD)
        peak, average = measured if measured is not None else (estimate, estimate)
        body = render_multivariant(
            "index.m3u8", bandwidth=max(peak, estimate), average_bandwidth=average
        ).encode()
        self.on_request("multivariant", 200)
        await _send(send, scope, 200, PLAYLIST_TYPE, MULTIVARIANT_CACHE, body)

    def _runs_here(self, space_id: str) -> Callable[[], bool]:
        return lambda: self.broadcasts.get(space_id) is not None

    def _rendered(self, space_id: str, packager: Packager) -> bytes:
        state = (packager.last_part(), packager.ended)
        cached = self._playlists.get(space_id)
        if cached is not None and cached[0] is packager and cached[1] == state:
            return cached[2]
        body = packager.playlist().encode()
        self._playlists[space_id] = (packager, state, body)
        return body

    async def _media(self, scope: Scope, send: Send, match: re.Match[str]) -> None:
        space_id = match["space"]
        pipeline = self.broadcasts.get(space_id)
        if pipeline is None and self.forwarder is not None:
            if await self.forwarder.hls(scope, send, space_id, self._runs_here(space_id)):
                return
            pipeline = self.broadcasts.get(space_id)  # taken over while the request waited
        packager = pipeline.packager if pipeline else None
        body: bytes | None = None
        kind = "init" if match["init"] else ("part" if match["part"] is not None else "segment")
        if pipeline is not None and packager is not None and match["run"] == packager.run_id:
            if match["init"]:
                body = packager.init
            elif match["part"] is not None:
                msn, index = int(match["msn"]), int(match["part"])
                body = packager.part(msn, index)
                if body is None and _is_next_part(packager, msn, index):
                    # RFC 8216bis §6.2.6: a request for the preload-hinted part is held until
                    # the part exists, then answered (Safari asks for hinted parts early).
                    await pipeline.wait_for(msn, index, timeout=BLOCK_TIMEOUT)
                    body = packager.part(msn, index)
            else:
                body = packager.segment(int(match["msn"]))
        if body is None:
            self.on_request(kind, 404)
            await _error(send, 404, "no such part, segment or run (yet)")
            return
        self.on_request(kind, 200)
        await _send(send, scope, 200, MEDIA_TYPE, IMMUTABLE, body)


def _is_next_part(packager: Packager, msn: int, index: int) -> bool:
    """Whether (msn, index) is the part the playlist's preload hint names."""
    last = packager.last_part()
    if last is None or index >= packager.parts_per_segment:
        return False
    last_msn, last_index = last
    return (msn, index) in ((last_msn, last_index + 1), (last_msn + 1, 0))


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ValueError(f"{name} is given more than once")
    return values[0]


async def _send(
    send: Send, scope: Scope, status: int, content_type: bytes, cache: bytes, body: bytes
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", cache),
                # Players on other origins (web players, hls.js demos) may fetch the stream.
                (b"access-control-allow-origin", b"*"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    # CORS on errors too: a player on another origin then sees the status, not a CORS failure.
    await send_error(send, status, message, [ALLOW_ANY_ORIGIN, *(headers or ())])
