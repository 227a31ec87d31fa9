"""The waiting room: an optional cap on a space's listeners, and a fair line in front of it.

Every join of a capped space takes a number from the space's counter (the line's `issued`).
The line also has a watermark, `admitted`: every number at or below it may come in. Joiners
whose number is above it get a signed *ticket* carrying their number; they come back with it
and are admitted once the watermark has passed them, so their place is kept without storing
anything per person (like listener tokens).

The watermark moves at most once every `Policy.admit_every` seconds, by the room left:
capacity minus the listeners counted now (the presence count) minus the places granted but
not yet taken (`admitted - arrived`, for `Policy.reserve` seconds after a grant: people told to
come back are on their way and not yet counted). Admitting in steps no faster than people
come back and get counted is what keeps the space at or under its cap.

The estimated wait is the position divided by the recent speed of the watermark (a moving
average over steps); before anything has moved, a rough guess: each full room of people ahead
takes one presence window to leave. Pure: no I/O, the time is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import Invalid

MAX_CAPACITY = 10_000_000
"""The largest cap a host may set (one space, any number of nodes)."""


def check_capacity(capacity: int | None) -> int | None:
    """A valid cap: a whole number of listeners from 1 to MAX_CAPACITY, or None (no cap)."""
    if capacity is None:
        return None
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise Invalid("capacity must be a whole number of listeners or null")
    if not 1 <= capacity <= MAX_CAPACITY:
        raise Invalid(f"capacity must be between 1 and {MAX_CAPACITY} listeners, or null")
    return capacity


@dataclass(frozen=True)
class Policy:
    """How the line moves and what waiting people are told."""

    admit_every: float = 2.0
    """Seconds between two moves of the watermark."""
    reserve: float = 40.0
    """Seconds a granted place is kept for someone coming back before it counts as free."""
    max_retry: int = 30
    """The longest Retry-After a waiting person is given (seconds)."""
    smoothing: float = 0.3
    """Weight of the latest step in the moving average of the admission rate."""
    ticket_ttl: int = 900
    """Seconds a ticket stays valid; each visit with it gives a fresh one."""


@dataclass(frozen=True)
class Line:
    """The state of one space's line (kept by the storage, shared by the nodes)."""

    epoch: str
    """Changes when the line is created anew, so numbers from an older line are not mixed in."""
    issued: int = 0
    """The last number given out."""
    admitted: int = 0
    """The watermark: numbers up to it may come in."""
    arrived: int = 0
    """The highest admitted number that did come in."""
    advanced_at: float = 0.0
    """When the watermark last moved (or was last considered)."""
    granted_at: float = 0.0
    """When the watermark last moved forward."""
    rate: float = 0.0
    """Moving average of numbers admitted per second."""

    @property
    def waiting(self) -> int:
        """How many numbers given out are still behind the watermark."""
        return max(0, self.issued - self.admitted)


@dataclass(frozen=True)
class Waiting:
    """Not yet: the place in line, a guess of the wait, and when to ask again."""

    position: int
    estimated_wait: float
    retry_after: int


def due(line: Line, now: float, policy: Policy) -> bool:
    """Whether the watermark may move now."""
    return now - line.advanced_at >= policy.admit_every


def advance(line: Line, *, capacity: int, listening: int, now: float, policy: Policy) -> Line:
    """The line after one step: the watermark moves by the room left (see the module doc)."""
    recently_granted = now - line.granted_at < policy.reserve
    on_their_way = max(0, line.admitted - line.arrived) if recently_granted else 0
    room = max(0, capacity - listening - on_their_way)
    elapsed = now - line.advanced_at
    step_rate = room / elapsed if line.advanced_at and elapsed > 0 else 0.0
    rate = (
        policy.smoothing * step_rate + (1 - policy.smoothing) * line.rate
        if line.advanced_at
        else 0.0
    )
    return replace(
        line,
        admitted=line.admitted + room,
        advanced_at=now,
        granted_at=now if room else line.granted_at,
        rate=rate,
    )


def place(
    number: int, line: Line, *, capacity: int, presence_window: float, policy: Policy
) -> Waiting | None:
    """None if `number` may come in; else where it stands and when to ask again."""
    if number <= line.admitted:
        return None
    position = number - line.admitted
    if line.rate > 0.01:
        estimate = position / line.rate
    else:
        estimate = math.ceil(position / capacity) * presence_window + policy.admit_every
    retry_after = min(policy.max_retry, max(1, math.ceil(estimate / 2)))
    return Waiting(position=position, estimated_wait=round(estimate, 1), retry_after=retry_after)


# -- tickets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    """A place in a space's line: the number, the line it belongs to, and its expiry."""

    space_id: str
    epoch: str
    number: int
    expires: int


__all__ = [
    "MAX_CAPACITY",
    "Line",
    "Policy",
    "Ticket",
    "Waiting",
    "advance",
    "check_capacity",
    "due",
    "place",
]
