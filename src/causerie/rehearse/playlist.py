"""Following a live LL-HLS media playlist the way hls.js does, without any I/O.

A rehearsal listener loads the playlist once, starts PART-HOLD-BACK behind the live edge (HLS
section 4.4.3.8; hls.js does the same in low-latency mode), fetches every part from there, then asks
for the next part with a blocking playlist reload (`_HLS_msn`/`_HLS_part`, section 6.2.5.2) and
fetches it as soon as it is listed. `PlayerClock` says whether each part came in time to be played.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin


class PlaylistError(ValueError):
    """The text is not a live media playlist this follower understands."""


@dataclass(frozen=True, slots=True)
class Part:
    """One EXT-X-PART: its place in the stream, its URI (as written) and its media time."""

    msn: int
    index: int
    uri: str
    duration: float
    start: float | None
    """Wall-clock time of its first sample (the segment's PROGRAM-DATE-TIME + the parts before
    it), or None when the playlist has no PROGRAM-DATE-TIME."""

    @property
    def key(self) -> tuple[int, int]:
        return (self.msn, self.index)


@dataclass(slots=True)
class MediaPlaylist:
    """What a follower needs from a live media playlist."""

    media_sequence: int = 0
    part_target: float = 0.0
    part_hold_back: float = 0.0
    can_block_reload: bool = False
    map_uri: str | None = None
    ended: bool = False
    parts: list[Part] = field(default_factory=list)
    complete: set[int] = field(default_factory=set)
    """Media sequence numbers of the segments listed as complete (an EXTINF and a URI)."""

    def start_parts(self) -> list[Part]:
        """The parts to fetch first: from PART-HOLD-BACK (else 3 part targets) behind the end."""
        if not self.parts:
            return []
        hold_back = self.part_hold_back or 3 * self.part_target
        behind = 0.0
        first = len(self.parts) - 1
        # Walk back from the newest part until the parts after `first` cover the hold-back.
        while first > 0 and behind + self.parts[first].duration < hold_back - 1e-6:
            behind += self.parts[first].duration
            first -= 1
        return self.parts[first:]

    def parts_after(self, last: tuple[int, int]) -> list[Part]:
        """Every listed part after `last`, oldest first (several if the follower fell behind)."""
        return [part for part in self.parts if part.key > last]

    def next_request(self, last: tuple[int, int]) -> tuple[int, int]:
        """The (_HLS_msn, _HLS_part) of the blocking reload for the part after `last`.

        The next part of the same segment, or part 0 of the next segment once the playlist shows
        the segment of `last` complete (section 6.2.5.2).
        """
        msn, index = last
        if msn in self.complete and not any(p.msn == msn and p.index > index for p in self.parts):
            return (msn + 1, 0)
        return (msn, index + 1)


def _attribute(attrs: str, name: str) -> str | None:
    """The value of NAME=… in an attribute list (quoted or not)."""
    for item in _split_attributes(attrs):
        key, _, value = item.partition("=")
        if key.strip() == name:
            return value.strip().strip('"')
    return None


def _split_attributes(attrs: str) -> list[str]:
    """Split an attribute list on the commas outside quoted strings (section 4.2)."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in attrs:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


def _date(text: str) -> float:
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()


def _number(value: str | None, tag: str) -> float:
    try:
        return float(value or "")
    except ValueError:
        raise PlaylistError(f"bad number in {tag}: {value!r}") from None


def parse_playlist(text: str) -> MediaPlaylist:
    """Parse a live LL-HLS media playlist; raise PlaylistError if it is not one."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise PlaylistError("not a playlist (no #EXTM3U)")
    playlist = MediaPlaylist()
    msn = 0
    pdt: float | None = None
    index = 0
    offset = 0.0
    for raw in lines[1:]:
        line = raw.strip()
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-MEDIA-SEQUENCE":
            playlist.media_sequence = msn = int(_number(value, tag))
        elif tag == "#EXT-X-PART-INF":
            playlist.part_target = _number(_attribute(value, "PART-TARGET"), tag)
        elif tag == "#EXT-X-SERVER-CONTROL":
            playlist.can_block_reload = _attribute(value, "CAN-BLOCK-RELOAD") == "YES"
            hold_back = _attribute(value, "PART-HOLD-BACK")
            if hold_back is not None:
                playlist.part_hold_back = _number(hold_back, tag)
        elif tag == "#EXT-X-MAP":
            playlist.map_uri = _attribute(value, "URI")
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":
            try:
                pdt = _date(value)
            except ValueError:
                raise PlaylistError(f"bad PROGRAM-DATE-TIME: {value!r}") from None
            index, offset = 0, 0.0
        elif tag == "#EXT-X-PART":
            uri = _attribute(value, "URI")
            if not uri:
                raise PlaylistError("EXT-X-PART without a URI")
            duration = _number(_attribute(value, "DURATION"), tag)
            start = None if pdt is None else pdt + offset
            playlist.parts.append(Part(msn, index, uri, duration, start))
            index += 1
            offset += duration
        elif tag == "#EXT-X-ENDLIST":
            playlist.ended = True
        elif line and not line.startswith("#"):
            playlist.complete.add(msn)  # a segment URI closes segment `msn`
            msn += 1
            pdt, index, offset = None, 0, 0.0
    return playlist


def resolve(playlist_url: str, uri: str) -> str:
    """The URL (or path) of `uri` as written in the playlist at `playlist_url` (RFC 3986)."""
    return urljoin(playlist_url, uri)


def blocking_url(playlist_url: str, request: tuple[int, int]) -> str:
    """The playlist URL with the LL-HLS delivery directives for a blocking reload."""
    base = playlist_url.split("?", 1)[0]
    return f"{base}?_HLS_msn={request[0]}&_HLS_part={request[1]}"


class PlayerClock:
    """When a player needs each part, to tell a part that came late (a stall the listener hears).

    The player starts playing the first part the moment its bytes are in, then plays the parts
    back to back on the media clock (their PROGRAM-DATE-TIME starts, or the sum of durations when
    there is none). Part k is due when the play head reaches it:

        due(k) = anchor_wall + (start(k) - anchor_start)

    and is late if its bytes arrive after that. Since the player started PART-HOLD-BACK behind
    the live edge, that much buffer absorbs delivery jitter; a part later than the buffer is a
    stall. After a stall the player resumes when the late part arrives, so the anchor moves to it
    (later parts are judged from there, as a listener would hear them). Only the load generator's
    own clock is used, so skew between machines does not matter.
    """

    def __init__(self) -> None:
        self._anchor: tuple[float, float] | None = None  # (wall time, media start)
        self._next_start = 0.0

    def arrived(self, part: Part, now: float) -> float:
        """Record that `part`'s bytes were all in at `now`; return how late (<= 0: on time)."""
        start = part.start if part.start is not None else self._next_start
        self._next_start = start + part.duration
        if self._anchor is None:
            self._anchor = (now, start)
            return 0.0
        anchor_wall, anchor_start = self._anchor
        lateness = now - (anchor_wall + start - anchor_start)
        if lateness > 0:
            self._anchor = (now, start)
        return lateness
