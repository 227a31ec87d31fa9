"""Reading causerie's LL-HLS media playlists, and following the live edge like hls.js does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bench._http import Connection, HttpError


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One EXT-X-PART: its place, URI (relative to the playlist) and timing."""

    msn: int
    index: int
    uri: str
    duration: float
    first_sample: float
    """Wall time of its first sample: the segment's PROGRAM-DATE-TIME + the parts before it."""

    @property
    def last_sample(self) -> float:
        """Wall time of its last sample (one 48 kHz sample before the part's end)."""
        return self.first_sample + self.duration - 1 / 48000


@dataclass(slots=True)
class MediaPlaylist:
    """What the benchmarks need from a live media playlist."""

    media_sequence: int = 0
    map_uri: str = ""
    part_target: float = 0.0
    parts: list[PartInfo] = field(default_factory=list)
    complete: dict[int, str] = field(default_factory=dict)
    """Segment URI by MSN, for the complete segments listed."""

    def find(self, msn: int, index: int) -> PartInfo | None:
        """The part (msn, index), or None if it is not listed."""
        for part in reversed(self.parts):
            if part.msn == msn and part.index == index:
                return part
        return None

    def next_after(self, msn: int, index: int) -> PartInfo | None:
        """The part that follows (msn, index): index + 1, or part 0 of the next segment."""
        return self.find(msn, index + 1) or self.find(msn + 1, 0)


def _date(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_playlist(text: str) -> MediaPlaylist:
    """Parse a live LL-HLS media playlist as causerie writes it."""
    playlist = MediaPlaylist()
    msn = -1
    pdt = 0.0
    index = 0
    offset = 0.0
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            playlist.media_sequence = int(line.split(":", 1)[1])
            msn = playlist.media_sequence
        elif line.startswith("#EXT-X-PART-INF:"):
            playlist.part_target = float(line.split("PART-TARGET=", 1)[1].split(",")[0])
        elif line.startswith("#EXT-X-MAP:"):
            playlist.map_uri = line.split('URI="', 1)[1].split('"', 1)[0]
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = _date(line.split(":", 1)[1])
            index, offset = 0, 0.0
        elif line.startswith("#EXT-X-PART:"):
            attrs = line.split(":", 1)[1]
            duration = float(attrs.split("DURATION=", 1)[1].split(",")[0])
            uri = attrs.split('URI="', 1)[1].split('"', 1)[0]
            playlist.parts.append(PartInfo(msn, index, uri, duration, pdt + offset))
            index += 1
            offset += duration
        elif line and not line.startswith("#"):
            playlist.complete[msn] = line  # a segment URI closes segment `msn`
            msn += 1
    return playlist


@dataclass(frozen=True, slots=True)
class PartEvent:
    """A part fetched by a follower: when it was listed, when its bytes were all in."""

    part: PartInfo
    listed: float
    """Wall time the blocking playlist reload that lists it returned."""
    received: float
    """Wall time its bytes were fully received."""
    data: bytes
    playlist: str


def directory_of(path: str) -> str:
    """The URL directory of a playlist path, for its relative URIs."""
    return path.rsplit("/", 1)[0] + "/"


async def follow_live(
    conn: Connection,
    playlist_path: str,
    until: float,
    on_part: Callable[[PartEvent], None],
) -> int:
    """Follow the live edge until wall time `until`, the way hls.js does with blocking reload.

    For each next part: GET the playlist with _HLS_msn/_HLS_part (the server answers once the
    part exists), then GET the part. Calls `on_part` for each one; returns how many errors
    (non-200 answers, timeouts, closed connections) it met.
    """
    base = directory_of(playlist_path)
    errors = 0
    last: tuple[int, int] | None = None
    while time.time() < until:
        try:
            if last is None:
                status, body = await conn.get(playlist_path)
                playlist = parse_playlist(body.decode())
                newest = playlist.parts[-1]
                last = (newest.msn, newest.index)
                continue
            msn, index = last
            query = f"{playlist_path}?_HLS_msn={msn}&_HLS_part={index + 1}"
            status, body = await conn.get(query)
            listed = time.time()
            if status != 200:
                errors += 1
                await asyncio.sleep(0.05)
                continue
            text = body.decode()
            part = parse_playlist(text).next_after(msn, index)
            if part is None:  # fell out of the playlist window: start again from the edge
                errors += 1
                last = None
                continue
            status, data = await conn.get(base + part.uri)
            received = time.time()
            if status != 200:
                errors += 1
                continue
            on_part(PartEvent(part, listed, received, data, text))
            last = (part.msn, part.index)
        except (HttpError, TimeoutError, OSError):
            errors += 1
            await asyncio.sleep(0.05)
    return errors
