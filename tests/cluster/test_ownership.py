"""Media ownership leases against a real Redis: one owner per live space, failover on expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from causerie.cluster.keys import KEYS
from causerie.cluster.ownership import RedisOwnership, SoleOwner
from causerie.media.broadcasts import Broadcasts
from tests.harness.polling import eventually
from tests.harness.redis_server import run_redis


@pytest.fixture
async def live(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A Redis client; `live_space()` marks a space live as the store does (its sorted set)."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def make_live(client: aioredis.Redis, space_id: str) -> None:
    await client.zadd(KEYS.live_spaces, {space_id: 1.0})


def node(redis_url: str, name: str, ttl: float = 5.0) -> RedisOwnership:
    return RedisOwnership(redis_url, Broadcasts(), f"http://{name}.test:8080", ttl=ttl, tick=0.1)


async def close(*nodes: RedisOwnership) -> None:
    for each in nodes:
        await each.broadcasts.stop_all()
        await each.close()


async def test_claim_is_exclusive_and_names_the_owner(redis_url: str) -> None:
    one, two = node(redis_url, "one"), node(redis_url, "two")
    try:
        first = await one.claim("s1")
        assert first is not None and first.runs == 1 and first.last_msn is None
        assert await two.claim("s1") is None
        again = await one.claim("s1")  # the holder renews; still the first run
        assert again is not None and again.runs == 1
        seen_by_two = await two.owner("s1")
        assert seen_by_two is not None
        assert (seen_by_two.url, seen_by_two.here) == ("http://one.test:8080", False)
        seen_by_one = await one.owner("s1")
        assert seen_by_one is not None and seen_by_one.here
        assert await two.owner("nobody") is None
    finally:
        await close(one, two)


async def test_two_contenders_one_owner(redis_url: str) -> None:
    nodes = [node(redis_url, f"n{i}") for i in range(8)]
    try:
        claims = await asyncio.gather(*(n.claim("s1") for n in nodes))
        assert sum(claim is not None for claim in claims) == 1
    finally:
        await close(*nodes)


async def test_supervisor_claims_renews_and_survives_several_ttls(redis_url, live) -> None:
    one, two = node(redis_url, "one", ttl=0.4), node(redis_url, "two", ttl=0.4)
    try:
        await make_live(live, "s1")
        assert await one.step() == [("s1", "claimed")]
        assert one.broadcasts.live_ids() == ["s1"]  # started here
        for _ in range(8):  # 1.2 s: three TTLs, renewed by every tick of the owner
            await asyncio.sleep(0.15)
            assert await one.step() == []
            assert await two.step() == []
        assert two.broadcasts.live_ids() == []
        assert (await two.owner("s1")).url == "http://one.test:8080"
    finally:
        await close(one, two)


async def test_an_expired_lease_is_taken_and_the_old_owner_stops(redis_url, live) -> None:
    one, two = node(redis_url, "one", ttl=0.3), node(redis_url, "two", ttl=0.3)
    try:
        await make_live(live, "s1")
        await one.go_live("s1", record=False)
        old = one.broadcasts.get("s1")
        assert old is not None
        assert await two.step() == []  # held: nothing to claim
        await asyncio.sleep(0.45)  # the owner stalled past its TTL
        assert await two.step() == [("s1", "claimed")]
        new = two.broadcasts.get("s1")
        assert new is not None
        # The new run continues the stream: a discontinuity later, never an older MSN.
        assert new.packager.discontinuity_sequence == 1
        assert new.packager.first_msn >= old.packager.first_msn
        # The old owner learns at its next tick and drops its pipeline (no ENDLIST served).
        assert await one.step() == [("s1", "lost")]
        assert one.broadcasts.get("s1") is None
        assert (await one.owner("s1")).url == "http://two.test:8080"
    finally:
        await close(one, two)


async def test_release_hands_over_at_once_with_the_last_msn(redis_url, live) -> None:
    one, two = node(redis_url, "one"), node(redis_url, "two")
    try:
        await make_live(live, "s1")
        await one.go_live("s1", record=False)
        pipeline = one.broadcasts.get("s1")
        await pipeline.wait_for(pipeline.packager.first_msn, 1, timeout=5)
        last_msn = pipeline.packager.last_part()[0]
        await one.broadcasts.stop_all()
        await one.close()  # a clean shutdown lets go of its leases
        claim = await two.claim("s1")
        assert claim is not None and claim.runs == 2 and claim.last_msn == last_msn
    finally:
        await close(two)


async def test_an_ended_space_stops_on_its_owner_and_keeps_its_lease(redis_url, live) -> None:
    one, two = node(redis_url, "one"), node(redis_url, "two")
    try:
        await make_live(live, "s1")
        await one.go_live("s1", record=False)
        await live.zrem(KEYS.live_spaces, "s1")  # ended, through another node
        assert await one.step() == [("s1", "gone")]
        ended = one.broadcasts.get("s1")
        assert ended is not None and ended.packager.ended  # its ENDLIST is still served here
        assert await live.pttl(KEYS.owner("s1")) > 100_000  # others forward to it
        assert await two.step() == []  # nobody claims a space that is not live
    finally:
        await close(one, two)


async def test_an_owner_cut_off_from_redis_stops_after_its_ttl(tmp_path) -> None:
    """Its leases may be someone else's by then: it stops rather than run a second copy."""
    with run_redis(tmp_path / "redis") as redis:
        one = node(redis.url, "one", ttl=0.5)
        client = aioredis.Redis.from_url(redis.url, decode_responses=True)
        await make_live(client, "s1")
        await client.aclose()
        await one.go_live("s1", record=False)
        supervisor = asyncio.create_task(one.supervise(None))
        await asyncio.sleep(0.3)
        assert one.broadcasts.live_ids() == ["s1"]
    # The Redis server is gone: ticks fail; past the TTL the pipeline stops.
    try:
        await eventually(lambda: not one.broadcasts.live_ids(), 3, "the pipeline stopping")
        assert one.broadcasts.get("s1") is None  # dropped: no ENDLIST served from here
    finally:
        supervisor.cancel()
        await asyncio.gather(supervisor, return_exceptions=True)
        await close(one)


async def test_sole_owner_runs_everything_here() -> None:
    broadcasts = Broadcasts()
    sole = SoleOwner(broadcasts, "http://127.0.0.1:8080")
    try:
        await sole.go_live("s1", record=False)
        assert broadcasts.live_ids() == ["s1"]
        assert (await sole.owner("anything")).here
        await sole.end("s1")
        assert broadcasts.live_ids() == []
    finally:
        await broadcasts.stop_all()


async def test_a_burst_of_look_ups_is_one_redis_read(redis_url: str, live) -> None:
    """1 500 held listener requests for one space: one GET, not one per request (found from
    outside: each request read Redis until the pool ran out)."""
    owner, other = node(redis_url, "owner"), node(redis_url, "other")
    try:
        await make_live(live, "s1")
        assert await owner.claim("s1") is not None
        reads = 0
        real_get = other._redis.get

        async def counting_get(*args, **kwargs):
            nonlocal reads
            reads += 1
            await asyncio.sleep(0.05)  # a slow Redis: every request arrives while it waits
            return await real_get(*args, **kwargs)

        other._redis.get = counting_get  # type: ignore[method-assign]
        found = await asyncio.gather(*(other.owner("s1") for _ in range(1500)))
        assert reads == 1
        assert {o.url for o in found if o is not None} == {"http://owner.test:8080"}
    finally:
        await close(owner, other)


async def test_a_redis_error_is_not_a_change_of_owner(redis_url: str, live) -> None:
    from redis.exceptions import MaxConnectionsError

    owner, other = node(redis_url, "owner"), node(redis_url, "other")
    try:
        await make_live(live, "s1")
        await owner.claim("s1")
        assert (await other.owner("s1")).url == "http://owner.test:8080"

        async def exhausted(*args, **kwargs):
            raise MaxConnectionsError("Too many connections")

        other._redis.get = exhausted  # type: ignore[method-assign]
        await asyncio.sleep(0.6)  # past the cache: a fresh look-up, which fails
        still = await other.owner("s1")
        assert still is not None and still.url == "http://owner.test:8080"
        other.forget("s1")  # nothing remembered: the error is said, not hidden
        with pytest.raises(MaxConnectionsError):
            await other.owner("s1")
    finally:
        await close(owner, other)


async def test_a_look_up_redis_is_slow_to_answer_does_not_hold_listeners(
    redis_url: str, live
) -> None:
    """During a Sentinel failover a look-up takes Redis's retries (~0.5 s) to fail: requests
    forwarded to the owner last seen wait `LOOKUP_PATIENCE` at most, then none while the
    look-ups keep failing (each forwarded part would otherwise wait for them)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from causerie.cluster.ownership import LOOKUP_PATIENCE, OWNER_CACHE_SECONDS

    owner, other = node(redis_url, "owner"), node(redis_url, "other")
    try:
        await make_live(live, "s1")
        await owner.claim("s1")
        assert (await other.owner("s1")).url == "http://owner.test:8080"

        async def failing_over(*args, **kwargs):
            await asyncio.sleep(0.6)  # retried, then given up
            raise RedisConnectionError("No master found for 'causerie'")

        other._redis.get = failing_over  # type: ignore[method-assign]
        await asyncio.sleep(OWNER_CACHE_SECONDS + 0.05)
        waits = []
        for _ in range(6):  # a listener's requests, one part apart
            started = time.monotonic()
            found = await other.owner("s1")
            waits.append(time.monotonic() - started)
            assert found is not None and found.url == "http://owner.test:8080"
            await asyncio.sleep(0.2)
        assert waits[0] < LOOKUP_PATIENCE + 0.1, waits  # the first look-up: a short wait
        assert max(waits[3:]) < 0.05, waits  # it failed: no more waiting for Redis
    finally:
        await close(owner, other)


async def test_an_owner_partitioned_from_redis_stops_before_its_lease_can_expire(
    redis_url: str, live
) -> None:
    """A partition makes Redis commands hang rather than fail: the owner must not wait for
    them. It stops while its lease is still its own, so another node that claims the space
    after expiry never runs beside it (never two streams for one space)."""
    one = node(redis_url, "one", ttl=1.5)
    await make_live(live, "s1")
    await one.go_live("s1", record=False)
    supervisor = asyncio.create_task(one.supervise(None))
    try:
        await asyncio.sleep(0.5)  # a few good ticks
        assert one.broadcasts.live_ids() == ["s1"]

        async def hang(*args, **kwargs):
            await asyncio.sleep(3600)  # packets dropped: no answer, no error

        one._tick = hang  # type: ignore[method-assign]
        await eventually(lambda: not one.broadcasts.live_ids(), 3, "the pipeline stopping")
        remaining_ms = await live.pttl(KEYS.owner("s1"))
        assert remaining_ms > 0, "stopped only after the lease could be someone else's"
        assert one.broadcasts.get("s1") is None  # dropped: no ENDLIST served from here
    finally:
        supervisor.cancel()
        await asyncio.gather(supervisor, return_exceptions=True)
        await close(one)
