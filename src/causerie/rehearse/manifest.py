"""Following a live LL-DASH stream the way the listener page's dash.js does, without any I/O.

A rehearsal listener reads the MPD (ISO/IEC 23009-1) once a `minimumUpdatePeriod`, starts
`LIVE_DELAY` behind live, asks for each segment of the SegmentTemplate (`$Number$`) as soon as
its first chunk is due (its start + duration − `availabilityTimeOffset`, §5.3.9.5.3) and reads it
as it streams, one CMAF chunk (`moof` + `mdat`) at a time. `PlayerClock` says whether each chunk
came in time to be played.

Only what causerie's manifests use is understood: one Period (a run), one SegmentTemplate with
`$Number$` and `duration`, no `presentationTimeOffset`.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

LIVE_DELAY = 0.9
"""Seconds behind live the page's dash.js plays (web/static/player.js DASH_TARGET_LATENCY)."""

_NS = "{urn:mpeg:dash:schema:mpd:2011}"
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class ManifestError(ValueError):
    """The text is not a live MPD this follower understands."""


def parse_duration(text: str) -> float:
    """An xs:duration without years or months (PnDTnHnMnS), in seconds."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise ManifestError(f"bad duration: {text!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return (
        parts.get("d", 0) * 86400
        + parts.get("h", 0) * 3600
        + parts.get("m", 0) * 60
        + parts.get("s", 0)
    )


def _date(text: str) -> float:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ManifestError(f"bad date: {text!r}") from None


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a follower needs from a live MPD: one run's Period and its SegmentTemplate."""

    run: str
    """The Period's id (causerie's run: a failover starts another)."""
    period_start: float
    """Unix seconds: availabilityStartTime + Period@start."""
    timescale: int
    segment_units: int
    """A segment's duration in `timescale` units."""
    start_number: int
    availability_time_offset: float
    initialization: str
    media: str
    """The template, with `$Number$`."""
    update_period: float | None
    """minimumUpdatePeriod in seconds; None in the final manifest (the space ended)."""
    period_duration: float | None
    """Set once the run ended: where the Period (the space) ends."""
    time_url: str | None
    """The UTCTiming source (http-iso) as written, if any."""

    @property
    def segment_seconds(self) -> float:
        return self.segment_units / self.timescale

    def segment_start(self, number: int) -> float:
        """Unix time of the first sample of segment `number`."""
        return self.period_start + (number - self.start_number) * self.segment_seconds

    def available_at(self, number: int) -> float:
        """When segment `number` may be asked for: its first chunk is due (§5.3.9.5.3)."""
        return self.segment_start(number) + self.segment_seconds - self.availability_time_offset

    def segment_at(self, unix: float) -> int:
        """The number of the segment playing at `unix`; the run's first before it began (a
        listener joining a space just put on the air is less than its delay behind the start)."""
        return self.start_number + max(0, int((unix - self.period_start) // self.segment_seconds))

    def last_number(self) -> int | None:
        """The run's last segment, once it ended."""
        if self.period_duration is None:
            return None
        end = self.period_start + self.period_duration
        return self.segment_at(end - 1e-6)

    def media_url(self, manifest_url: str, number: int) -> str:
        return urljoin(manifest_url, self.media.replace("$Number$", str(number)))

    def init_url(self, manifest_url: str) -> str:
        return urljoin(manifest_url, self.initialization)

    def chunk_time(self, decode_time: int, duration: int) -> tuple[float, float]:
        """Unix start and end of a chunk from its decode time and duration (track units, which
        are the template's timescale in causerie's streams)."""
        start = self.period_start + decode_time / self.timescale
        return start, start + duration / self.timescale


def parse_manifest(text: str) -> Manifest:
    """Parse a live MPD; raise ManifestError if it is not one this follower understands."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ManifestError(f"not XML: {exc}") from None
    if root.tag != f"{_NS}MPD":
        raise ManifestError("not an MPD")
    period = root.find(f"{_NS}Period")
    template = root.find(f"{_NS}Period/{_NS}AdaptationSet/{_NS}SegmentTemplate")
    if period is None or template is None:
        raise ManifestError("no Period with a SegmentTemplate")
    media = template.get("media") or ""
    if "$Number$" not in media or not template.get("duration"):
        raise ManifestError("only a SegmentTemplate with $Number$ and a duration is followed")
    timing = root.find(f"{_NS}UTCTiming")
    update = root.get("minimumUpdatePeriod")
    duration = period.get("duration")
    try:
        return Manifest(
            run=period.get("id") or "",
            period_start=_date(root.get("availabilityStartTime") or "")
            + parse_duration(period.get("start") or "PT0S"),
            timescale=int(template.get("timescale") or 1),
            segment_units=int(template.get("duration") or 0),
            start_number=int(template.get("startNumber") or 1),
            availability_time_offset=float(template.get("availabilityTimeOffset") or 0),
            initialization=template.get("initialization") or "",
            media=media,
            update_period=None if update is None else parse_duration(update),
            period_duration=None if duration is None else parse_duration(duration),
            time_url=timing.get("value") if timing is not None else None,
        )
    except ValueError as exc:
        raise ManifestError(str(exc)) from None


# ---- CMAF chunks (ISO/IEC 14496-12 boxes) ----------------------------------------------------


def box_header(data: bytes) -> tuple[int, str, int]:
    """(size, type, header length) of the box starting `data` (8 or 16 bytes needed)."""
    size, kind = struct.unpack(">I4s", data[:8])
    if size == 1:
        (size,) = struct.unpack(">Q", data[8:16])
        return size, kind.decode("latin-1"), 16
    return size, kind.decode("latin-1"), 8


def _children(data: bytes) -> dict[str, bytes]:
    """The payloads of the boxes in `data`, by type (the first of each type)."""
    found: dict[str, bytes] = {}
    at = 0
    while at + 8 <= len(data):
        size, kind, header = box_header(data[at : at + 16])
        if size < header or at + size > len(data):
            raise ManifestError(f"a {kind!r} box runs past its parent")
        found.setdefault(kind, data[at + header : at + size])
        at += size
    return found


def moof_timing(moof: bytes) -> tuple[int, int]:
    """(decode time, duration) of a movie fragment, in its track's units: `tfdt`'s
    baseMediaDecodeTime, and the sum of `trun`'s sample durations (or `tfhd`'s default)."""
    traf = _children(moof).get("traf")
    if traf is None:
        raise ManifestError("a moof without a traf")
    boxes = _children(traf)
    tfdt, trun, tfhd = boxes.get("tfdt"), boxes.get("trun"), boxes.get("tfhd")
    if tfdt is None or trun is None or tfhd is None:
        raise ManifestError("a traf without tfhd, tfdt or trun")
    if tfdt[0] == 1:
        (decode_time,) = struct.unpack(">Q", tfdt[4:12])
    else:
        (decode_time,) = struct.unpack(">I", tfdt[4:8])
    (flags,) = struct.unpack(">I", b"\0" + trun[1:4])
    (count,) = struct.unpack(">I", trun[4:8])
    at = 8 + 4 * bool(flags & 0x1) + 4 * bool(flags & 0x4)
    fields = [0x100, 0x200, 0x400, 0x800]
    per_sample = 4 * sum(bool(flags & f) for f in fields)
    if flags & 0x100:
        durations = [
            struct.unpack(">I", trun[at + i * per_sample : at + i * per_sample + 4])[0]
            for i in range(count)
        ]
        return decode_time, sum(durations)
    (tfhd_flags,) = struct.unpack(">I", b"\0" + tfhd[1:4])
    if not tfhd_flags & 0x8:
        raise ManifestError("no sample durations in the fragment")
    at = 8 + 8 * bool(tfhd_flags & 0x1) + 4 * bool(tfhd_flags & 0x2)
    (default,) = struct.unpack(">I", tfhd[at : at + 4])
    return decode_time, default * count


class PlayerClock:
    """When a player needs each chunk, to tell a chunk that came late (a stall one hears).

    The player starts once the first chunk is in, at the media time `LIVE_DELAY` behind the
    moment it asked (dash.js's live delay; LL-DASH media time is wall time here), then plays on
    at the media clock's pace:

        due(chunk) = anchor_wall + (start(chunk) - anchor_media)

    A chunk is late if its bytes arrive after that (chunks before the starting point are not
    played, so never late). After a stall the player resumes when the late chunk arrives, so
    the anchor moves to it. Only the load generator's clock is used for lateness.
    """

    def __init__(self, start_media: float) -> None:
        self.start_media = start_media
        self._anchor: tuple[float, float] | None = None  # (wall time, media time)

    def arrived(self, start: float, end: float, now: float) -> float:
        """Record a chunk of media [start, end) whole at `now`; return how late (<= 0: on time)."""
        if end <= self.start_media:
            return 0.0  # before where playing starts
        if self._anchor is None:
            self._anchor = (now, max(start, self.start_media))
            return 0.0
        anchor_wall, anchor_media = self._anchor
        lateness = now - (anchor_wall + start - anchor_media)
        if lateness > 0:
            self._anchor = (now, start)
        return lateness
