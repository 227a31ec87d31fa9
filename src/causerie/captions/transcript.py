"""Caption lines placed on a recording's timeline: the cues of the replay's transcript.

A line carries program time (wall-clock seconds, lines.py); a replay plays its segments back
to back, each starting at its recorded EXT-X-PROGRAM-DATE-TIME. A line's time in the replay is
the offset of the segment that holds it plus how far into that segment it is. A line in a gap
(a lost segment, the time between two runs) goes to the start of the next segment; one after
the last segment is dropped, one before the first starts at 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .lines import CaptionLine
from .webvtt import Cue

__all__ = ["Span", "place"]


@dataclass(frozen=True, slots=True)
class Span:
    """One recorded segment: it starts `offset` seconds into the replay, holds the program
    from `program_date_time` for `duration` seconds."""

    program_date_time: float
    offset: float
    duration: float


def _offset(at: float, spans: Sequence[Span]) -> float | None:
    for span in spans:
        if at < span.program_date_time:
            return span.offset  # in a gap before this segment
        if at < span.program_date_time + span.duration:
            return span.offset + (at - span.program_date_time)
    return None


def place(lines: Sequence[CaptionLine], spans: Sequence[Span]) -> list[Cue]:
    """The cues of `lines` on the replay's timeline (spans in replay order), in time order."""
    if not spans:
        return []
    last = spans[-1]
    replay_end = last.offset + last.duration
    cues = []
    for line in sorted(lines, key=lambda line: line.start):
        start = _offset(line.start, spans)
        if start is None:
            continue
        end = _offset(line.end, spans)
        end = replay_end if end is None else end
        cues.append(Cue(start, max(end, start), line.text))
    return cues
