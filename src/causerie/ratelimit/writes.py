"""The limits on what listeners write: questions, votes, reactions, raised hands, reports, and
clips.

Each kind of write has two token buckets: one per token (one person) and one per client
address. Per address, limits are generous: a campus, an office or a mobile carrier puts many
honest listeners behind one address; they stop one machine flooding with fresh tokens.

Clips need no token (anyone may cut one): their pair is per client address, then per space
(see `WriteLimits.check_clip`).
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
        # Reports reach a person (an operator): a handful each, then one a minute; one
        # address 20, then one every 10 s, so one machine minting listener tokens cannot
        # bury the queue (a repeat of the same report is not a new one: see domain/reports.py).
        "report": (Rate(1 / 60, 5), Rate(0.1, 20)),
        # (per address, per space): each clip is a new file (media/clip_budget.py bounds
        # their bytes); a person cuts a few, a space's audience a clip a second at most.
        "clip": (Rate(0.1, 5), Rate(1, 30)),
    }

    def __init__(self, limits: RateLimits | None = None) -> None:
        self.limits: RateLimits = limits or LocalRateLimits()

    async def check(self, kind: str, subject: str, ip: str, now: float) -> None:
        """Raise `TooManyRequests` if the token or the address went over the limit."""
        wait = await self.limits.take(kind, self.RATES[kind], subject, ip, now)
        _refuse_if(kind, wait)

    async def check_clip(self, space_id: str, ip: str, now: float) -> None:
        """Raise `TooManyRequests` if the address or the space went over the clip limits.

        The first bucket of a pair is taken first, and the second only if the first allowed
        it: the address goes first, so one address over its limit never drains the space's
        bucket (the Redis keys are `limit:clip:t:{address}`, `limit:clip:ip:space:{id}`).
        """
        wait = await self.limits.take("clip", self.RATES["clip"], ip, f"space:{space_id}", now)
        _refuse_if("clip", wait)

    async def close(self) -> None:
        await self.limits.close()


def _refuse_if(kind: str, wait: float | None) -> None:
    if wait is not None:
        seconds = retry_after_header(wait)
        raise TooManyRequests(
            f"too many {kind.replace('_', ' ')}s; try again in {seconds} s", seconds
        )
