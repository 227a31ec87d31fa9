"""The live-event bus: what happened in a space, in order, for every page that follows it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    """One thing that happened in a space. `id` increases by one per event in a space; `at`
    is when it was published (Unix seconds, by the bus's clock: one clock for every node)."""

    id: int
    type: str
    data: dict[str, Any]
    at: float = 0.0


class Bus(Protocol):
    """Publishes events per space and lets subscribers resume after the last id they saw."""

    async def publish(self, space_id: str, type: str, data: dict[str, Any]) -> Event:
        """Append an event to the space's stream and wake its subscribers."""

    async def last_id(self, space_id: str) -> int:
        """The id of the space's latest event (0 when there is none)."""

    def subscribe(
        self, space_id: str, after: int | None = None, keepalive: float | None = None
    ) -> AsyncIterator[Event | None]:
        """Events of the space with ids above `after` (from the backlog), then live ones.

        If `after` is not in the backlog (too old, or from before a restart), the first event
        is of type `reset`: the subscriber missed events and must read the state again.
        With `keepalive`, None is yielded after that many seconds without an event.
        """

    async def close(self) -> None:
        """Wake and end every subscription."""
