"""Audience numbers shared by two nodes through a real Redis: every number the deployment's."""

from __future__ import annotations

import pytest
import redis

from causerie.counting.redis_presence import RedisPresence
from causerie.counting.redis_stats import RedisStats

INTERVAL = 15.0
START = 1_800_000_000.0  # a bucket boundary (divisible by 15)


@pytest.fixture
async def nodes(redis_url: str):
    """Two nodes' stats (each with its own presence and connection) on one Redis."""
    made = []
    for name in ("one", "two"):
        presence = RedisPresence(redis_url)
        made.append((RedisStats(redis_url, presence, node_id=name), presence))
    yield made
    for stats, presence in made:
        await stats.close()
        await presence.close()


async def listen(stats: RedisStats, presence: RedisPresence, who: str, now: float) -> None:
    """What the join endpoint does for a listener: seen by presence, joined in the stats."""
    await presence.seen("s1", who, now)
    await stats.joined("s1", who, now)


async def test_two_nodes_count_one_audience(nodes) -> None:
    (one, presence_one), (two, presence_two) = nodes
    # 100 listeners reach node one, 100 node two, 50 of them both (their heartbeats move).
    for i in range(100):
        await listen(one, presence_one, f"listener-{i}", START + 1)
    for i in range(50, 150):
        await listen(two, presence_two, f"listener-{i}", START + 2)
    await one.join_attempted("s1", START + 1)

    after_bucket = START + INTERVAL + 1
    await one.share(after_bucket)
    await two.share(after_bucket)

    for stats in (one, two):  # either node answers with the deployment's numbers
        summary = await stats.summary("s1", after_bucket, started_at=START, ended_at=None)
        assert summary.joins == 200  # sums are exact
        assert summary.join_attempts == 1
        assert 147 <= summary.unique_listeners <= 153  # a union, not 200 and not 100
        # The first bucket's sample: the union across nodes (not the larger node's 100).
        assert 147 <= summary.peak <= 153
        assert summary.peak_at == START + INTERVAL
        assert 147 <= summary.listening_now <= 153


async def test_samples_are_kept_after_the_buckets_expire_from_memory(nodes, redis_url) -> None:
    (one, presence_one), (two, presence_two) = nodes
    for i in range(40):
        node, presence = (one, presence_one) if i % 2 else (two, presence_two)
        await listen(node, presence, f"listener-{i}", START + 3)
    # Two buckets later both nodes shared and sampled; a third node that saw nothing reads.
    later = START + 2 * INTERVAL + 5
    await one.share(later)
    await two.share(later)
    reader = RedisStats(redis_url, presence_one, node_id="three")
    summary = await reader.summary("s1", START + 10 * INTERVAL, started_at=START, ended_at=None)
    await reader.close()
    assert summary.joins == 40
    assert 39 <= summary.peak <= 41
    # Bucket 0 (its listeners) and bucket 1 (the window still holds bucket 0): two samples
    # of ~40, the rest 0: the average minute audience of the first minute is ~20.
    assert 19 <= summary.minutes[0].average <= 21
    assert summary.listening_now == 0  # long after: nobody is listening now


async def test_a_node_that_cannot_reach_redis_keeps_its_numbers_for_the_next_turn(
    redis_url: str,
) -> None:
    presence = RedisPresence(redis_url)
    stats = RedisStats("redis://127.0.0.1:1/0", presence, node_id="lost")
    await stats.joined("s1", "someone", START)
    with pytest.raises(redis.exceptions.ConnectionError):
        await stats.share(START + 1)
    assert "s1" in stats._changed  # not lost: shared at the next turn
    await stats.close()
    await presence.close()
