"""The in-process bus (the embedded default): a bounded backlog per space and shared wake-ups.

Every subscriber of a space waits on one shared future that is resolved when the next event
arrives, so ten thousand open event streams cost ten thousand small awaits, not ten thousand
queues that each copy every event.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from .protocol import Event

BACKLOG = 1000


class _Stream:
    def __init__(self, backlog: int) -> None:
        self.events: deque[Event] = deque(maxlen=backlog)
        self.last_id = 0
        self.next: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter, self.next = self.next, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class LocalBus:
    """`Bus` in this process's memory."""

    def __init__(self, backlog: int = BACKLOG, clock: Callable[[], float] = time.time) -> None:
        self.backlog = backlog
        self.clock = clock
        self._streams: dict[str, _Stream] = {}
        self._closed = False

    def _stream(self, space_id: str) -> _Stream:
        stream = self._streams.get(space_id)
        if stream is None:
            stream = self._streams[space_id] = _Stream(self.backlog)
        return stream

    async def publish(self, space_id: str, type: str, data: dict[str, Any]) -> Event:
        stream = self._stream(space_id)
        stream.last_id += 1
        # Never earlier than the event before: windows of events (node/feed.py) stay in order.
        at = max(self.clock(), stream.events[-1].at if stream.events else 0.0)
        event = Event(stream.last_id, type, data, at)
        stream.events.append(event)
        stream.wake()
        return event

    async def last_id(self, space_id: str) -> int:
        stream = self._streams.get(space_id)
        return stream.last_id if stream else 0

    async def subscribe(
        self, space_id: str, after: int | None = None, keepalive: float | None = None
    ) -> AsyncIterator[Event | None]:
        stream = self._stream(space_id)
        cursor = stream.last_id if after is None else after
        if cursor > stream.last_id:
            # An id this server never gave (it restarted): the subscriber must start over.
            cursor = stream.last_id  # set before yielding: events published meanwhile follow
            yield Event(cursor, "reset", {"reason": "the server restarted"})
        while not self._closed:
            if cursor < stream.last_id:
                oldest = stream.events[0].id if stream.events else stream.last_id + 1
                if cursor + 1 < oldest:
                    cursor = oldest - 1
                    yield Event(cursor, "reset", {"reason": "missed events"})
                for event in list(stream.events):
                    if event.id > cursor:
                        yield event
                        cursor = event.id
                continue
            if stream.next is None:
                stream.next = asyncio.get_running_loop().create_future()
            try:
                # shield: one subscriber timing out must not cancel the shared future.
                await asyncio.wait_for(asyncio.shield(stream.next), keepalive)
            except TimeoutError:
                yield None

    async def close(self) -> None:
        self._closed = True
        for stream in self._streams.values():
            stream.wake()
