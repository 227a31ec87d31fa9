"""Event windows (node/feed.py): which window an event is in, when a window completes, what a
node that starts following a space late can vouch for."""

from __future__ import annotations

import asyncio
import json

import pytest

from causerie.bus import LocalBus
from causerie.node.feed import (
    GRACE_SECONDS,
    KEPT_WINDOWS,
    Feeds,
    WindowAhead,
    WindowGone,
    window_of,
)

W = 15.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def events(lines: list[bytes]) -> list[dict]:
    return [json.loads(line) for line in lines if line.strip()]


def test_window_of() -> None:
    assert window_of(0.0, W) == 0
    assert window_of(14.999, W) == 0
    assert window_of(15.0, W) == 1
    assert window_of(1_765_000_000.0, W) == 117_666_666


async def test_events_land_in_the_window_of_their_time_and_windows_complete() -> None:
    clock = Clock(100 * W + 1)
    bus = LocalBus(clock=clock)
    feeds = Feeds(bus, clock, W)
    try:
        await bus.publish("s", "listeners", {"listeners_now": 1})
        window = await feeds.window("s", 100)
        assert [e["data"] for e in events(window.lines)] == [{"listeners_now": 1}]
        assert not window.complete
        clock.now = 100 * W + 14
        await bus.publish("s", "speaking", {"speaking": ["a"]})
        clock.now = 101 * W + 0.2  # the next window began; this one is in its grace
        await bus.publish("s", "speaking", {"speaking": []})
        await asyncio.sleep(0.05)
        assert [e["type"] for e in events(window.lines)] == ["listeners", "speaking"]
        clock.now = 101 * W + GRACE_SECONDS + 0.1
        await asyncio.wait_for(_complete(window), 2)
        lines = events(window.lines)
        assert lines[-1] == {"type": "end", "next": 101}
        assert [e["id"] for e in lines[:-1]] == [1, 2]
        following = await feeds.window("s", 101)
        assert [e["id"] for e in events(following.lines)] == [3]
    finally:
        await feeds.close()


async def _complete(window) -> None:
    while not window.complete:
        await window.changed(0.1)


async def test_a_late_node_vouches_only_for_what_its_backlog_covers() -> None:
    clock = Clock(200 * W + 5)
    bus = LocalBus(backlog=3, clock=clock)
    for i in range(5):  # ids 1..5; the backlog keeps 3..5: window 200 lost ids 1 and 2
        await bus.publish("s", "n", {"i": i})
    feeds = Feeds(bus, clock, W)
    try:
        with pytest.raises(WindowGone):
            await feeds.window("s", 200)
        clock.now = 201 * W + 1
        await bus.publish("s", "n", {"i": 5})
        window = await feeds.window("s", 201)
        assert [e["data"]["i"] for e in events(window.lines)] == [5]
    finally:
        await feeds.close()


async def test_a_fresh_space_is_complete_from_its_first_event() -> None:
    clock = Clock(300 * W + 7)
    bus = LocalBus(clock=clock)
    await bus.publish("s", "space", {"state": "live"})
    feeds = Feeds(bus, clock, W)
    try:
        window = await feeds.window("s", 300)
        assert [e["id"] for e in events(window.lines)] == [1]
    finally:
        await feeds.close()


async def test_far_ahead_and_too_old_windows_are_refused() -> None:
    clock = Clock(400 * W + 1)
    bus = LocalBus(clock=clock)
    feeds = Feeds(bus, clock, W)
    try:
        await feeds.window("s", 401)  # the next one may be asked for (clocks differ)
        with pytest.raises(WindowAhead):
            await feeds.window("s", 402)
        with pytest.raises(WindowGone):
            await feeds.window("s", 400 - KEPT_WINDOWS - 1)
    finally:
        await feeds.close()


async def test_an_event_after_its_window_closed_goes_to_the_next() -> None:
    """A publisher whose clock lags (beyond the grace) still reaches everyone."""
    clock = Clock(500 * W + 1)
    bus = LocalBus(clock=clock)
    feeds = Feeds(bus, clock, W)
    try:
        window = await feeds.window("s", 500)
        clock.now = 501 * W + GRACE_SECONDS + 1
        await asyncio.wait_for(_complete(window), 2)
        bus.clock = lambda: 500 * W + 3  # a stale clock
        await bus.publish("s", "late", {})
        await asyncio.sleep(0.05)
        nxt = await feeds.window("s", 501)
        assert [e["type"] for e in events(nxt.lines)] == ["late"]
        assert events(window.lines)[-1]["type"] == "end"
    finally:
        await feeds.close()


async def test_a_bus_younger_than_the_space_says_what_it_cannot_know() -> None:
    """An in-process bus starts empty with its node: after a restart, the window in progress
    may lack what the node published before it; it says so, and older windows are gone."""
    started = 600 * W + 5
    clock = Clock(started)
    bus = LocalBus(clock=clock)
    feeds = Feeds(bus, clock, W, history_since=started)
    try:
        with pytest.raises(WindowGone):
            await feeds.window("old", 599, created=0.0)
        window = await feeds.window("old", 600, created=0.0)
        await bus.publish("old", "space", {"title": "after the restart"})
        await asyncio.sleep(0.05)
        lines = events(window.lines)
        assert lines[0] == {"type": "reset", "at": started}
        assert [e["type"] for e in lines[1:]] == ["space"]
        nxt = await feeds.window("old", 601, created=0.0)
        assert events(nxt.lines) == []  # the next window is whole

        # A space made since has nothing before the bus: no reset, its windows are whole.
        clock.now = started + 1
        await bus.publish("new", "space", {"title": "fresh"})
        fresh = await feeds.window("new", 600, created=started + 0.5)
        assert [e["type"] for e in events(fresh.lines)] == ["space"]
    finally:
        await feeds.close()
