"""Polite retrying, as the listener page does it (web/static/api.js).

A refused request (503 or 429, a gateway error, no answer) is tried again after at least what
`Retry-After` asks, plus exponential backoff with full jitter: a random delay in
[0, min(cap, base * 2**attempt)). A crowd refused at once thus comes back spread out in time
instead of in one wave.
"""

from __future__ import annotations

import math
import random
import time
from email.utils import parsedate_to_datetime

RETRYABLE = frozenset({0, 429, 502, 503, 504})
"""Statuses worth trying again later (0: no answer at all)."""

REFUSALS = frozenset({429, 503})
"""Statuses with which a server politely says "not now"."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def full_jitter(
    attempt: int, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Random in [0, min(cap, base * 2**attempt)) for retry number `attempt` (0, 1, 2…)."""
    ceiling = min(cap, base * 2 ** min(attempt, 30))
    return (rng or random).random() * ceiling


def retry_delay(retry_after: float | None, attempt: int, rng: random.Random | None = None) -> float:
    """How long to wait before retry number `attempt`: Retry-After (if any) + full jitter."""
    jitter = full_jitter(attempt, rng=rng)
    return jitter if retry_after is None else retry_after + jitter


def wait_in_line_seconds(retry_after: object, rng: random.Random | None = None) -> float:
    """How long to wait before joining again with a waiting-room ticket: random up to the
    answer's `retry_after` (at least 1 s of range, at least 0.5 s), as the page does."""
    try:
        most = float(retry_after)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        most = 1.0
    most = min(300.0, max(1.0, most)) if math.isfinite(most) else 1.0
    return max(0.5, (rng or random).random() * most)
