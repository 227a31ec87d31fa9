"""Listening now, in-process and on Redis alike: heartbeats in the window count, silence drops
out."""

import asyncio

import pytest

from causerie.counting import LocalPresence
from causerie.counting.redis_presence import RedisPresence


@pytest.fixture(params=["local", "redis"])
async def presences(request):
    """Makes presence counters: in-process, or RedisPresence on one Redis (like nodes)."""
    made = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def new(interval: float = 10):
        presence = (
            LocalPresence(interval=interval)
            if url is None
            else RedisPresence(url, interval=interval)
        )
        made.append(presence)
        return presence

    yield new
    for presence in made:
        if isinstance(presence, RedisPresence):
            await presence.close()


async def test_listeners_counted_and_dropped_after_the_window(presences) -> None:
    presence = presences(interval=10)
    for i in range(50):
        await presence.seen("sp", f"l{i}", 100.0)
    assert await presence.listening_now("sp", 100.0) == 50
    # Half keep heartbeating every interval; the others go quiet.
    for t in (110.0, 120.0, 130.0):
        for i in range(25):
            await presence.seen("sp", f"l{i}", t)
    assert await presence.listening_now("sp", 130.0) == 25
    assert await presence.listening_now("other", 130.0) == 0


async def test_everyone_gone_after_two_intervals(presences) -> None:
    presence = presences(interval=10)
    await presence.seen("sp", "l1", 100.0)
    assert await presence.listening_now("sp", 119.0) == 1
    assert await presence.listening_now("sp", 120.0) == 0
    presence.forget("sp")
    assert await presence.listening_now("sp", 100.0) == 0


async def test_a_count_includes_every_heartbeat_received_before(presences) -> None:
    """Batched or not: what was seen before `listening_now` is in the count, at once."""
    presence = presences(interval=10)
    for n in (1, 2, 999, 1000, 1001, 2500):
        await presence.seen("sp", f"x{n}", 200.0)  # a heartbeat in another space's batch
        for i in range(n):
            await presence.seen(f"sp{n}", f"l{i}", 200.0)
        count = await presence.listening_now(f"sp{n}", 200.5)
        assert abs(count - n) <= max(1, n * 0.02), (n, count)
    assert await presence.listening_now("sp", 200.5) == 6


async def test_batched_heartbeats_reach_redis_by_themselves(redis_url) -> None:
    """Two nodes: what one saw is counted by the other within the batching delay."""
    one, two = RedisPresence(redis_url, interval=10), RedisPresence(redis_url, interval=10)
    try:
        for i in range(30):
            await one.seen("sp", f"a{i}", 300.0)
            await two.seen("sp", f"b{i}", 300.0)
        await two.seen("sp", "a0", 300.0)  # the same listener through both nodes counts once
        assert await two.listening_now("sp", 300.0) >= 31  # its own, at least
        await asyncio.sleep(0.3)  # one's batch went out by itself
        assert await two.listening_now("sp", 301.0) == 60
        assert await one.listening_now("sp", 301.0) == 60
    finally:
        await one.close()
        await two.close()


async def test_heartbeats_in_bulk(redis_url) -> None:
    """A hundred thousand heartbeats go out in batches and are counted within 2 %."""
    presence = RedisPresence(redis_url, interval=10)
    try:
        for i in range(95_000):
            await presence.seen("sp", f"l{i}", 400.0)
        await asyncio.gather(*(presence.seen("sp", f"l{i}", 400.0) for i in range(90_000, 100_000)))
        count = await presence.listening_now("sp", 400.0)
        assert abs(count - 100_000) <= 2_000
    finally:
        await presence.close()
