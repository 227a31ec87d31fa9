"""Honest audience numbers for a space, from joins and heartbeats, at a hash per event.

What is counted (docs/numbers.md has the exact definitions, the errors and the costs):

- *listening now*: distinct listeners seen in the current heartbeat bucket or the one before it
  (the same window as `LocalPresence`);
- *samples*: when a heartbeat bucket `k` is over, "listening now" at its end, i.e. the distinct
  count of buckets `k-1` and `k`. Every other number over time is made of these samples:
  - *peak*: the largest sample of the program, and when it was taken;
  - *average minute audience* (AMA): each minute of the program is credited with the mean of
    its samples; the AMA is the mean of those credits over the minutes of the program;
- *unique listeners*: a HyperLogLog of every listener id ever seen;
- *joins attempted / admitted*: counters, in total and per minute;
- *replay plays*: distinct (client, UTC day) pairs that fetched the replay playlist, apart from
  live listening.

The state is made of HyperLogLog registers and counters only, so it merges (register-wise
maximum, sums) and maps onto Redis (PFADD/PFCOUNT, INCR). Nothing is kept per listener: a
heartbeat costs one 64-bit hash and two register updates, whatever the audience. Samples are
taken lazily: the first event or read after a bucket ends closes it, so the numbers are the
same whether a timer samples or not. Everything here is pure: the caller passes the time in.
`AudienceStats` (audience_stats.py) is the protocol a node keeps them through: `LocalStats`
(local_stats.py, saved to SQLite) or `RedisStats` (redis_stats.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .hyperloglog import PRECISION, REGISTERS, HyperLogLog
from .presence import HEARTBEAT_INTERVAL

log = logging.getLogger(__name__)

MINUTE = 60
DAY = 86_400
_REST_BITS = 64 - PRECISION
_REST_MASK = (1 << _REST_BITS) - 1

# Counters kept per minute, in this order (a list per minute is cheaper than an object).
_ATTEMPTS, _JOINS, _HEARTBEATS = 0, 1, 2


def position(item: str) -> tuple[int, int]:
    """The HyperLogLog register and rank of `item`: what `HyperLogLog.add` computes.

    One hash serves every sketch a heartbeat updates, and sketches built here merge with those
    built by `HyperLogLog` (the same hash and layout).
    """
    h = int.from_bytes(hashlib.blake2b(item.encode(), digest_size=8).digest(), "big")
    return h >> _REST_BITS, _REST_BITS - (h & _REST_MASK).bit_length() + 1


def client_key(ip: str, user_agent: str) -> str:
    """An opaque key for one device (address and browser), for counting replay plays.

    The address is not kept anywhere: only this hash goes into a HyperLogLog, which keeps
    nothing of it but a register rank.
    """
    return hashlib.blake2b(f"{ip}\n{user_agent}".encode(), digest_size=16).hexdigest()


def _registers() -> bytearray:
    # A bytearray, not a numpy array: indexing one from Python costs a few tens of ns.
    return bytearray(REGISTERS)


def _count(*sketches: bytearray | None) -> int:
    """The distinct count of the union of `sketches` (None is an empty sketch)."""
    present = [np.frombuffer(s, dtype=np.uint8) for s in sketches if s is not None]
    if not present:
        return 0
    registers = present[0]
    for other in present[1:]:
        registers = np.maximum(registers, other)
    return HyperLogLog(registers).count()


def _merge_into(mine: bytearray | None, theirs: bytearray | None) -> bytearray | None:
    if theirs is None:
        return mine
    if mine is None:
        return bytearray(theirs)
    target = np.frombuffer(mine, dtype=np.uint8)
    np.maximum(target, np.frombuffer(theirs, dtype=np.uint8), out=target)
    return mine


@dataclass(frozen=True)
class MinuteRow:
    """One minute of the program, for the per-minute series (CSV and chart)."""

    start: float
    """The minute's start (unix seconds, a multiple of 60)."""
    listening_end: int
    """Listening now at the minute's end (its last sample taken so far)."""
    average: float
    """The minute's AMA credit: the mean of its samples."""
    peak: int
    """The largest of its samples."""
    joins: int
    join_attempts: int
    heartbeats: int


@dataclass(frozen=True)
class Summary:
    """Every number of one space at one moment."""

    listening_now: int
    peak: int | None
    """None before the program starts (no samples yet)."""
    peak_at: float | None
    """When the peak sample was taken (unix seconds); None if there was nobody."""
    average_minute_audience: float | None
    unique_listeners: int
    join_attempts: int
    joins: int
    heartbeats: int
    replay_plays: int
    replay_requests: int
    minutes: list[MinuteRow] = field(default_factory=list)


class SpaceStats:
    """The audience state of one space: sketches, counters and samples. Not thread-safe."""

    __slots__ = (
        "_bucket",
        "_current",
        "_minute",
        "_minute_counts",
        "_previous",
        "heartbeats",
        "interval",
        "join_attempts",
        "joins",
        "minute_counts",
        "per_minute",
        "replay",
        "replay_requests",
        "samples",
        "unique",
    )

    def __init__(self, interval: float = HEARTBEAT_INTERVAL) -> None:
        per_minute = MINUTE / interval
        if interval <= 0 or per_minute != int(per_minute):
            raise ValueError(f"the heartbeat interval must divide a minute, not {interval}")
        self.interval = interval
        self.per_minute = int(per_minute)
        self.unique: bytearray | None = None
        self.replay: bytearray | None = None
        self.replay_requests = 0
        self.join_attempts = 0
        self.joins = 0
        self.heartbeats = 0
        self.samples: dict[int, int] = {}
        """Bucket index -> listening now at the bucket's end; absent means 0."""
        self.minute_counts: dict[int, list[int]] = {}
        """Minute index (unix seconds // 60) -> [attempts, joins, heartbeats]."""
        self._bucket: int | None = None  # the open bucket's index
        self._current: bytearray | None = None  # its sketch (None: nobody yet)
        self._previous: bytearray | None = None  # the sketch of the bucket before it
        self._minute = -1
        self._minute_counts: list[int] = [0, 0, 0]

    # -- recording (the hot paths) --------------------------------------------------------

    def join_attempted(self, now: float) -> None:
        """A join request reached the space (it may still be refused)."""
        self.join_attempts += 1
        self._count_in_minute(now, _ATTEMPTS)

    def joined(self, listener_id: str, now: float) -> None:
        """A listener token was issued: the listener is seen, and a join counted."""
        self.joins += 1
        self._count_in_minute(now, _JOINS)
        self._seen(listener_id, now)

    def heartbeat(self, listener_id: str, now: float) -> None:
        """A listener said they are still listening."""
        self.heartbeats += 1
        self._count_in_minute(now, _HEARTBEATS)
        self._seen(listener_id, now)

    def replay_listen(self, client: str, now: float) -> None:
        """A replay playlist was fetched by `client` (see `client_key`)."""
        self.replay_requests += 1
        index, rank = position(f"{int(now // DAY)}:{client}")
        if self.replay is None:
            self.replay = _registers()
        if rank > self.replay[index]:
            self.replay[index] = rank

    def _count_in_minute(self, now: float, which: int) -> None:
        minute = int(now // MINUTE)
        if minute != self._minute:
            counts = self.minute_counts.get(minute)
            if counts is None:
                counts = self.minute_counts[minute] = [0, 0, 0]
            self._minute, self._minute_counts = minute, counts
        self._minute_counts[which] += 1

    def _seen(self, listener_id: str, now: float) -> None:
        index, rank = position(listener_id)
        bucket = int(now // self.interval)
        if bucket != self._bucket:
            self.advance(now)
        current = self._current
        if current is None:
            current = self._current = _registers()
        if rank > current[index]:
            current[index] = rank
        unique = self.unique
        if unique is None:
            unique = self.unique = _registers()
        if rank > unique[index]:
            unique[index] = rank

    # -- buckets and samples ----------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Close the buckets that ended by `now`, taking their samples.

        A bucket's sample needs only its sketch and the one before, which are kept until it is
        closed, so closing late (at the next event or read) gives the same sample as closing on
        time. Events stamped before the open bucket (a clock step) count in the open bucket.
        """
        bucket = int(now // self.interval)
        open_bucket = self._bucket
        if open_bucket is None:
            self._bucket = bucket
            return
        if bucket <= open_bucket:
            return
        self._sample(open_bucket, _count(self._previous, self._current))
        if bucket == open_bucket + 1:
            self._previous, self._current = self._current, None
        else:
            # The bucket after was empty: its window holds only the closed bucket's listeners;
            # every later one up to `bucket` is empty, and a sample of 0 is not stored.
            self._sample(open_bucket + 1, _count(self._current))
            self._previous = self._current = None
        self._bucket = bucket

    def _sample(self, bucket: int, listeners: int) -> None:
        if listeners:
            self.samples[bucket] = listeners
        else:
            self.samples.pop(bucket, None)

    def listening_now(self, now: float) -> int:
        """Distinct listeners seen in the current bucket or the one before it."""
        self.advance(now)
        if self._bucket is None:
            return 0
        return _count(self._previous, self._current)

    # -- reading ----------------------------------------------------------------------------

    def program_buckets(
        self, now: float, started_at: float | None, ended_at: float | None
    ) -> range:
        """The buckets of the program whose samples are taken by `now`.

        Bucket k (from k·interval to (k+1)·interval) belongs to the program if it ends after
        the start and begins before the end; it is sampled once it is over.
        """
        if started_at is None:
            return range(0)
        first = int(started_at // self.interval)
        last = int(now // self.interval) - 1  # the last bucket that is over
        if ended_at is not None:
            last = min(last, math.ceil(ended_at / self.interval) - 1)
        return range(first, last + 1)

    def summarize(
        self, now: float, started_at: float | None = None, ended_at: float | None = None
    ) -> Summary:
        """Every number at `now`, for a program that started (and maybe ended) at these times.

        Scheduled spaces (no start) have counts and unique listeners but no peak, no AMA and
        no series: those are about the program.
        """
        self.advance(now)
        buckets = self.program_buckets(now, started_at, ended_at)
        rows: list[MinuteRow] = []
        peak: int | None = None
        peak_at: float | None = None
        if len(buckets):
            peak = 0
            samples = self.samples
            per_minute = self.per_minute
            minute = buckets.start // per_minute
            group: list[int] = []
            for bucket in buckets:
                if bucket // per_minute != minute:
                    rows.append(self._row(minute, group))
                    minute, group = bucket // per_minute, []
                value = samples.get(bucket, 0)
                group.append(value)
                if value > peak:
                    peak, peak_at = value, (bucket + 1) * self.interval
            rows.append(self._row(minute, group))
        average = sum(r.average for r in rows) / len(rows) if rows else None
        return Summary(
            listening_now=self.listening_now(now),
            peak=peak,
            peak_at=peak_at,
            average_minute_audience=average,
            unique_listeners=_count(self.unique),
            join_attempts=self.join_attempts,
            joins=self.joins,
            heartbeats=self.heartbeats,
            replay_plays=_count(self.replay),
            replay_requests=self.replay_requests,
            minutes=rows,
        )

    def _row(self, minute: int, samples: list[int]) -> MinuteRow:
        counts = self.minute_counts.get(minute, (0, 0, 0))
        return MinuteRow(
            start=float(minute * MINUTE),
            listening_end=samples[-1],
            average=sum(samples) / len(samples),
            peak=max(samples),
            joins=counts[_JOINS],
            join_attempts=counts[_ATTEMPTS],
            heartbeats=counts[_HEARTBEATS],
        )

    # -- snapshots ----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The whole state, compressed (mostly empty registers compress to a few hundred bytes)."""
        return encode_state(self.state())

    def state(self) -> dict[str, Any]:
        """A copy of the state, cheap to take (the sketches are copied as bytes): the costly
        encoding (`encode_state`) can then run in another thread."""
        return {
            "interval": self.interval,
            "unique": _copy(self.unique),
            "replay": _copy(self.replay),
            "current": _copy(self._current),
            "previous": _copy(self._previous),
            "bucket": self._bucket,
            "replay_requests": self.replay_requests,
            "join_attempts": self.join_attempts,
            "joins": self.joins,
            "heartbeats": self.heartbeats,
            "samples": list(self.samples.items()),
            "minute_counts": [(minute, list(c)) for minute, c in self.minute_counts.items()],
        }

    @classmethod
    def from_bytes(cls, data: bytes) -> SpaceStats:
        """The state `to_bytes` saved."""
        state = json.loads(zlib.decompress(data))
        stats = cls(state["interval"])
        stats.unique = _unb64(state["unique"])
        stats.replay = _unb64(state["replay"])
        stats._current = _unb64(state["current"])
        stats._previous = _unb64(state["previous"])
        stats._bucket = state["bucket"]
        stats.replay_requests = state["replay_requests"]
        stats.join_attempts = state["join_attempts"]
        stats.joins = state["joins"]
        stats.heartbeats = state["heartbeats"]
        stats.samples = {int(k): int(v) for k, v in state["samples"]}
        stats.minute_counts = {int(k): list(v) for k, v in state["minute_counts"]}
        return stats

    # -- merging ----------------------------------------------------------------------------

    def merge(self, other: SpaceStats) -> None:
        """Add what `other` counted (another node's state of the same space).

        Sketches are unions and counters sums, so unique listeners, joins and the open buckets
        merge exactly. Samples already taken on each side are counts and cannot be united:
        the larger of the two is kept, a lower bound when the audiences overlap. (With shared
        state, as in Redis, every node adds to the same bucket sketches and samples are taken
        once from them, so nothing needs merging.)
        """
        if other.interval != self.interval:
            raise ValueError("cannot merge stats kept with different heartbeat intervals")
        if other._bucket is not None:
            theirs = other._bucket * self.interval
            if self._bucket is not None and self._bucket < other._bucket:
                self.advance(theirs)
            elif self._bucket is None:
                self._bucket = other._bucket
        if other._bucket is not None and other._bucket == self._bucket:
            self._current = _merge_into(self._current, other._current)
            self._previous = _merge_into(self._previous, other._previous)
        elif (
            other._bucket is not None
            and self._bucket is not None
            and other._bucket == self._bucket - 1
        ):
            self._previous = _merge_into(self._previous, other._current)
        self.unique = _merge_into(self.unique, other.unique)
        self.replay = _merge_into(self.replay, other.replay)
        self.replay_requests += other.replay_requests
        self.join_attempts += other.join_attempts
        self.joins += other.joins
        self.heartbeats += other.heartbeats
        for bucket, value in other.samples.items():
            if value > self.samples.get(bucket, 0):
                self.samples[bucket] = value
        for minute, counts in other.minute_counts.items():
            mine = self.minute_counts.setdefault(minute, [0, 0, 0])
            for i, value in enumerate(counts):
                mine[i] += value
        self._minute = -1  # the cached list may have been replaced


def _copy(sketch: bytearray | None) -> bytes | None:
    return None if sketch is None else bytes(sketch)


def encode_state(state: dict[str, Any]) -> bytes:
    """`SpaceStats.state()` as compressed JSON (what `SpaceStats.from_bytes` reads)."""
    sketches = ("unique", "replay", "current", "previous")
    encoded = {key: (_b64(value) if key in sketches else value) for key, value in state.items()}
    return zlib.compress(json.dumps(encoded, separators=(",", ":")).encode())


def _b64(sketch: bytes | None) -> str | None:
    return None if sketch is None else base64.b64encode(sketch).decode()


def _unb64(text: str | None) -> bytearray | None:
    if text is None:
        return None
    sketch = bytearray(base64.b64decode(text))
    if len(sketch) != REGISTERS:
        raise ValueError("a saved sketch has the wrong size")
    return sketch


__all__ = ["MinuteRow", "SpaceStats", "Summary", "client_key", "encode_state", "position"]
