"""A caption line: the words of one utterance and the media time they belong to.

Times are program time as wall-clock Unix seconds: the same clock as the live playlist's
EXT-X-PROGRAM-DATE-TIME and the DASH timeline (media/pipeline.py maps every program sample to
one), so a page shows a line when what it plays reaches `start`, whatever its delay behind
live. The recorder keeps the lines of a space beside its recording, one JSON object a line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["CAPTIONS_FILE", "CaptionLine", "parse_lines"]

CAPTIONS_FILE = "captions.jsonl"
"""The lines of a space, in its recording directory (media/recorder.py's layout)."""
MAX_TEXT = 1000
"""Characters of one line kept (a runaway decode repeats itself)."""


@dataclass(frozen=True, slots=True)
class CaptionLine:
    """What was said between `start` and `end` (program time, Unix seconds)."""

    start: float
    end: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """The line as a live event's data and as a stored line."""
        return {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text}

    @classmethod
    def from_dict(cls, data: Any) -> CaptionLine | None:
        """A line from its dict form; None if it is not one (a torn or foreign line)."""
        if not isinstance(data, dict):
            return None
        start, end, text = data.get("start"), data.get("end"), data.get("text")
        if not (
            isinstance(start, int | float)
            and isinstance(end, int | float)
            and isinstance(text, str)
            and math.isfinite(start)
            and math.isfinite(end)
            and end >= start
        ):
            return None
        text = " ".join(text.split())[:MAX_TEXT]
        return cls(float(start), float(end), text) if text else None


def parse_lines(text: str) -> list[CaptionLine]:
    """The well-formed lines of a captions file, in time order (bad lines skipped)."""
    lines: list[CaptionLine] = []
    for raw in text.splitlines():
        try:
            line = CaptionLine.from_dict(json.loads(raw))
        except ValueError:
            continue
        if line is not None:
            lines.append(line)
    return sorted(lines, key=lambda line: line.start)
