"""The rehearsal's statistics: error kinds, percentiles, windows and the summary."""

from __future__ import annotations

import random

import pytest

from causerie.rehearse import figures as f
from causerie.rehearse.backoff import (
    full_jitter,
    retry_after_seconds,
    retry_delay,
    wait_in_line_seconds,
)


def test_error_kinds():
    assert f.error_kind("CatchResponseError('HTTP 503')") == "HTTP 503"
    assert f.error_kind('CatchResponseError("ConnectionRefusedError")') == "ConnectionRefusedError"
    assert f.error_kind("ConnectionResetError(104, 'Connection reset by peer')") == (
        "ConnectionResetError"
    )
    assert f.error_kind(TimeoutError("timed out")) == "TimeoutError"


def test_percentile_nearest_rank():
    assert f.percentile({}, 0.5) is None
    values = {100: 50, 200: 49, 3000: 1}
    assert f.percentile(values, 0.5) == 100
    assert f.percentile(values, 0.99) == 200
    assert f.percentile(values, 1.0) == 3000
    assert f.percentile({7: 1}, 0.01) == 7


def snap(at, users, joins, ttfa, late=0, parts=0, requests=0, errors=None, events=None):
    return f.Snapshot(
        at=at,
        users=users,
        requests=requests,
        figures={
            f.JOIN_ADMITTED: f.Histogram(joins, {10: joins}),
            f.TIME_TO_FIRST_AUDIO: f.Histogram(sum(ttfa.values()), ttfa),
            f.PART_LATE: f.Histogram(late, {300: late} if late else {}),
            f.EVENT_DELAY: f.Histogram(sum((events or {}).values()), events or {}),
        },
        parts=parts,
        errors=errors or {},
    )


RUN = [
    snap(0.0, 0, 0, {}),
    snap(1.0, 10, 10, {200: 10}, requests=40, parts=20),
    snap(2.0, 20, 20, {200: 10, 900: 10}, requests=100, parts=60, errors={"HTTP 503": 3}),
    snap(
        3.0,
        20,
        20,
        {200: 10, 900: 10},
        late=2,
        requests=160,
        parts=100,
        errors={"HTTP 503": 3, "ConnectionResetError": 1},
        events={20: 9, 400: 1},
    ),
]


def test_windows_are_differences():
    windows = f.series(RUN, 1.0)
    assert [w.joins for w in windows] == [10, 10, 0]
    assert windows[1].joins_per_second == 10
    assert windows[1].ttfa_p50 == 0.9 and windows[1].ttfa_p99 == 0.9  # only that window's visits
    assert windows[2].ttfa_p50 is None
    assert [w.parts_late for w in windows] == [0, 0, 2]
    assert windows[1].errors == {"HTTP 503": 3}
    assert windows[2].errors == {"ConnectionResetError": 1}
    two = f.series(RUN, 2.0)
    assert [(w.start, w.end, w.joins) for w in two] == [(0.0, 2.0, 20), (2.0, 3.0, 0)]


def test_summary():
    summary = f.summarize(
        RUN, target="http://x", space=None, listeners=20, ramp=2, duration=3, step=1.0
    )
    assert summary.joins_admitted == 20
    assert summary.joins_per_second_peak == 10
    assert summary.joins_per_second_mean == 10  # 20 joins in the 2 s they took
    assert summary.ttfa_p50 == 0.2 and summary.ttfa_p99 == 0.9
    assert summary.parts == 100 and summary.parts_late == 2
    assert summary.late_ratio == 0.02
    assert summary.refused == 3 and summary.hard_errors == 1
    assert summary.hard_error_ratio == pytest.approx(1 / 160)
    assert list(summary.errors) == ["HTTP 503", "ConnectionResetError"]  # most first
    assert summary.peak_users == 20
    assert summary.retries == 0 and summary.retry_wait_min is None
    # 0 → 10 → 20 → 20 users over three seconds: 5 + 15 + 20 listener-seconds.
    assert summary.listener_seconds == 40
    assert summary.requests_per_listener_second == 4.0
    assert summary.event_delay_p50 == 0.02 and summary.event_delay_p99 == 0.4


def test_summary_of_nothing():
    summary = f.summarize([], target="http://x", space="s", listeners=1, ramp=0, duration=1)
    assert summary.joins_admitted == 0 and summary.ttfa_p50 is None and summary.late_ratio == 0


def test_retry_after():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    assert retry_after_seconds(date, now=784111777 - 5) == pytest.approx(5)
    assert retry_after_seconds(date, now=784111777 + 5) == 0.0


def test_full_jitter_and_retry_delay():
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = min(30.0, 0.5 * 2**attempt)
        values = [full_jitter(attempt, rng=rng) for _ in range(200)]
        assert all(0 <= v < ceiling for v in values)
        assert max(values) > 0.8 * ceiling  # spread over the whole range: full jitter
    assert full_jitter(10_000, rng=rng) < 30.0
    delays = [retry_delay(2.0, 0, rng) for _ in range(100)]
    assert all(2.0 <= d < 2.5 for d in delays)  # Retry-After honoured, then jitter
    assert all(0 <= retry_delay(None, 0, rng) < 0.5 for _ in range(100))


def test_wait_in_line_is_full_jitter_up_to_retry_after():
    rng = random.Random(3)
    waits = [wait_in_line_seconds(10, rng) for _ in range(500)]
    assert all(0.5 <= w <= 10 for w in waits)
    assert min(waits) < 1 and max(waits) > 9  # spread over the whole range
    for odd in (None, "soon", -4, 0, float("nan"), float("inf")):
        assert 0.5 <= wait_in_line_seconds(odd, rng) <= 1.0
    assert wait_in_line_seconds(1e9, rng) <= 300


def test_judge():
    summary = f.summarize(RUN, target="http://x", space=None, listeners=20, ramp=2, duration=3)
    assert f.judge(summary, 0.01, 1.0) == (True, "PASSED")  # 1 error in 160 requests: 0.62 %
    ok, verdict = f.judge(summary, 0.005, 0.01)
    assert not ok
    assert verdict == (
        "FAILED: errors 0.62% of requests > --max-errors 0.50%; late parts 2.00% > --max-late 1.00%"
    )
    nothing = f.summarize(RUN[:1], target="http://x", space=None, listeners=1, ramp=0, duration=1)
    assert f.judge(nothing, 1.0, 1.0) == (False, "FAILED: no join was admitted")
