"""Low-Latency HLS packaging: AAC frames in, CMAF parts, segments and playlists out.

The packager groups encoded frames into parts (``frames_per_part`` frames, 10 = 213.3 ms at
48 kHz) and parts into segments (``parts_per_segment`` parts, 9 = 1.92 s), writes each part as one
fMP4 fragment and keeps a sliding window of them in memory. It does no I/O and knows no clock:
the caller passes the wall time of each frame. The HTTP layer reads bytes and playlists from it,
and uses the pure helpers at the top of this module for the blocking-reload query parameters
(RFC 8216bis section 6.2.5.2).

URLs are relative to the playlist at ``/hls/{space_id}/index.m3u8``::

    {run_id}/init.mp4          Media Initialization Section (EXT-X-MAP)
    {run_id}/{msn}.{index}.m4s Partial Segment (EXT-X-PART)
    {run_id}/{msn}.m4s         Media Segment: its parts' fragments, concatenated

Every media URL contains the run id (one per encoder run), so bytes of two runs never share a
URL and may be cached as immutable, even across a restart or a failover. Media Sequence Numbers
must also keep increasing across runs (section 6.2.2): derive ``first_msn`` from wall time with
``first_msn_at()``, and start the next run's ``discontinuity_sequence`` one higher, because its
timestamps restart from zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from causerie.media import fmp4
from causerie.media.encoder import FRAME_SAMPLES, EncodedFrame
from causerie.media.playlist import (
    LivePlaylist,
    Part,
    Segment,
    render_live,
    target_duration_for,
)

__all__ = [
    "Packager",
    "PartRef",
    "SegmentRef",
    "first_msn_at",
    "parse_blocking_request",
]

_DECIMAL_INTEGER = re.compile(r"[0-9]{1,20}")  # section 4.2: decimal-integer, 0 to 2^64-1
_MAX_DECIMAL_INTEGER = 2**64 - 1


def parse_blocking_request(msn: str | None, part: str | None) -> tuple[int, int | None] | None:
    """Parse ``_HLS_msn`` and ``_HLS_part`` (raw query values, ``None`` when absent).

    Returns ``None`` for an ordinary (non-blocking) request, else ``(msn, part_or_None)``.
    Raises ``ValueError`` with a message fit for a 400 response for values that are not
    decimal-integers, and for ``_HLS_part`` without ``_HLS_msn`` (section 6.2.5.2: MUST be 400).
    """
    if msn is None:
        if part is not None:
            raise ValueError("_HLS_part requires _HLS_msn")
        return None
    msn_value = _decimal_integer("_HLS_msn", msn)
    part_value = None if part is None else _decimal_integer("_HLS_part", part)
    return msn_value, part_value


def _decimal_integer(name: str, text: str) -> int:
    if not _DECIMAL_INTEGER.fullmatch(text) or int(text) > _MAX_DECIMAL_INTEGER:
        raise ValueError(f"{name} must be a non-negative integer, got {text!r}")
    return int(text)


def first_msn_at(wall_time: float, segment_seconds: float) -> int:
    """A first Media Sequence Number for a run starting at ``wall_time`` (Unix seconds).

    Counting segments since the epoch keeps MSNs increasing across restarts without any stored
    state, as long as a restart takes longer than a segment or so. A run that knows the previous
    run's last MSN should use ``max(first_msn_at(...), last + 1)``.
    """
    return int(wall_time // segment_seconds)


@dataclass(frozen=True, slots=True)
class PartRef:
    """A part that has just become available: ``msn``, ``index``, ``duration`` in seconds."""

    msn: int
    index: int
    duration: Fraction
    independent: bool = True


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A completed segment, as handed to ``Packager.on_segment`` (for the recorder)."""

    run_id: str
    msn: int
    duration: Fraction
    program_date_time: float
    parts: int
    uri: str


@dataclass(slots=True)
class _Segment:
    msn: int
    program_date_time: float
    parts: list[bytes] = field(default_factory=list)
    part_samples: list[int] = field(default_factory=list)
    data: bytes | None = None  # set when complete

    @property
    def samples(self) -> int:
        return sum(self.part_samples)


class Packager:
    """Frames in, LL-HLS bytes out, for one encoder run of one space.

    ``window_segments`` complete segments are listed in the playlist; the bytes of a segment and
    of its parts stay available two segments longer, because section 6.2.2 wants a removed
    segment downloadable for its own duration plus the playlist's after it first appeared.
    """

    def __init__(
        self,
        *,
        run_id: str,
        first_msn: int,
        audio_specific_config: bytes,
        sample_rate: int = 48000,
        frames_per_part: int = 10,
        parts_per_segment: int = 9,
        window_segments: int = 6,
        discontinuity_sequence: int = 0,
        on_segment: Callable[[SegmentRef, bytes], None] | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", run_id):
            raise ValueError(f"run_id must be URL-safe (letters, digits, - and _), got {run_id!r}")
        if first_msn < 0 or frames_per_part < 1 or parts_per_segment < 1:
            raise ValueError("first_msn must be >= 0, frames and parts per unit >= 1")
        self.run_id = run_id
        self.first_msn = first_msn
        self.sample_rate = sample_rate
        self.frames_per_part = frames_per_part
        self.parts_per_segment = parts_per_segment
        self.window_segments = window_segments
        self.discontinuity_sequence = discontinuity_sequence
        self.on_segment = on_segment
        self.part_duration = Fraction(frames_per_part * FRAME_SAMPLES, sample_rate)
        self.segment_duration = self.part_duration * parts_per_segment
        self.target_duration = target_duration_for(self.segment_duration)
        if window_segments * self.segment_duration < 3 * self.target_duration:
            # Section 6.2.2: a live playlist MUST stay at least three Target Durations long.
            raise ValueError("window_segments too small: the playlist must hold 3 target durations")
        self.init = fmp4.init_segment(
            sample_rate=sample_rate, channels=1, audio_specific_config=audio_specific_config
        )
        self._retained = window_segments + 2
        self._segments: list[_Segment] = []  # complete ones, oldest first
        self._current = _Segment(first_msn, 0.0)  # the segment in progress
        self._frames: list[bytes] = []  # frames of the part in progress
        self._next_decode_time = 0  # tfdt of the next frame: samples since the run began
        self._start_time: float | None = None  # wall time of the run's first sample
        self._ended = False

    # Writing

    def add(self, frame: EncodedFrame, wall_time: float) -> list[PartRef]:
        """Add one frame whose first sample was captured at ``wall_time`` (Unix seconds).

        Returns the parts this frame completed (zero or one).
        """
        if self._ended:
            raise RuntimeError("packager has ended")
        if self._start_time is None:
            self._start_time = wall_time
        if not self._frames and not self._current.parts:
            # First frame of a segment: EXT-X-PROGRAM-DATE-TIME is the wall time of its first
            # sample (section 4.4.4.6 maps the segment's first sample to that date).
            self._current.program_date_time = wall_time
        self._frames.append(frame.data)
        if len(self._frames) < self.frames_per_part:
            return []
        return [self._close_part()]

    def end(self) -> list[PartRef]:
        """Mark the stream ended: close the part and segment in progress, add EXT-X-ENDLIST.

        Returns the final part if there were frames left to make one.
        """
        if self._ended:
            return []
        refs = []
        if self._frames:
            refs.append(self._close_part())  # a short final part is allowed (section 4.4.4.9)
        if self._current.parts:
            self._close_segment()
        self._ended = True
        return refs

    def _close_part(self) -> PartRef:
        segment = self._current
        index = len(segment.parts)
        # mfhd sequence numbers only need to increase within the run (14496-12 section 8.8.5).
        sequence_number = (segment.msn - self.first_msn) * self.parts_per_segment + index + 1
        segment.parts.append(
            fmp4.fragment(
                sequence_number=sequence_number,
                base_decode_time=self._next_decode_time,
                samples=self._frames,
                sample_duration=FRAME_SAMPLES,
            )
        )
        samples = len(self._frames) * FRAME_SAMPLES
        segment.part_samples.append(samples)
        self._next_decode_time += samples
        self._frames = []
        ref = PartRef(segment.msn, index, Fraction(samples, self.sample_rate))
        if len(segment.parts) == self.parts_per_segment:
            self._close_segment()
        return ref

    def _close_segment(self) -> None:
        segment = self._current
        segment.data = b"".join(segment.parts)
        self._segments.append(segment)
        del self._segments[: -self._retained]
        self._current = _Segment(segment.msn + 1, 0.0)
        if self.on_segment is not None:
            ref = SegmentRef(
                run_id=self.run_id,
                msn=segment.msn,
                duration=Fraction(segment.samples, self.sample_rate),
                program_date_time=segment.program_date_time,
                parts=len(segment.parts),
                uri=self.segment_uri(segment.msn),
            )
            self.on_segment(ref, segment.data)

    # Reading

    @property
    def ended(self) -> bool:
        """True once ``end()`` was called: the playlist has EXT-X-ENDLIST."""
        return self._ended

    @property
    def start_time(self) -> float | None:
        """Wall time of the run's first sample (decode time 0), None before the first frame."""
        return self._start_time

    @property
    def samples(self) -> int:
        """Samples in the parts made so far: the decode time (tfdt) of the next part."""
        return self._next_decode_time

    def parts(self, msn: int) -> tuple[bytes, ...] | None:
        """The fragments of segment ``msn`` made so far (complete or in progress), oldest
        first; None if it has not begun or has expired."""
        segment = self._find(msn)
        if segment is None or not segment.parts:
            return None
        return tuple(segment.parts)

    def part(self, msn: int, index: int) -> bytes | None:
        """The fragment of part ``index`` of segment ``msn``, or None if absent or expired."""
        segment = self._find(msn)
        if segment is None or not 0 <= index < len(segment.parts):
            return None
        return segment.parts[index]

    def segment(self, msn: int) -> bytes | None:
        """The bytes of complete segment ``msn``, or None if not complete or expired."""
        segment = self._find(msn)
        return None if segment is None else segment.data

    def last_part(self) -> tuple[int, int] | None:
        """(msn, index) of the newest part, or None before the first part."""
        if self._current.parts:
            return self._current.msn, len(self._current.parts) - 1
        if self._segments:
            last = self._segments[-1]
            return last.msn, len(last.parts) - 1
        return None

    def has_part(self, msn: int, index: int | None) -> bool:
        """Whether a blocking reload for ``_HLS_msn=msn`` (and ``_HLS_part=index``) is satisfied.

        Section 6.2.5.2: without a part (``index`` None or -1), the playlist must contain segment
        ``msn`` or a later one, complete; with a part, it must contain that part or a later one.
        A part index past the last part of its segment means part 0 of the next segment.
        """
        if index is None or index < 0:
            return bool(self._segments) and self._segments[-1].msn >= msn
        last = self.last_part()
        return last is not None and last >= self._normalize(msn, index)

    def too_far(self, msn: int, index: int | None) -> bool:
        """Whether a blocking request asks too far ahead and SHOULD get a 400 (section 6.2.5.2).

        That is: ``_HLS_msn`` beyond the last segment's MSN plus two, or ``_HLS_part`` beyond the
        last part by more than the Advance Part Limit (3 / PART-TARGET parts when PART-TARGET is
        under a second, else 3). An ended stream ignores these directives, so nothing is too far.
        """
        if self._ended:
            return False
        last_segment = self._segments[-1].msn if self._segments else self.first_msn - 1
        if msn > last_segment + 2:
            return True
        if index is None or index < 0:
            return False
        limit = 3 if self.part_duration >= 1 else 3 / self.part_duration  # 14.06 for 213 ms
        last_msn, last_index = self.last_part() or (self.first_msn, -1)
        want_msn, want_index = self._normalize(msn, index)
        ahead = (want_msn - last_msn) * self.parts_per_segment + want_index - last_index
        return ahead > limit

    def playlist(self) -> str:
        """The current live media playlist (with EXT-X-ENDLIST once ended)."""
        listed = self._segments[-self.window_segments :]
        current = self._current
        media_sequence = listed[0].msn if listed else current.msn
        return render_live(
            LivePlaylist(
                map_uri=f"{self.run_id}/init.mp4",
                target_duration=self.target_duration,
                part_target=self.part_duration,
                media_sequence=media_sequence,
                discontinuity_sequence=self.discontinuity_sequence,
                segments=tuple(
                    Segment(
                        uri=self.segment_uri(s.msn),
                        duration=Fraction(s.samples, self.sample_rate),
                        program_date_time=s.program_date_time,
                        parts=self._parts(s),
                    )
                    for s in listed
                ),
                pending_parts=self._parts(current),
                pending_program_date_time=current.program_date_time if current.parts else None,
                preload_hint=self._preload_hint(),
                ended=self._ended,
            )
        )

    def bit_rates(self) -> tuple[int, int] | None:
        """(peak, average) bit rate in bits per second of the complete segments kept, as the
        multivariant playlist's BANDWIDTH and AVERAGE-BANDWIDTH want them; None before the
        first segment is complete."""
        complete = [s for s in self._segments if s.data is not None and s.samples]
        if not complete:
            return None
        rates = [len(s.data or b"") * 8 * self.sample_rate / s.samples for s in complete]
        return round(max(rates)), round(sum(rates) / len(rates))

    def part_uri(self, msn: int, index: int) -> str:
        """URI of a part, relative to the playlist."""
        return f"{self.run_id}/{msn}.{index}.m4s"

    def segment_uri(self, msn: int) -> str:
        """URI of a segment, relative to the playlist."""
        return f"{self.run_id}/{msn}.m4s"

    def _preload_hint(self) -> str | None:
        # Section 6.2.6: the next part is hinted so clients can request it before it exists.
        if self._ended:
            return None
        return self.part_uri(self._current.msn, len(self._current.parts))

    def _parts(self, segment: _Segment) -> tuple[Part, ...]:
        return tuple(
            Part(self.part_uri(segment.msn, i), Fraction(samples, self.sample_rate))
            for i, samples in enumerate(segment.part_samples)
        )

    def _find(self, msn: int) -> _Segment | None:
        if msn == self._current.msn:
            return self._current
        if self._segments:
            position = msn - self._segments[0].msn  # segments are consecutive
            if 0 <= position < len(self._segments):
                return self._segments[position]
        return None

    def _normalize(self, msn: int, index: int) -> tuple[int, int]:
        """Section 6.2.5.2: a part index past the segment's last part is part 0 of the next."""
        segment = self._find(msn)
        if segment is not None and segment.data is not None:  # complete
            parts = len(segment.parts)
        else:
            parts = self.parts_per_segment
        return (msn + 1, 0) if index >= parts else (msn, index)
