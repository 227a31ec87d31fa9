"""Token-bucket rate limits for writes (questions, votes, reactions, raised hands).

Each key (a token's subject, or a client IP) has a bucket of `burst` tokens refilled at `rate`
per second; an action takes one. A refused action learns how long until a token is back, which
becomes the `Retry-After` of a 429. Pure: the time is passed in. Memory stays bounded: buckets
that are full again are forgotten when the table grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """`burst` actions at once, then `per_second` on average."""

    per_second: float
    burst: int


class RateLimiter:
    """Buckets per key for one kind of action."""

    def __init__(self, rate: Rate, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, now: float) -> float | None:
        """Take a token: None if allowed, else the seconds to wait before trying again."""
        tokens, at = self._buckets.get(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + max(0.0, now - at) * self.rate.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate.per_second
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._forget_full(now)
        self._buckets[key] = (tokens - 1.0, now)
        return None

    def _forget_full(self, now: float) -> None:
        burst = float(self.rate.burst)
        full = [
            key
            for key, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate.per_second >= burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()  # a flood of distinct keys: start over rather than grow


def retry_after_header(seconds: float) -> str:
    """Retry-After wants whole seconds; never say 0."""
    return str(max(1, math.ceil(seconds)))
