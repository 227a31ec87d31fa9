"""What an independent player's output says about how it played: continuity and latency.

A player here reports, for each buffer (or frame) it delivered, the wall time it did and the
buffer's media timestamp and duration. The node's media timestamps count samples from the
run's first sample (the fMP4 decode time), so ``wall − (run start + timestamp)`` is how far
behind live that buffer came out.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Delivered:
    """One buffer: when the player delivered it, and its media time and length (seconds)."""

    wall: float
    media: float
    duration: float


def gaps(buffers: list[Delivered]) -> list[float]:
    """Media time missing (or repeated, negative) between consecutive buffers."""
    return [
        after.media - (before.media + before.duration)
        for before, after in itertools.pairwise(buffers)
    ]


def latencies(buffers: list[Delivered], run_start: float) -> list[float]:
    """Seconds behind live of each buffer when the player delivered it."""
    return [buffer.wall - (run_start + buffer.media) for buffer in buffers]


def summary(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f} s"
