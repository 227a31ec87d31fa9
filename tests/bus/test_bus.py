"""The bus, in-process and on Redis alike: order, resume, backlog overflow, keepalive."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from causerie.bus import LocalBus
from causerie.bus.redis import RedisBus
from tests.harness.redis_server import run_redis


async def take(iterator, n: int) -> list:
    return [await asyncio.wait_for(anext(iterator), 2) for _ in range(n)]


@pytest.fixture(params=["local", "redis"])
async def buses(request):
    """Makes buses: in-process ones, or RedisBus on one Redis (like nodes); closed at the end."""
    made = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def new(backlog: int = 1000):
        bus = LocalBus(backlog=backlog) if url is None else RedisBus(url, backlog=backlog)
        made.append(bus)
        return bus

    yield new
    for bus in made:
        await bus.close()


async def test_subscribers_get_events_in_order(buses) -> None:
    bus = buses()
    first = bus.subscribe("sp")
    second = bus.subscribe("sp")
    pending = asyncio.gather(take(first, 3), take(second, 3))
    await asyncio.sleep(0.1)
    for i in range(3):
        await bus.publish("sp", "n", {"i": i})
    a, b = await pending
    assert [e.data["i"] for e in a] == [e.data["i"] for e in b] == [0, 1, 2]
    assert [e.id for e in a] == [1, 2, 3]
    assert await bus.last_id("sp") == 3
    assert await bus.last_id("other") == 0


async def test_resume_after_an_id_gets_exactly_what_was_missed(buses) -> None:
    bus = buses()
    for i in range(5):
        await bus.publish("sp", "n", {"i": i})
    resumed = bus.subscribe("sp", after=2)
    assert [e.id for e in await take(resumed, 3)] == [3, 4, 5]
    await bus.publish("sp", "n", {"i": 5})
    assert [e.id for e in await take(resumed, 1)] == [6]


async def test_too_old_or_unknown_ids_get_a_reset(buses) -> None:
    bus = buses(backlog=3)
    for i in range(6):
        await bus.publish("sp", "n", {"i": i})
    old = bus.subscribe("sp", after=1)
    events = await take(old, 4)
    assert events[0].type == "reset"
    assert [e.id for e in events[1:]] == [4, 5, 6]
    future = bus.subscribe("sp", after=99)
    assert (await take(future, 1))[0].type == "reset"


async def test_keepalive_and_spaces_are_separate(buses) -> None:
    bus = buses()
    quiet = bus.subscribe("sp", keepalive=0.05)
    await bus.publish("other", "n", {})
    assert await take(quiet, 1) == [None]
    await bus.close()


async def test_close_ends_subscriptions(buses) -> None:
    bus = buses()
    following = bus.subscribe("sp")
    pending = asyncio.ensure_future(anext(following))
    await asyncio.sleep(0.1)
    await bus.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 2)


async def test_nothing_lost_or_repeated_while_publishing_during_the_replay(buses) -> None:
    """Resume while events keep coming: the replay and the live part join exactly."""
    bus = buses()
    for i in range(50):
        await bus.publish("sp", "n", {"i": i})

    async def keep_publishing() -> None:
        for i in range(50, 150):
            await bus.publish("sp", "n", {"i": i})
            if i % 10 == 0:
                await asyncio.sleep(0)

    resumed = bus.subscribe("sp", after=10)
    publisher = asyncio.ensure_future(keep_publishing())
    events = await take(resumed, 140)
    await publisher
    assert [e.id for e in events] == list(range(11, 151))
    assert [e.data["i"] for e in events] == list(range(10, 150))


async def test_two_nodes_see_the_same_events_in_the_same_order(redis_url) -> None:
    """Two RedisBus on one Redis (two nodes): both publish, every subscriber sees one order."""
    one, two = RedisBus(redis_url), RedisBus(redis_url)
    try:
        subscribers = [one.subscribe("sp"), one.subscribe("sp"), two.subscribe("sp")]
        pending = asyncio.gather(*(take(s, 40) for s in subscribers))
        await asyncio.sleep(0.1)

        async def publish(bus, name: str) -> None:
            for i in range(20):
                await bus.publish("sp", "n", {"from": name, "i": i})

        await asyncio.gather(publish(one, "one"), publish(two, "two"))
        seen = await pending
        orders = [[(e.id, e.data["from"], e.data["i"]) for e in events] for events in seen]
        assert orders[0] == orders[1] == orders[2]
        assert [e.id for e in seen[0]] == list(range(1, 41))
        for name in ("one", "two"):
            assert [i for _, who, i in orders[0] if who == name] == list(range(20))
        # A subscriber on either node resuming from anywhere gets the same tail.
        tail_one = await take(one.subscribe("sp", after=30), 10)
        tail_two = await take(two.subscribe("sp", after=30), 10)
        assert tail_one == tail_two == seen[0][30:]
        assert await one.last_id("sp") == await two.last_id("sp") == 40
    finally:
        await one.close()
        await two.close()


async def test_a_node_stops_following_a_space_nobody_follows(redis_url) -> None:
    bus = RedisBus(redis_url, linger=0.2)
    try:
        following = bus.subscribe("sp")
        pending = asyncio.ensure_future(take(following, 1))
        await asyncio.sleep(0.1)
        await bus.publish("sp", "n", {"i": 0})
        await pending
        await following.aclose()
        deadline = asyncio.get_running_loop().time() + 10
        while "sp" in bus._channels:
            assert asyncio.get_running_loop().time() < deadline, "still subscribed"
            await asyncio.sleep(0.1)
        # Following again subscribes again, and nothing published meanwhile is lost.
        await bus.publish("sp", "n", {"i": 1})
        again = bus.subscribe("sp", after=1)
        assert [e.data["i"] for e in await take(again, 1)] == [1]
        pending = asyncio.ensure_future(take(again, 1))
        await asyncio.sleep(0.1)
        await bus.publish("sp", "n", {"i": 2})
        assert [e.data["i"] for e in await pending] == [2]
    finally:
        await bus.close()


async def test_subscribers_survive_redis_restarting_empty(tmp_path) -> None:
    """Redis restarts without its data: subscribers reconnect, get a reset, then follow."""
    with run_redis(tmp_path / "before") as before:
        port = before.port
        bus, publisher = RedisBus(before.url), RedisBus(before.url)
        following = bus.subscribe("sp")
        pending = asyncio.ensure_future(take(following, 3))
        await asyncio.sleep(0.1)
        for i in range(3):
            await publisher.publish("sp", "n", {"i": i})
        assert [e.id for e in await pending] == [1, 2, 3]
    try:
        with run_redis(tmp_path / "after", port=port):
            reset = await asyncio.wait_for(anext(following), 10)
            assert reset.type == "reset" and reset.id == 0
            for _ in range(20):  # the publisher's pooled connection is stale: one error
                try:
                    await publisher.publish("sp", "n", {"i": "again"})
                    break
                except RedisConnectionError:
                    await asyncio.sleep(0.1)
            (event,) = await take(following, 1)
            assert (event.id, event.data) == (1, {"i": "again"})
            await following.aclose()
    finally:
        await bus.close()
        await publisher.close()


async def test_events_carry_one_clock_in_order(buses) -> None:
    """`at` is the publication time, the same for every subscriber and never going back, so
    every node puts an event in the same window of the feed (node/feed.py)."""
    bus = buses()
    listener = bus.subscribe("sp", after=0)
    published = [await bus.publish("sp", "n", {"i": i}) for i in range(20)]
    received = await take(listener, 20)
    stamps = [e.at for e in published]
    assert stamps == sorted(stamps)
    assert abs(stamps[0] - time.time()) < 5
    assert [e.at for e in received] == pytest.approx(stamps, abs=1e-6)
    replay = await take(bus.subscribe("sp", after=0), 20)  # from the backlog
    assert [e.at for e in replay] == pytest.approx(stamps, abs=1e-6)
