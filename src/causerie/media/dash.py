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
then (§5.3.9.5.3; the DASH-IF low-latency guidelines).

Manifests change only when the run changes or the space ends, so players are told to reload
them rarely (``minimumUpdatePeriod``): every reload is a request per listener. Once the run
ended, the manifest keeps its timeline, loses ``minimumUpdatePeriod`` and gives the Period its
duration (23009-1 §5.4: the presentation is complete): a player plays what it has and stops.
The run's last chunk carries an MPD expiry event (``mpd_expiry``) so that players reload the
manifest then, not a minute later (docs/dash.md has what dash.js did with and without it).

URLs are relative to the manifest at ``/dash/{space}/manifest.mpd`` and contain the run id, as
the HLS ones do, so the bytes behind a URL never change (immutable, even across a failover)::

    {run}/init.mp4        the init section (the same bytes as the HLS one)
    {run}/{number}.m4s    a segment: its chunks end to end

Pure: no I/O, no clock; callers pass the time where it matters.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction

from causerie.media import fmp4
from causerie.media.encoder import FRAME_SAMPLES
from causerie.media.packager import Packager

__all__ = [
    "LATENCY_TARGET",
    "UPDATE_PERIOD",
    "Chunks",
    "Timeline",
    "format_duration",
    "format_time",
    "mpd_expiry",
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
MPD_EVENT_SCHEME = "urn:mpeg:dash:event:2012"
MPD_EXPIRY_VALUE = "1"  # §5.10.4: MPD validity expiration

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
    partly: its first HLS segment is gone), or lies beyond the end of an ended run.

    Once the run ended, its very last chunk carries an MPD validity expiration event in front
    of it (``mpd_expiry``): a player playing it reloads the manifest and learns of the end.
    """
    if number < timeline.start_number:
        return None
    chunks: list[bytes] = []
    complete = True
    for msn in timeline.msns(number):
        parts = packager.parts(msn)
        if parts is None:
            complete = packager.ended  # not begun (and never will be, once the run ended)
            break
        chunks.extend(parts)
        if packager.segment(msn) is None:
            return Chunks(tuple(chunks), complete=False)  # in progress
    if not chunks:
        return None
    last = packager.last_part()
    if packager.ended and last is not None and timeline.number_of(last[0]) == number:
        chunks[-1] = mpd_expiry(packager, timeline, number, len(chunks) - 1) + chunks[-1]
    return Chunks(tuple(chunks), complete=complete)


def mpd_expiry(packager: Packager, timeline: Timeline, number: int, chunk: int) -> bytes:
    """An ``emsg`` saying that the live manifest expires at chunk ``chunk`` of segment
    ``number``, the run's last (23009-1 §5.10.4: scheme ``urn:mpeg:dash:event:2012``, value
    1, the new manifest's publishTime as message). Players reload the manifest when they play
    that chunk, instead of asking for segments that will never come; the final manifest says
    where the Period ends. Not sooner: an edge may still hold the live manifest for a moment
    after the end (the origin allows a second; the Varnish edge keeps it half a second)."""
    presentation_time = (number - timeline.start_number) * timeline.segment_samples
    presentation_time += chunk * timeline.part_samples  # every chunk but the last is whole
    remaining = packager.samples - presentation_time  # never 0: dash.js would not reload
    payload = b"".join(
        (
            struct.pack(">IQII", timeline.sample_rate, presentation_time, remaining, 1),
            MPD_EVENT_SCHEME.encode() + b"\0",
            MPD_EXPIRY_VALUE.encode() + b"\0",
            format_time(_end_time(packager, timeline)).encode(),
        )
    )
    return fmp4.full_box(b"emsg", 1, 0, payload)


def _end_time(packager: Packager, timeline: Timeline) -> float:
    """Wall time of the end of the run's last sample (the final manifest's publishTime)."""
    return timeline.start_time + packager.samples / timeline.sample_rate


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
) -> str:
    """The manifest of the packager's run: live, then final once the run ended.

    The final manifest keeps the timeline and says where the Period ends, with no
    ``minimumUpdatePeriod`` (23009-1 §5.4: the presentation is complete):
    players play what they have to the end and stop. The text depends only on the run and on
    whether it ended, so every listener (and every edge) gets the same bytes.
    """
    ended = packager.ended
    # Players may reach back as far as segments are held: the packager keeps window + 2 HLS
    # segments; the first HLS segment of a DASH segment goes first.
    held_hls = packager.window_segments + 1 - timeline.hls_segments
    depth = held_hls * Fraction(packager.parts_per_segment * timeline.part_samples)
    duration = Fraction(packager.samples, timeline.sample_rate)
    mpd = ET.Element(
        "MPD",
        xmlns=NAMESPACE,
        profiles=PROFILE,
        type="dynamic",
        availabilityStartTime=EPOCH,
        publishTime=format_time(_end_time(packager, timeline) if ended else timeline.start_time),
    )
    if not ended:
        mpd.set("minimumUpdatePeriod", format_duration(Fraction(update_period)))
    mpd.set("timeShiftBufferDepth", format_duration(depth / timeline.sample_rate))
    mpd.set("maxSegmentDuration", format_duration(timeline.segment_duration))
    mpd.set("suggestedPresentationDelay", format_duration(Fraction(LATENCY_TARGET)))
    mpd.set("minBufferTime", "PT1S")
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
    if ended:
        period.set("duration", format_duration(duration))
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
    # The run's last chunk says that the manifest expires (segment_chunks): clients only act
    # on event schemes the manifest names.
    ET.SubElement(
        adaptation, "InbandEventStream", schemeIdUri=MPD_EVENT_SCHEME, value=MPD_EXPIRY_VALUE
    )
    ET.SubElement(
        adaptation,
        "SegmentTemplate",
        {
            "timescale": str(timeline.sample_rate),
            "duration": str(timeline.segment_samples),
            "initialization": f"{timeline.run_id}/init.mp4",
            "media": f"{timeline.run_id}/$Number$.m4s",
            **template,
        },
    )
    ET.SubElement(adaptation, "Representation", id="audio", bandwidth=str(bandwidth))


def _text(mpd: ET.Element) -> str:
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"
