"""WebVTT (W3C "WebVTT: The Web Video Text Tracks Format") and plain text from cues.

A cue's text is escaped as the format asks (section 4.2.2: `&`, `<` and `>` are written as
character references, so no text can open a tag or end a timing line with `-->`), and kept on
one line (a blank line would end the cue).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Cue", "format_timestamp", "render_text", "render_webvtt"]


@dataclass(frozen=True, slots=True)
class Cue:
    """Text shown from `start` to `end`, seconds from the start of the media."""

    start: float
    end: float
    text: str


def format_timestamp(seconds: float) -> str:
    """`HH:MM:SS.mmm` (section 4.2.1: hours are at least two digits)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _escape(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_webvtt(cues: Sequence[Cue], timestamp_map: str | None = None) -> str:
    """A WebVTT file of `cues`; `timestamp_map`: an `X-TIMESTAMP-MAP` header value, which HLS
    uses to put the cues on the media's timeline (RFC 8216 section 3.5)."""
    out = ["WEBVTT"]
    if timestamp_map:
        out.append(f"X-TIMESTAMP-MAP={timestamp_map}")
    out.append("")
    for number, cue in enumerate(cues, 1):
        end = max(cue.end, cue.start + 0.001)  # a cue ends after it starts (section 4.2.1)
        out += [
            str(number),
            f"{format_timestamp(cue.start)} --> {format_timestamp(end)}",
            _escape(cue.text),
            "",
        ]
    return "\n".join(out) + "\n"


def render_text(cues: Sequence[Cue]) -> str:
    """The transcript as plain text: one line per cue, after its time (`[MM:SS]`)."""
    lines = []
    for cue in cues:
        minutes, seconds = divmod(max(0, int(cue.start)), 60)
        lines.append(f"[{minutes:02d}:{seconds:02d}] {' '.join(cue.text.split())}")
    return "\n".join(lines) + ("\n" if lines else "")
