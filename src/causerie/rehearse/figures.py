"""The rehearsal's figures: what is recorded, and how snapshots become a summary and series.

Listeners record their figures as Locust request events of the type `figure` (the value in
milliseconds as the "response time"), next to the real HTTP requests. Locust then counts them,
keeps their histograms and, in distributed mode, sums them from every worker on the master, so
this module only reads cumulative snapshots of those statistics (pure: no Locust import).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

FIGURE = "figure"
"""Locust request type of the figures (not HTTP requests)."""

TIME_TO_FIRST_AUDIO = "time to first audio"
"""One per visit: from its start (before the details request) to the first chunk's last byte."""
JOIN_ADMITTED = "join admitted"
"""One per admitted join; the value is the time from the visit's start (waits included)."""
PART_RECEIVED = "part received"
"""One per part received whole: a CMAF chunk (`moof` + `mdat`, ~213 ms, the LL-HLS part's
bytes) of a streamed LL-DASH segment; the value is 0 (the count is the figure)."""
PART_LATE = "part late"
"""One per part that arrived after its due time (see manifest.PlayerClock); value: how late."""
PART_DELAY = "part delay"
"""One per part made while its segment was being streamed: its arrival - the end of its audio
(LL-DASH media time is wall time; needs synced clocks)."""
EVENT_DELAY = "event delay"
"""One per live event published while its feed window was being streamed: its arrival - its
publication time (`at`; needs synced clocks)."""
WAIT_IN_LINE = "wait in line"
"""One per waiting-room answer (the space is full); value: the wait the server asked for."""
RETRY_WAIT = "retry wait"
"""One per refused or failed request tried again; value: the delay waited before the retry."""

SEGMENT_REQUEST = "GET segment"
"""Locust name of the segment requests (their time: to the response's headers)."""
SEGMENT_STREAM = "GET segment (body)"
"""Locust name of a segment whose body broke off (an error only)."""
WINDOW_REQUEST = "GET feed window"
"""Locust name of the feed window requests (their time: to the response's headers)."""
WINDOW_STREAM = "GET feed window (body)"
"""Locust name of a feed window whose body broke off (an error only)."""

REFUSAL_KINDS = frozenset({"HTTP 429", "HTTP 503"})
"""Error kinds that are polite refusals (tried again after Retry-After), not breakage."""

_CATCH = re.compile(r"^CatchResponseError\((['\"])(.*)\1\)$")


def error_kind(error: object) -> str:
    """A short kind for a Locust error (an exception, or its repr from a worker): "HTTP 503",
    "ConnectionRefusedError"…"""
    if not isinstance(error, str):
        error = repr(error)
    match = _CATCH.match(error)
    if match:
        return match.group(2)
    name = error.split("(", 1)[0].strip()
    return name or error


@dataclass(frozen=True, slots=True)
class Histogram:
    """A cumulative count and Locust's histogram of values (rounded ms -> count)."""

    count: int = 0
    values: Mapping[int, int] = field(default_factory=dict)

    def minus(self, earlier: Histogram) -> Histogram:
        values = {k: v - earlier.values.get(k, 0) for k, v in self.values.items()}
        return Histogram(self.count - earlier.count, {k: v for k, v in values.items() if v > 0})


def percentile(values: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of a histogram, in its unit; None if it is empty.

    Nearest rank: the smallest value with at least ceil(q * n) values at or below it.
    """
    total = sum(values.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(values):
        seen += values[value]
        if seen >= rank:
            return float(value)
    return float(max(values))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Cumulative statistics at `at` seconds after the start."""

    at: float
    users: int
    requests: int
    """HTTP requests answered or failed (figures not included)."""
    figures: Mapping[str, Histogram]
    parts: int
    """Parts (CMAF chunks) received whole."""
    errors: Mapping[str, int]
    """Occurrences by kind."""

    def figure(self, name: str) -> Histogram:
        return self.figures.get(name, Histogram())


@dataclass(frozen=True, slots=True)
class Window:
    """What happened between two snapshots."""

    start: float
    end: float
    users: int
    joins: int
    requests: int
    parts: int
    parts_late: int
    ttfa_p50: float | None
    """Seconds, over the visits that got their first audio in this window."""
    ttfa_p99: float | None
    errors: Mapping[str, int]

    @property
    def seconds(self) -> float:
        return max(1e-9, self.end - self.start)

    @property
    def joins_per_second(self) -> float:
        return self.joins / self.seconds


def window(earlier: Snapshot, later: Snapshot) -> Window:
    """The difference between two snapshots."""
    ttfa = later.figure(TIME_TO_FIRST_AUDIO).minus(earlier.figure(TIME_TO_FIRST_AUDIO))
    p50, p99 = percentile(ttfa.values, 0.5), percentile(ttfa.values, 0.99)
    errors = {
        kind: count - earlier.errors.get(kind, 0)
        for kind, count in later.errors.items()
        if count - earlier.errors.get(kind, 0) > 0
    }
    return Window(
        start=earlier.at,
        end=later.at,
        users=later.users,
        joins=later.figure(JOIN_ADMITTED).count - earlier.figure(JOIN_ADMITTED).count,
        requests=later.requests - earlier.requests,
        parts=later.parts - earlier.parts,
        parts_late=later.figure(PART_LATE).count - earlier.figure(PART_LATE).count,
        ttfa_p50=None if p50 is None else p50 / 1000,
        ttfa_p99=None if p99 is None else p99 / 1000,
        errors=errors,
    )


def series(snapshots: Sequence[Snapshot], step: float) -> list[Window]:
    """Windows of about `step` seconds over the run (the first snapshot is the start)."""
    windows: list[Window] = []
    if not snapshots:
        return windows
    earlier = snapshots[0]
    for later in snapshots[1:]:
        if later.at - earlier.at >= step - 1e-6 or later is snapshots[-1]:
            if later.at > earlier.at:
                windows.append(window(earlier, later))
            earlier = later
    return windows


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures of a whole rehearsal."""

    target: str
    space: str | None
    listeners: int
    ramp: float
    duration: float
    elapsed: float
    peak_users: int
    joins_admitted: int
    joins_per_second_peak: float
    joins_per_second_mean: float
    """Admitted joins / the time from the start to the last admitted join's window."""
    ttfa_count: int
    ttfa_p50: float | None
    ttfa_p99: float | None
    parts: int
    parts_late: int
    part_delay_p50: float | None
    part_delay_p99: float | None
    waits_in_line: int
    retries: int
    retry_wait_min: float | None
    """Seconds: the shortest wait before a retry (at least Retry-After when one was given)."""
    retry_wait_p50: float | None
    requests: int
    errors: Mapping[str, int]
    requests_by_name: Sequence[tuple[str, int, int, float | None, float | None]] = ()
    """(name, requests, failures, p50 s, p99 s) of each kind of HTTP request."""
    listener_seconds: float = 0.0
    """Simulated listeners × seconds: the time each was on, summed."""
    event_delay_p50: float | None = None
    event_delay_p99: float | None = None

    @property
    def requests_per_listener_second(self) -> float:
        """HTTP requests per simulated listener per second, everything included."""
        return self.requests / self.listener_seconds if self.listener_seconds else 0.0

    @property
    def refused(self) -> int:
        return sum(n for kind, n in self.errors.items() if kind in REFUSAL_KINDS)

    @property
    def hard_errors(self) -> int:
        return sum(n for kind, n in self.errors.items() if kind not in REFUSAL_KINDS)

    @property
    def hard_error_ratio(self) -> float:
        return self.hard_errors / self.requests if self.requests else 0.0

    @property
    def late_ratio(self) -> float:
        return self.parts_late / self.parts if self.parts else 0.0


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def summarize(
    snapshots: Sequence[Snapshot],
    *,
    target: str,
    space: str | None,
    listeners: int,
    ramp: float,
    duration: float,
    step: float = 1.0,
    requests_by_name: Sequence[tuple[str, int, int, float | None, float | None]] = (),
) -> Summary:
    """The summary of a run from its snapshots (the first one taken at the start)."""
    last = snapshots[-1] if snapshots else Snapshot(0.0, 0, 0, {}, 0, {})
    windows = series(snapshots, step)
    joins = last.figure(JOIN_ADMITTED)
    joined_windows = [w for w in windows if w.joins]
    join_span = joined_windows[-1].end if joined_windows else 0.0
    ttfa = last.figure(TIME_TO_FIRST_AUDIO)
    delay = last.figure(PART_DELAY)
    events = last.figure(EVENT_DELAY)
    retry = last.figure(RETRY_WAIT)
    return Summary(
        target=target,
        space=space,
        listeners=listeners,
        ramp=ramp,
        duration=duration,
        elapsed=last.at,
        peak_users=max((s.users for s in snapshots), default=0),
        joins_admitted=joins.count,
        joins_per_second_peak=max((w.joins_per_second for w in windows), default=0.0),
        joins_per_second_mean=joins.count / join_span if join_span else 0.0,
        ttfa_count=ttfa.count,
        ttfa_p50=_seconds(percentile(ttfa.values, 0.5)),
        ttfa_p99=_seconds(percentile(ttfa.values, 0.99)),
        parts=last.parts,
        parts_late=last.figure(PART_LATE).count,
        part_delay_p50=_seconds(percentile(delay.values, 0.5)),
        part_delay_p99=_seconds(percentile(delay.values, 0.99)),
        waits_in_line=last.figure(WAIT_IN_LINE).count,
        retries=retry.count,
        retry_wait_min=_seconds(min(retry.values)) if retry.values else None,
        retry_wait_p50=_seconds(percentile(retry.values, 0.5)),
        requests=last.requests,
        errors=dict(sorted(last.errors.items(), key=lambda kv: -kv[1])),
        requests_by_name=tuple(requests_by_name),
        listener_seconds=listener_seconds(snapshots),
        event_delay_p50=_seconds(percentile(events.values, 0.5)),
        event_delay_p99=_seconds(percentile(events.values, 0.99)),
    )


def listener_seconds(snapshots: Sequence[Snapshot]) -> float:
    """The users on between snapshots, times the time between them, summed (each interval
    counted with the mean of its two ends)."""
    return sum(
        (later.at - earlier.at) * (earlier.users + later.users) / 2
        for earlier, later in pairwise(snapshots)
    )


def judge(summary: Summary, max_errors: float, max_late: float) -> tuple[bool, str]:
    """Whether the rehearsal passed, and a sentence saying why."""
    problems = []
    if summary.joins_admitted == 0:
        problems.append("no join was admitted")
    if summary.hard_error_ratio > max_errors:
        problems.append(
            f"errors {summary.hard_error_ratio:.2%} of requests > --max-errors {max_errors:.2%}"
        )
    if summary.late_ratio > max_late:
        problems.append(f"late parts {summary.late_ratio:.2%} > --max-late {max_late:.2%}")
    if problems:
        return False, "FAILED: " + "; ".join(problems)
    return True, "PASSED"
