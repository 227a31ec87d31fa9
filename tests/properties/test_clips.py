"""Clip ranges (api/replay.py `clip_range`, what media/clips.py then cuts) for any request: a
non-empty range of at most 30 s inside the recording, the defaults as documented, or `Invalid`
with a message; never another exception (which would be a 500)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import example, given
from hypothesis import strategies as st

from causerie.api.replay import MAX_CLIP_SECONDS, clip_range
from causerie.domain import Invalid

LIMIT_MS = MAX_CLIP_SECONDS * 1000
# What a request may hold: any finite number (ClipRequest refuses NaN and infinities).
seconds = st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-5, 10**6)
lengths = st.fractions(min_value=0, max_value=10**5, max_denominator=48_000)


@given(seconds, seconds, lengths)
@example(None, None, Fraction(0))
@example(1e308, None, Fraction(100))
@example(None, 1e-300, Fraction(100))
@example(29.9999999, 60.0, Fraction(3600))
def test_a_clip_is_inside_the_recording_and_short(
    start: float | None, end: float | None, length: Fraction
) -> None:
    length_ms = int(length * 1000)
    try:
        start_ms, end_ms = clip_range(start, end, length)
    except Invalid as exc:
        assert exc.message
        return
    assert 0 <= start_ms < end_ms <= length_ms
    assert end_ms - start_ms <= LIMIT_MS
    if start is None and end is None:
        assert (start_ms, end_ms) == (max(0, length_ms - LIMIT_MS), length_ms)
    if start is not None:
        assert start_ms == round(start * 1000)
    if end is not None:
        assert end_ms == min(round(end * 1000), length_ms)
    elif start is not None:
        assert end_ms == min(start_ms + LIMIT_MS, length_ms)


@given(lengths.filter(lambda x: x > Fraction(1, 1000)))
def test_the_whole_of_a_short_recording_is_the_default(length: Fraction) -> None:
    start_ms, end_ms = clip_range(None, None, length)
    assert end_ms == int(length * 1000) and end_ms - start_ms == min(end_ms, LIMIT_MS)
