"""Rate limits for writes, as one protocol: kept in this process or shared through Redis."""

from __future__ import annotations

from typing import Protocol

from .buckets import Rate


class RateLimits(Protocol):
    """Pairs of token buckets, per token and per address, for each kind of write."""

    async def take(
        self, kind: str, rates: tuple[Rate, Rate], subject: str, ip: str, now: float
    ) -> float | None:
        """Take a token from the subject's bucket, then (if that allowed it) from the
        address's: None if allowed, else the seconds to wait before trying again."""

    async def close(self) -> None:
        """Let go of what the limits hold (a Redis client)."""
