"""Live events in time windows that every listener fetches identically, so edges share them.

A per-listener event stream (SSE) is a connection to a node per listener, which no edge can
share. Instead, a space's events are cut into windows of `WINDOW_SECONDS` by their publication
time (`Event.at`, one clock for every node): window `n` holds the events published in
`[n·W, (n+1)·W)`. A listener fetches the window in progress, receives its events as they are
published (the response streams until the window is over), then fetches the next one: one
request per window, the same bytes for everyone, so an edge fetches each window once from a
node and streams it to every listener (Varnish `do_stream`, like the DASH segment in progress).

A window is *closed* `GRACE_SECONDS` after its end (events being published at the boundary have
arrived by then); its bytes never change after, so it is cached as immutable. A node follows a
space's bus once (one subscription per space, whatever the audience) while anyone asks for its
windows, and keeps the last `KEPT_WINDOWS`.

What a listener may miss: nothing, as long as it fetches every window; one that falls behind
further than the windows kept gets 410 and reads the space again (its details), then goes on
from the window in progress. Each event carries its id, so overlaps are dropped by the client.

A node's in-process bus (one node, no Redis) starts empty: after a restart, it does not know
what was published before. For a space older than the bus, the window in progress then starts
with a `reset` line (`{"type": "reset", "at": when the bus started}`: events before it may be
missing, read the space again) and older windows are gone (410). A bus in Redis outlives its
nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..bus import Bus, Event

log = logging.getLogger(__name__)

WINDOW_SECONDS = 15.0
"""How long a window lasts: one request per listener per window (1/15 a second)."""
GRACE_SECONDS = 1.0
"""How long after its end a window stays open for events published right at the boundary."""
KEPT_WINDOWS = 12
"""Closed windows a node keeps per space (three minutes): a listener further behind gets 410."""
IDLE_SECONDS = 60.0
"""A node stops following a space nobody asked about for this long."""
AHEAD_WINDOWS = 1
"""How far ahead of the window in progress a request may ask (clocks differ): 0 or 1."""


def window_of(at: float, seconds: float = WINDOW_SECONDS) -> int:
    """The number of the window an event published at `at` belongs to."""
    return math.floor(at / seconds)


def event_line(event: Event) -> bytes:
    """One event as one line of JSON (the body of a window is newline-delimited JSON)."""
    line = {"id": event.id, "type": event.type, "at": round(event.at, 3), "data": event.data}
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def reset_line(since: float) -> bytes:
    """The first line of a window that began before the node's bus did: events published
    before `since` may be missing from it."""
    return json.dumps({"type": "reset", "at": round(since, 3)}).encode() + b"\n"


def end_line(number: int) -> bytes:
    """The last line of a complete window: says so, and which window comes next."""
    return json.dumps({"type": "end", "next": number + 1}).encode() + b"\n"


class WindowGone(Exception):
    """The window is older than what this node keeps (or started before it followed)."""


class WindowAhead(Exception):
    """The window has not begun yet (further ahead than a clock difference explains)."""


@dataclass
class Window:
    """One window of one space: its lines so far, and whether it is complete."""

    number: int
    lines: list[bytes] = field(default_factory=list)
    complete: bool = False
    abandoned: bool = False
    _next: asyncio.Future[None] | None = None

    def add(self, line: bytes) -> None:
        self.lines.append(line)
        self._wake()

    def abandon(self) -> None:
        """This node stops filling the window before it is complete: readers must let go
        without the end line (and edges must not keep what they got)."""
        if not self.complete:
            self.abandoned = True
            self._wake()

    def finish(self) -> None:
        if not self.complete:
            self.lines.append(end_line(self.number))
            self.complete = True
            self._wake()

    async def changed(self, timeout: float) -> None:
        """Wait until a line is added or the window completes (or `timeout` passes)."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            # shield: one reader timing out must not cancel the future the others wait on.
            await asyncio.wait_for(asyncio.shield(self._next), timeout)

    def _wake(self) -> None:
        waiter, self._next = self._next, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class SpaceFeed:
    """The windows of one space on this node, filled by one subscription to the bus."""

    def __init__(
        self,
        bus: Bus,
        space_id: str,
        clock: Callable[[], float],
        seconds: float,
        history_since: float | None = None,
    ) -> None:
        self.bus = bus
        self.space_id = space_id
        self.clock = clock
        self.seconds = seconds
        self.history_since = history_since
        """When the bus's memory begins (None: it holds everything published)."""
        self.windows: dict[int, Window] = {}
        self.first_complete: float | None = None
        """The first window known to hold every one of its events (None: not known yet)."""
        self.asked_at = clock()
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def current(self) -> int:
        return window_of(self.clock(), self.seconds)

    def window(self, number: int) -> Window:
        """Window `number`, complete or in progress (raises `WindowGone` / `WindowAhead`)."""
        self.asked_at = self.clock()
        current = self.current()
        if number > current + AHEAD_WINDOWS:
            raise WindowAhead(f"window {number} has not begun (the one in progress is {current})")
        if (
            self.first_complete is None
            or number < self.first_complete
            or number < current - KEPT_WINDOWS
            or (
                self.history_since is not None
                and number < window_of(self.history_since, self.seconds)
            )
        ):
            raise WindowGone(f"window {number} is no longer kept; read the space again")
        window = self.windows.get(number)
        if window is None:
            window = self._new(number)
            self._close_due()
        return window

    def _new(self, number: int) -> Window:
        window = self.windows[number] = Window(number)
        since = self.history_since
        if since is not None and number == window_of(since, self.seconds):
            window.add(reset_line(since))
        return window

    async def follow(self) -> None:
        """Read the space's backlog, then its live events, into windows, until nobody has
        asked about the space for `IDLE_SECONDS`."""
        replayed_up_to = await self.bus.last_id(self.space_id)
        first_after_gap: int | None = None  # the window of the first event after a gap
        missed = False
        try:
            async for event in self.bus.subscribe(self.space_id, after=0, keepalive=0.5):
                if event is not None and event.type == "reset":
                    missed = True  # the backlog starts later than the space's first event
                elif event is not None:
                    number = window_of(event.at, self.seconds)
                    if missed and first_after_gap is None:
                        first_after_gap = number
                    self._add(number, event)
                if not self.ready.is_set() and (
                    event is None or (event.type != "reset" and event.id >= replayed_up_to)
                ):
                    # The whole history, or from the window after the gap (that one may lack
                    # events dropped from the backlog).
                    self.first_complete = (
                        -math.inf if first_after_gap is None else first_after_gap + 1
                    )
                    self.ready.set()
                self._close_due()
                if self.clock() - self.asked_at > IDLE_SECONDS:
                    return
        finally:
            for window in self.windows.values():
                window.abandon()
            self.ready.set()

    def _add(self, number: int, event: Event) -> None:
        window = self.windows.get(number)
        while window is not None and window.complete:
            # Published after its window closed (a clock far off): the next open one takes it,
            # so it still reaches everyone (clients drop repeated ids).
            number += 1
            window = self.windows.get(number)
        if window is None:
            window = self._new(number)
        window.add(event_line(event))

    def _close_due(self) -> None:
        now = self.clock()
        for number, window in list(self.windows.items()):
            if not window.complete and now >= (number + 1) * self.seconds + GRACE_SECONDS:
                window.finish()
        oldest = self.current() - KEPT_WINDOWS
        for number in [n for n in self.windows if n < oldest]:
            del self.windows[number]


class Feeds:
    """The event windows of every space this node is asked about.

    `history_since`: when the bus's memory begins, for a bus that starts empty with the node
    (in-process); None for one that holds everything published (Redis). It matters only for
    spaces created before then.
    """

    def __init__(
        self,
        bus: Bus,
        clock: Callable[[], float],
        seconds: float = WINDOW_SECONDS,
        history_since: float | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.seconds = seconds
        self.history_since = history_since
        self._spaces: dict[str, SpaceFeed] = {}

    async def window(self, space_id: str, number: int, created: float | None = None) -> Window:
        """Window `number` of the space, once this node has read the space's backlog.

        `created`: when the space was created (Unix time; None: long ago).
        """
        feed = self._spaces.get(space_id)
        if feed is None or (feed.task is not None and feed.task.done()):
            since = self.history_since
            if since is not None and created is not None and created >= since:
                since = None  # everything it ever published is on this bus
            feed = self._spaces[space_id] = SpaceFeed(
                self.bus, space_id, self.clock, self.seconds, since
            )
            feed.task = asyncio.create_task(feed.follow(), name=f"feed-{space_id}")
            feed.task.add_done_callback(self._ended)
        await asyncio.wait_for(feed.ready.wait(), timeout=10)
        return feed.window(number)

    def current(self) -> int:
        """The window in progress now."""
        return window_of(self.clock(), self.seconds)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("following a space's events failed", exc_info=task.exception())

    async def close(self) -> None:
        """Stop following every space, awaiting each."""
        tasks = [f.task for f in self._spaces.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._spaces.clear()
