"""The lines of the waiting rooms: one protocol, kept in this process or in Redis.

A line (`domain.waiting_room.Line`) is a handful of numbers per capped space. Each join of a
capped space costs one operation here (`take` or `present`, one round trip in Redis, done by
a script so the counter and the arrival mark change atomically); the watermark moves through
`advance`, a compare-and-set on `advanced_at`, so that of several nodes stepping at once
exactly one step counts. Spaces without a cap never come here.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from ..domain.waiting_room import Line

LINE_TTL = 24 * 3600
"""A line nobody touched for a day is dropped (a new one gets a new epoch)."""


class Lines(Protocol):
    """The lines of the capped spaces."""

    async def take(self, space_id: str) -> tuple[int, Line]:
        """A new number in the line; an admitted number is marked as arrived."""

    async def present(self, space_id: str, epoch: str, number: int) -> Line | None:
        """The line for a ticket holder (marked as arrived if admitted); None if the ticket
        belongs to an older line."""

    async def advance(self, space_id: str, before: Line, after: Line) -> Line:
        """Store `after` if the line is still `before` (by `advanced_at`); the current line."""

    async def close(self) -> None:
        """Let go of what the lines hold (a Redis client)."""


def new_epoch() -> str:
    """A fresh id for a new line (tickets of an older line no longer count)."""
    return secrets.token_hex(4)
