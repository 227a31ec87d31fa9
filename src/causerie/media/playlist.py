"""Rendering of HLS media playlists (RFC 8216bis, "HTTP Live Streaming 2nd Edition").

Pure functions of plain data: the packager decides what is in the window, this module decides how
it is written down and applies the spec's presentation rules (which parts are still listed, how
durations are rounded, which tags appear). Three renderings:

- ``render_live()``: a Low-Latency HLS live playlist, with parts and a preload hint; when
  ``ended`` is set, the final live playlist with EXT-X-ENDLIST.
- ``render_vod()``: a complete on-demand playlist (for replays), with no parts.

Durations are ``Fraction`` seconds (AAC frames are 1024/48000 s: floats would accumulate error),
wall-clock times are Unix seconds as ``float``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from fractions import Fraction

__all__ = [
    "LivePlaylist",
    "Part",
    "Segment",
    "format_program_date_time",
    "format_seconds",
    "render_live",
    "render_vod",
    "target_duration_for",
]

# Section 8: EXT-X-MAP in a Media Playlist without EXT-X-I-FRAMES-ONLY requires version 6, and no
# tag we write needs more (the LL-HLS tags carry no version requirement; version 9 is only for
# EXT-X-SKIP, which we do not produce). Section 6.2.1: the version SHOULD NOT be higher than needed.
VERSION = 6

# Section 6.2.2: EXT-X-PART tags SHOULD be removed once they are more than three Target
# Durations from the end of the Playlist.
PART_TARGET_DURATIONS_LISTED = 3

# Section 4.4.3.8: PART-HOLD-BACK MUST be at least twice the Part Target Duration and SHOULD be
# at least three times it.
PART_HOLD_BACK_PARTS = 3

_DECIMALS = 5  # 10 µs: finer than any sample-accurate difference a player acts on


@dataclass(frozen=True, slots=True)
class Part:
    """A Partial Segment (section 4.4.4.9)."""

    uri: str
    duration: Fraction
    independent: bool = True


@dataclass(frozen=True, slots=True)
class Segment:
    """A complete Media Segment; ``parts`` are its Partial Segments, oldest first (may be empty)."""

    uri: str
    duration: Fraction
    program_date_time: float | None = None
    parts: tuple[Part, ...] = ()
    discontinuity: bool = False


@dataclass(frozen=True, slots=True)
class LivePlaylist:
    """Everything a live LL-HLS media playlist says, in the order the packager holds it.

    ``segments`` are the complete segments of the window; ``pending_parts`` are the parts of the
    segment in progress (its "Parent Segment" has no URI yet), whose first sample is at
    ``pending_program_date_time``; ``preload_hint`` is the URI of the next part to be produced.
    """

    map_uri: str
    target_duration: int
    part_target: Fraction
    media_sequence: int
    segments: tuple[Segment, ...]
    pending_parts: tuple[Part, ...] = ()
    pending_program_date_time: float | None = None
    preload_hint: str | None = None
    discontinuity_sequence: int = 0
    ended: bool = False


def target_duration_for(segment_duration: Fraction) -> int:
    """EXT-X-TARGETDURATION for segments of this nominal duration.

    Section 4.4.3.1 only requires each EXTINF, rounded to the nearest integer, to be at most the
    target; rounding *up* satisfies that for every segment and also suits older players that
    compare without rounding.
    """
    return max(1, math.ceil(segment_duration))


def format_seconds(seconds: Fraction, *, round_up: bool = False) -> str:
    """A decimal-floating-point value with at most 5 decimals, trailing zeros removed.

    ``round_up`` is for upper bounds (PART-TARGET, PART-HOLD-BACK): a bound rounded up stays
    above every duration rounded to nearest, which keeps "part duration <= PART-TARGET" true in the
    written playlist, not just in exact arithmetic.
    """
    exact = Decimal(seconds.numerator) / Decimal(seconds.denominator)
    mode = ROUND_CEILING if round_up else ROUND_HALF_EVEN
    text = f"{exact.quantize(Decimal(1).scaleb(-_DECIMALS), rounding=mode):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_program_date_time(unix_time: float) -> str:
    """ISO 8601 date-time in UTC with milliseconds, as EXT-X-PROGRAM-DATE-TIME wants (4.4.4.6)."""
    moment = datetime.fromtimestamp(unix_time, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_live(playlist: LivePlaylist) -> str:
    """A live (or ended live) LL-HLS media playlist."""
    p = playlist
    part_target = format_seconds(p.part_target, round_up=True)
    # Three times the PART-TARGET *as written*, then up to the next whole millisecond: the margin
    # keeps "PART-HOLD-BACK >= 3 x PART-TARGET" true for clients comparing binary floats.
    hold_back = (PART_HOLD_BACK_PARTS * Decimal(part_target)).quantize(
        Decimal("0.001"), rounding=ROUND_FLOOR
    ) + Decimal("0.001")
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{p.target_duration}",
        f"#EXT-X-PART-INF:PART-TARGET={part_target}",
        f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={hold_back}",
        f"#EXT-X-MEDIA-SEQUENCE:{p.media_sequence}",
    ]
    if p.discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{p.discontinuity_sequence}")
    # Audio only, every AAC frame a sync sample: each segment decodes without the previous one.
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    lines.append(f'#EXT-X-MAP:URI="{p.map_uri}"')

    # Which segments still list their parts: those that start within three Target Durations of
    # the end of the Playlist (the end includes the parts of the segment in progress).
    end = sum((s.duration for s in p.segments), Fraction(0))
    end += sum((part.duration for part in p.pending_parts), Fraction(0))
    horizon = end - PART_TARGET_DURATIONS_LISTED * p.target_duration
    start = Fraction(0)
    for segment in p.segments:
        lines.extend(_segment_head(segment.program_date_time, segment.discontinuity))
        if start >= horizon:
            lines.extend(_part_line(part) for part in segment.parts)
        lines.append(f"#EXTINF:{format_seconds(segment.duration)},")
        lines.append(segment.uri)
        start += segment.duration

    if not p.ended:
        if p.pending_parts:
            # Tags applying to the Parent Segment MUST come before its first EXT-X-PART (4.4.4.9).
            lines.extend(_segment_head(p.pending_program_date_time, False))
            lines.extend(_part_line(part) for part in p.pending_parts)
        if p.preload_hint is not None:
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{p.preload_hint}"')
    else:
        # 4.4.5.3: a Playlist with EXT-X-ENDLIST MUST NOT contain EXT-X-PRELOAD-HINT; the packager
        # closes the segment in progress before ending, so there are no pending parts either.
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


AAC_LC = "mp4a.40.2"
"""RFC 6381 codec string of AAC-LC in MP4, what the encoder makes (for CODECS attributes)."""


def render_multivariant(
    media_uri: str, *, bandwidth: int, average_bandwidth: int, codecs: str = AAC_LC
) -> str:
    """A multivariant playlist with one audio-only variant (RFC 8216bis section 4.4.6.2).

    Apple's HLS authoring rules ask for one, with CODECS and BANDWIDTH, so that players know
    what they will get before fetching any media: without it Shaka Player guesses the codec
    of a bare media playlist and fails to append AAC-in-fMP4 parts. `bandwidth` is the peak
    segment bit rate (bits per second), `average_bandwidth` the average one.
    """
    if bandwidth <= 0 or average_bandwidth <= 0:
        raise ValueError("bandwidths must be positive")
    return (
        "#EXTM3U\n"
        "#EXT-X-VERSION:6\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},AVERAGE-BANDWIDTH={average_bandwidth},"
        f'CODECS="{codecs}"\n'
        f"{media_uri}\n"
    )


def render_vod(
    *,
    map_uri: str,
    segments: Sequence[Segment],
    target_duration: int | None = None,
    media_sequence: int = 0,
    discontinuity_sequence: int = 0,
) -> str:
    """A complete on-demand playlist (EXT-X-PLAYLIST-TYPE:VOD, EXT-X-ENDLIST), without parts.

    A replay that spans several encoder runs marks the first segment of each new run with
    ``discontinuity`` (timestamps restart, section 4.4.4.3). Every segment is assumed to share
    ``map_uri``; a recorder mixing runs with different init sections would need one EXT-X-MAP per
    run (not needed yet: all runs use the same encoder settings, but the init bytes carry no
    run-specific data either).
    """
    if target_duration is None:
        longest = max((s.duration for s in segments), default=Fraction(1))
        target_duration = target_duration_for(longest)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}",
    ]
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    lines.append(f'#EXT-X-MAP:URI="{map_uri}"')
    for segment in segments:
        lines.extend(_segment_head(segment.program_date_time, segment.discontinuity))
        lines.append(f"#EXTINF:{format_seconds(segment.duration)},")
        lines.append(segment.uri)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _segment_head(program_date_time: float | None, discontinuity: bool) -> list[str]:
    lines = []
    if discontinuity:
        lines.append("#EXT-X-DISCONTINUITY")
    if program_date_time is not None:
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_program_date_time(program_date_time)}")
    return lines


def _part_line(part: Part) -> str:
    independent = ",INDEPENDENT=YES" if part.independent else ""
    return f'#EXT-X-PART:DURATION={format_seconds(part.duration)},URI="{part.uri}"{independent}'
