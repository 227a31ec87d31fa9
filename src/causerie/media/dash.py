"""Low-latency MPEG-DASH over the LL-HLS packager's chunks (ISO/IEC 23009-1, DASH-IF IOP).

Browsers with Media Source Extensions play chunked CMAF with one request per segment: the
origin sends a segment with chunked transfer from its first chunk, one ``moof+mdat`` as each
part is made, so a listener is about a chunk behind live while asking for a new object only
once a segment. The chunks are the packager's LL-HLS parts, byte for byte: a DASH segment is
``hls_segments`` consecutive HLS segments (number ``n`` of a run is HLS segments ``m, m+1``
with ``m = first_msn + 2 (n - startNumber)`` for two), so LL-HLS and LL-DASH listeners share the
encode, the packaging and the init section.

Timing (23009-1 §5.3.9.5.3; the DASH-IF timing model): ``MPD@availabilityStartTime`` is the
Unix epoch for every space and every run, so it never changes between manifest updates. Each
encoder run is one Period, whose ``@id`` is the run id and whose ``@start`` is the wall time of
the run's first sample (decode time 0). Segment ``n`` of a run covers media time
``[i D, (i + 1) D)`` with ``i = n - startNumber`` and ``D`` the segment duration; with
``availabilityTimeOffset = D - chunk`` it may be requested from ``start + i D + chunk`` on, when
its first chunk is due, and ``availabilityTimeComplete="false"`` says it is still being written
then (§5.3.9.5.3, DASH-IF IOP 9.X.4 low-latency).

Manifests change only when the run changes or the space ends, so players are told to reload
them rarely (``minimumUpdatePeriod``): every reload is a request per listener. Once the run
ended the manifest turns ``static`` (23009-1 §5.4; DASH-IF IOP 4.6.4 "transition to
on-demand"): a player that reloads it stops at the end of what it has, and one that opens it
then plays the segments still held.

URLs are relative to the manifest at ``/dash/{space}/manifest.mpd`` and contain the run id, as
the HLS ones do, so the bytes behind a URL never change (immutable, even across a failover)::

    {run}/init.mp4        the init section (the same bytes as the HLS one)
    {run}/{number}.m4s    a segment: its chunks end to end

Pure: no I/O, no clock; callers pass the time where it matters.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction

from causerie.media.encoder import FRAME_SAMPLES
from causerie.media.packager import Packager

__all__ = [
    "LATENCY_TARGET",
    "UPDATE_PERIOD",
    "Chunks",
    "Timeline",
    "format_duration",
    "format_time",
    "render_mpd",
    "segment_chunks",
]

NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
# 23009-1 §8.4: the ISO BMFF live profile (SegmentTemplate, segments starting with a SAP).
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
UTC_TIMING_SCHEME = "urn:mpeg:dash:utc:http-iso:2014"
CHANNEL_CONFIGURATION_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
CODECS = "mp4a.40.2"  # AAC-LC (RFC 6381), as the encoder makes it
EPOCH = "1970-01-01T00:00:00Z"

LATENCY_TARGET = 1.0
"""Seconds behind live players aim for (ServiceDescription Latency@target)."""
LATENCY_MAX = 3.0
"""Beyond this, a player jumps back to live instead of catching up by playing faster."""
PLAYBACK_RATES = (Fraction(95, 100), Fraction(105, 100))
"""How much slower or faster a player may play to reach the target (5 %: barely audible)."""
UPDATE_PERIOD = 60.0
"""``minimumUpdatePeriod``: the manifest only changes when the run changes or the space ends,
and each reload is one request per listener. A page that learns of either from the space's
events reloads it at once (dash.js ``refreshManifest()``)."""
UTC_TIMING_URL = "../../time"
"""The node's clock, relative to the manifest: ``/time`` (dash.js resolves it so, and would
otherwise ask a public time server)."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """Where the DASH segments of one packager run are, in numbers and in wall time."""

    run_id: str
    start_time: float
    """Wall time (Unix seconds) of the run's first sample: Period@start after the epoch."""
    first_msn: int
    """The run's first HLS segment, the first of DASH segment ``start_number``."""
    hls_segments: int
    """HLS segments per DASH segment."""
    parts_per_hls_segment: int
    part_samples: int
    sample_rate: int

    @classmethod
    def of(cls, packager: Packager, hls_segments: int) -> Timeline | None:
        """The timeline of a packager's run; None before its first frame (no start time yet)."""
        if hls_segments < 1:
            raise ValueError("hls_segments must be >= 1")
        if packager.start_time is None:
            return None
        return cls(
            run_id=packager.run_id,
            start_time=packager.start_time,
            first_msn=packager.first_msn,
            hls_segments=hls_segments,
            parts_per_hls_segment=packager.parts_per_segment,
            part_samples=packager.frames_per_part * FRAME_SAMPLES,
            sample_rate=packager.sample_rate,
        )

    @property
    def start_number(self) -> int:
        """``startNumber``: the first HLS segment's number divided by the segments per DASH
        segment, so that numbers roughly count segment durations since the epoch."""
        return self.first_msn // self.hls_segments

    @property
    def chunks_per_segment(self) -> int:
        return self.hls_segments * self.parts_per_hls_segment

    @property
    def segment_samples(self) -> int:
        """``SegmentTemplate@duration`` in the timescale (samples)."""
        return self.chunks_per_segment * self.part_samples

    @property
    def segment_duration(self) -> Fraction:
        return Fraction(self.segment_samples, self.sample_rate)

    @property
    def chunk_duration(self) -> Fraction:
        return Fraction(self.part_samples, self.sample_rate)

    @property
    def availability_time_offset(self) -> Fraction:
        """A segment may be requested once its first chunk is due: a chunk after it begins."""
        return self.segment_duration - self.chunk_duration

    def msns(self, number: int) -> range:
        """The HLS segments (media sequence numbers) making DASH segment ``number``."""
        first = self.first_msn + self.hls_segments * (number - self.start_number)
        return range(first, first + self.hls_segments)

    def number_of(self, msn: int) -> int:
        """The DASH segment holding HLS segment ``msn``."""
        return self.start_number + (msn - self.first_msn) // self.hls_segments

    def chunk_position(self, number: int, chunk: int) -> tuple[int, int]:
        """(msn, part index) of chunk ``chunk`` (0-based) of segment ``number``."""
        offset, index = divmod(chunk, self.parts_per_hls_segment)
        return self.msns(number)[0] + offset, index

    def segment_start(self, number: int) -> float:
        """Wall time of the first sample of segment ``number``."""
        elapsed = (number - self.start_number) * self.segment_samples
        return self.start_time + elapsed / self.sample_rate

    def available_at(self, number: int) -> float:
        """When a player may ask for segment ``number``: Period@start + the segment's end −
        availabilityTimeOffset (23009-1 §5.3.9.5.3), which is its start plus one chunk."""
        return self.segment_start(number) + float(self.chunk_duration)

    def number_at(self, now: float) -> int:
        """The newest segment a player may ask for at ``now``, by the manifest's arithmetic."""
        elapsed = (now - self.start_time - float(self.chunk_duration)) * self.sample_rate
        return self.start_number + int(elapsed // self.segment_samples)


@dataclass(frozen=True, slots=True)
class Chunks:
    """The chunks (``moof+mdat``) of one DASH segment made so far."""

    data: tuple[bytes, ...]
    complete: bool
    """No chunk will be added: all its HLS segments are complete, or the run has ended."""


def segment_chunks(packager: Packager, timeline: Timeline, number: int) -> Chunks | None:
    """The chunks of segment ``number`` so far; None if it has not begun, has expired (or
    partly: its first HLS segment is gone), or lies beyond the end of an ended run."""
    if number < timeline.start_number:
        return None
    chunks: list[bytes] = []
    for msn in timeline.msns(number):
        parts = packager.parts(msn)
        if parts is None:
            break  # not begun (or the run ended before it)
        chunks.extend(parts)
        if packager.segment(msn) is None:
            return Chunks(tuple(chunks), complete=False)  # in progress
    else:
        return Chunks(tuple(chunks), complete=True)
    if not chunks:
        return None
    return Chunks(tuple(chunks), complete=packager.ended)


def _held_range(packager: Packager, timeline: Timeline) -> tuple[int, int] | None:
    """(first, last) segment numbers whose chunks are all still held by an ended run."""
    oldest, last = packager.oldest_msn(), packager.last_part()
    if oldest is None or last is None:
        return None
    first = timeline.number_of(oldest)
    if timeline.msns(first)[0] < oldest:
        first += 1  # its first HLS segment is gone
    last_number = timeline.number_of(last[0])
    return (first, last_number) if first <= last_number else None


# Rendering


def format_duration(seconds: Fraction | float) -> str:
    """An ``xs:duration`` in seconds, to the microsecond, rounded down: ``PT3.84S``."""
    value = (
        Decimal(seconds.numerator) / Decimal(seconds.denominator)
        if isinstance(seconds, Fraction)
        else Decimal(repr(seconds))
    )
    text = format(value.quantize(Decimal("0.000001"), rounding=ROUND_FLOOR), "f")
    return f"PT{text.rstrip('0').rstrip('.')}S"


def format_time(unix_seconds: float) -> str:
    """An ``xs:dateTime`` in UTC to the millisecond, as the http-iso time source also
    answers: ``2026-12-07T15:55:37.695Z``."""
    moment = datetime.fromtimestamp(unix_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _seconds(value: Fraction) -> str:
    """A plain decimal (``xs:double``) to the millisecond, rounded down."""
    milliseconds = value * 1000 // 1
    return format(Decimal(int(milliseconds)) / 1000, "f").rstrip("0").rstrip(".")


def render_mpd(
    packager: Packager,
    timeline: Timeline,
    *,
    bandwidth: int = 64000,
    update_period: float = UPDATE_PERIOD,
) -> str | None:
    """The manifest of the packager's run: dynamic while it is live, static once it ended.

    None when an ended run holds no segment any more. The text depends only on the run and
    on whether it ended, so every listener (and every edge) gets the same bytes.
    """
    if packager.ended:
        held = _held_range(packager, timeline)
        if held is None:
            return None
        return _render_ended(packager, timeline, held, bandwidth)
    return _render_live(packager, timeline, bandwidth, update_period)


def _mpd(**attributes: str) -> ET.Element:
    return ET.Element(
        "MPD",
        {"xmlns": NAMESPACE, "profiles": PROFILE, **attributes, "minBufferTime": "PT1S"},
    )


def _render_live(
    packager: Packager, timeline: Timeline, bandwidth: int, update_period: float
) -> str:
    # Players may reach back as far as segments are held: the packager keeps window + 2 HLS
    # segments; the first HLS segment of a DASH segment goes first.
    held_hls = packager.window_segments + 1 - timeline.hls_segments
    depth = held_hls * Fraction(packager.parts_per_segment * timeline.part_samples)
    mpd = _mpd(
        type="dynamic",
        availabilityStartTime=EPOCH,
        publishTime=format_time(timeline.start_time),
        minimumUpdatePeriod=format_duration(Fraction(update_period)),
        timeShiftBufferDepth=format_duration(depth / timeline.sample_rate),
        maxSegmentDuration=format_duration(timeline.segment_duration),
        suggestedPresentationDelay=format_duration(Fraction(LATENCY_TARGET)),
    )
    # Annex K: no schemeIdUri, so that every client applies it (dash.js applies only these
    # and the DVB low-latency scheme).
    service = ET.SubElement(mpd, "ServiceDescription", id="0")
    ET.SubElement(
        service,
        "Latency",
        target=str(round(LATENCY_TARGET * 1000)),
        max=str(round(LATENCY_MAX * 1000)),
    )
    ET.SubElement(
        service,
        "PlaybackRate",
        min=_seconds(PLAYBACK_RATES[0]),
        max=_seconds(PLAYBACK_RATES[1]),
    )
    period = ET.SubElement(
        mpd, "Period", id=timeline.run_id, start=format_duration(timeline.start_time)
    )
    _adaptation_set(
        period,
        timeline,
        bandwidth,
        startNumber=str(timeline.start_number),
        # §5.3.9.5.3: a chunk after a segment begins, its first chunk is there to send.
        availabilityTimeOffset=_seconds(timeline.availability_time_offset),
        availabilityTimeComplete="false",
    )
    ET.SubElement(mpd, "UTCTiming", schemeIdUri=UTC_TIMING_SCHEME, value=UTC_TIMING_URL)
    return _text(mpd)


def _render_ended(
    packager: Packager, timeline: Timeline, held: tuple[int, int], bandwidth: int
) -> str:
    first, _last = held
    offset = (first - timeline.start_number) * timeline.segment_samples
    duration = Fraction(packager.samples - offset, timeline.sample_rate)
    end_time = timeline.start_time + packager.samples / timeline.sample_rate
    mpd = _mpd(
        type="static",
        publishTime=format_time(end_time),
        mediaPresentationDuration=format_duration(duration),
    )
    period = ET.SubElement(mpd, "Period", id=timeline.run_id, start="PT0S")
    # What is still held, as a short on-demand presentation starting at its first segment.
    _adaptation_set(
        period,
        timeline,
        bandwidth,
        startNumber=str(first),
        presentationTimeOffset=str(offset),
    )
    return _text(mpd)


def _adaptation_set(
    period: ET.Element, timeline: Timeline, bandwidth: int, **template: str
) -> None:
    adaptation = ET.SubElement(
        period,
        "AdaptationSet",
        id="0",
        contentType="audio",
        mimeType="audio/mp4",
        codecs=CODECS,
        audioSamplingRate=str(timeline.sample_rate),
        segmentAlignment="true",
        startWithSAP="1",  # every AAC frame is a sync sample
    )
    ET.SubElement(
        adaptation, "AudioChannelConfiguration", schemeIdUri=CHANNEL_CONFIGURATION_SCHEME, value="1"
    )
    ET.SubElement(
        adaptation,
        "SegmentTemplate",
        timescale=str(timeline.sample_rate),
        duration=str(timeline.segment_samples),
        initialization=f"{timeline.run_id}/init.mp4",
        media=f"{timeline.run_id}/$Number$.m4s",
        **template,
    )
    ET.SubElement(adaptation, "Representation", id="audio", bandwidth=str(bandwidth))


def _text(mpd: ET.Element) -> str:
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"
