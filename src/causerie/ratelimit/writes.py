"""The limits on what listeners write: questions, votes, reactions and raised hands.

Each kind of write has two token buckets: one per token (one person) and one per client
address. Per address, limits are generous: a campus, an office or a mobile carrier puts many
honest listeners behind one address; they stop one machine flooding with fresh tokens.
"""

from __future__ import annotations

from typing import ClassVar

from .buckets import Rate, retry_after_header
from .local import LocalRateLimits
from .protocol import RateLimits


class TooManyRequests(Exception):
    """A write over its limit; `retry_after` is the whole seconds to wait (for Retry-After)."""

    def __init__(self, message: str, retry_after: str) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class WriteLimits:
    """Checks each write against its kind's (per-token, per-address) rates."""

    RATES: ClassVar[dict[str, tuple[Rate, Rate]]] = {
        "question": (Rate(0.2, 3), Rate(2, 60)),
        "vote": (Rate(2, 10), Rate(50, 300)),
        "reaction": (Rate(3, 10), Rate(100, 500)),
        "speak_request": (Rate(0.2, 3), Rate(10, 200)),
    }

    def __init__(self, limits: RateLimits | None = None) -> None:
        self.limits: RateLimits = limits or LocalRateLimits()

    async def check(self, kind: str, subject: str, ip: str, now: float) -> None:
        """Raise `TooManyRequests` if the token or the address went over the limit."""
        wait = await self.limits.take(kind, self.RATES[kind], subject, ip, now)
        if wait is not None:
            seconds = retry_after_header(wait)
            raise TooManyRequests(
                f"too many {kind.replace('_', ' ')}s; try again in {seconds} s", seconds
            )

    async def close(self) -> None:
        await self.limits.close()
