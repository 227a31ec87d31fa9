"""The rate limits of one node, in its memory (the embedded default)."""

from __future__ import annotations

from .buckets import Rate, RateLimiter


class LocalRateLimits:
    """`RateLimits` in this process: a `RateLimiter` per kind of write and per side."""

    def __init__(self) -> None:
        self._limiters: dict[tuple[str, int], RateLimiter] = {}

    def _limiter(self, kind: str, side: int, rate: Rate) -> RateLimiter:
        limiter = self._limiters.get((kind, side))
        if limiter is None or limiter.rate != rate:
            limiter = self._limiters[(kind, side)] = RateLimiter(rate)
        return limiter

    async def take(
        self, kind: str, rates: tuple[Rate, Rate], subject: str, ip: str, now: float
    ) -> float | None:
        per_token, per_ip = rates
        # The address's bucket is only taken from when the token may act (as in Redis).
        return self._limiter(kind, 0, per_token).take(subject, now) or self._limiter(
            kind, 1, per_ip
        ).take(ip, now)

    async def close(self) -> None:
        """Nothing to let go of."""
