"""The in-process bus: order, resume, backlog overflow, keepalive."""

from __future__ import annotations

import asyncio

from causerie.bus import LocalBus


async def take(iterator, n: int) -> list:
    return [await asyncio.wait_for(anext(iterator), 2) for _ in range(n)]


async def test_subscribers_get_events_in_order() -> None:
    bus = LocalBus()
    first = bus.subscribe("sp")
    second = bus.subscribe("sp")
    pending = asyncio.gather(take(first, 3), take(second, 3))
    await asyncio.sleep(0.01)
    for i in range(3):
        await bus.publish("sp", "n", {"i": i})
    a, b = await pending
    assert [e.data["i"] for e in a] == [e.data["i"] for e in b] == [0, 1, 2]
    assert [e.id for e in a] == [1, 2, 3]


async def test_resume_after_an_id_gets_exactly_what_was_missed() -> None:
    bus = LocalBus()
    for i in range(5):
        await bus.publish("sp", "n", {"i": i})
    resumed = bus.subscribe("sp", after=2)
    assert [e.id for e in await take(resumed, 3)] == [3, 4, 5]
    await bus.publish("sp", "n", {"i": 5})
    assert [e.id for e in await take(resumed, 1)] == [6]


async def test_too_old_or_unknown_ids_get_a_reset() -> None:
    bus = LocalBus(backlog=3)
    for i in range(6):
        await bus.publish("sp", "n", {"i": i})
    old = bus.subscribe("sp", after=1)
    events = await take(old, 4)
    assert events[0].type == "reset"
    assert [e.id for e in events[1:]] == [4, 5, 6]
    future = bus.subscribe("sp", after=99)
    assert (await take(future, 1))[0].type == "reset"


async def test_keepalive_and_spaces_are_separate() -> None:
    bus = LocalBus()
    quiet = bus.subscribe("sp", keepalive=0.05)
    await bus.publish("other", "n", {})
    assert await take(quiet, 1) == [None]
    await bus.close()
