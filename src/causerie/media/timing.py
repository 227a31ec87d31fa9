"""How on time a node's media loops run: what `/metrics` reports about them.

Every pipeline of the node reports to one `MediaTiming` (media/broadcasts.py): the lateness
of each 20 ms tick (how long after its deadline the frame was mixed), each part's delay (how
long after its last audio sample it was ready), and the frames skipped after a stall. The
counters only grow, across every space the node ever ran, as Prometheus counters must.

A part is *late* when it is ready more than one part duration after its audio ended: a
listener following the playlist then waits for it beyond the moment the next one was due
(docs/operations.md turns that into an alert). Normally a part is ready 20-60 ms after its
audio ends (the encoder's look-ahead).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

__all__ = ["LATENESS_BOUNDS", "MediaTiming"]

LATENESS_BOUNDS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2133, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds, inclusive) of the lateness histogram's buckets; 0.2133 is one part
(10 AAC frames at 48 kHz), the bound docs/operations.md alerts on."""


@dataclass
class MediaTiming:
    """Counters of the timeliness of every pipeline of one node (no clock: told the figures)."""

    bounds: tuple[float, ...] = LATENESS_BOUNDS
    lateness_counts: list[int] = field(default_factory=list)
    """Ticks per bucket of lateness (not cumulative), the last one past every bound."""
    lateness_sum: float = 0.0
    ticks: int = 0
    parts: int = 0
    parts_late: int = 0
    frames_skipped: int = 0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError("bounds must be increasing")
        if not self.lateness_counts:
            self.lateness_counts = [0] * (len(self.bounds) + 1)

    def tick(self, late: float) -> None:
        """One frame mixed `late` seconds after its deadline (0 when on time)."""
        late = max(0.0, late)
        # Prometheus buckets are `le` (less or equal): the first bound >= late.
        self.lateness_counts[bisect_left(self.bounds, late)] += 1
        self.lateness_sum += late
        self.ticks += 1

    def part_ready(self, delay: float, duration: float) -> None:
        """One part ready `delay` seconds after its last audio sample; it lasts `duration`."""
        self.parts += 1
        if delay > duration:
            self.parts_late += 1

    def skipped(self, frames: int) -> None:
        """Frames of audio dropped because the loop stalled for more than a second."""
        self.frames_skipped += frames
