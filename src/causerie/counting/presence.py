"""Who is listening now: listeners heartbeat, and we count distinct ids per time bucket.

Time is cut into buckets of one heartbeat interval. A listener who heartbeats every interval
appears in the current bucket or the one before it, so "listening now" is the distinct count
of the union of those two buckets: someone who stops is gone within two intervals. Every
bucket is a HyperLogLog, so the cost per listener is one hash and one register update, and the
memory per space is a few buckets of 16 KiB whatever the audience. The Redis implementation
(several nodes) does the same with PFADD/PFCOUNT on keys that expire.
"""

from __future__ import annotations

from typing import Protocol

from .hyperloglog import HyperLogLog

HEARTBEAT_INTERVAL = 15.0
"""Seconds between a listener's heartbeats."""


class Presence(Protocol):
    """Counts listeners seen recently."""

    async def seen(self, space_id: str, listener_id: str, now: float) -> None:
        """Record that `listener_id` is listening to `space_id` at `now` (unix seconds)."""

    async def listening_now(self, space_id: str, now: float) -> int:
        """Distinct listeners seen within the last heartbeat window."""

    async def close(self) -> None:
        """Send what is batched and let go of what is held."""


class LocalPresence:
    """`Presence` in this process's memory (the embedded default)."""

    def __init__(self, interval: float = HEARTBEAT_INTERVAL) -> None:
        self.interval = interval
        self._buckets: dict[str, dict[int, HyperLogLog]] = {}
        # Counting merges two 16 KiB sketches and pages poll the count often: it is computed
        # again only when a sketch changed or a second passed (buckets move with time).
        self._counted: dict[str, tuple[int, int]] = {}

    def _bucket(self, now: float) -> int:
        return int(now // self.interval)

    async def seen(self, space_id: str, listener_id: str, now: float) -> None:
        current = self._bucket(now)
        buckets = self._buckets.setdefault(space_id, {})
        sketch = buckets.get(current)
        if sketch is None:
            sketch = buckets[current] = HyperLogLog()
            for old in [b for b in buckets if b < current - 1]:
                del buckets[old]
        if sketch.add(listener_id):
            self._counted.pop(space_id, None)

    async def listening_now(self, space_id: str, now: float) -> int:
        second = int(now)
        cached = self._counted.get(space_id)
        if cached is not None and cached[0] == second:
            return cached[1]
        current = self._bucket(now)
        buckets = self._buckets.get(space_id, {})
        recent = [buckets[b] for b in (current - 1, current) if b in buckets]
        if not recent:
            count = 0
        elif len(recent) == 1:
            count = recent[0].count()
        else:
            count = HyperLogLog.union(recent).count()
        self._counted[space_id] = (second, count)
        return count

    async def close(self) -> None:
        """Nothing is batched in memory: nothing to do."""

    def forget(self, space_id: str) -> None:
        """Drop a space's buckets (after it ended)."""
        self._buckets.pop(space_id, None)
        self._counted.pop(space_id, None)
