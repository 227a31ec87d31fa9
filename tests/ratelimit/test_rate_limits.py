"""Rate limits: both implementations (this node's memory, a real Redis) keep the same
buckets as `RateLimiter`, and the write limits turn a refusal into a Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from causerie.ratelimit import (
    LocalRateLimits,
    Rate,
    RateLimiter,
    RateLimits,
    RedisRateLimits,
    TooManyRequests,
    WriteLimits,
)

RATES = (Rate(per_second=1, burst=3), Rate(per_second=10, burst=5))


async def test_shared_buckets_match_the_in_memory_ones(redis_url: str) -> None:
    shared = RedisRateLimits(redis_url)
    per_token, per_ip = RateLimiter(RATES[0]), RateLimiter(RATES[1])
    try:
        # Three tokens' worth from one subject at t=0, then one more is refused for 1 s.
        for now, subject, ip in [
            (0.0, "a", "1.1.1.1"),
            (0.0, "a", "1.1.1.1"),
            (0.0, "a", "1.1.1.1"),
            (0.0, "a", "1.1.1.1"),
            (0.5, "a", "1.1.1.1"),
            (1.0, "a", "1.1.1.1"),
            # Other subjects from the same address use up the address's bucket (5).
            (1.0, "b", "1.1.1.1"),
            (1.0, "c", "1.1.1.1"),
            (1.0, "d", "1.1.1.1"),
        ]:
            expected = per_token.take(subject, now) or per_ip.take(ip, now)
            got = await shared.take("question", RATES, subject, ip, now)
            if expected is None:
                assert got is None, (now, subject)
            else:
                assert got is not None and abs(got - expected) < 1e-6, (now, subject, got)
    finally:
        await shared.close()


async def test_two_nodes_share_one_bucket(redis_url: str) -> None:
    one, two = RedisRateLimits(redis_url), RedisRateLimits(redis_url)
    try:
        answers = [
            await node.take("reaction", RATES, "a", "2.2.2.2", 100.0)
            for node in (one, two, one, two)
        ]
        assert answers[:3] == [None, None, None]  # the burst of 3, across both nodes
        assert answers[3] is not None and 0.9 < answers[3] <= 1.0
        # Kinds do not share buckets.
        assert await two.take("vote", RATES, "a", "2.2.2.2", 100.0) is None
    finally:
        await one.close()
        await two.close()


@pytest.fixture(params=["local", "redis"])
async def limits(request: pytest.FixtureRequest) -> AsyncIterator[RateLimits]:
    """Each implementation of the `RateLimits` protocol, for the same tests."""
    if request.param == "local":
        made: RateLimits = LocalRateLimits()
    else:
        made = RedisRateLimits(request.getfixturevalue("redis_url"))
    try:
        yield made
    finally:
        await made.close()


async def test_both_implementations_keep_the_same_buckets(limits: RateLimits) -> None:
    per_token, per_ip = RateLimiter(RATES[0]), RateLimiter(RATES[1])
    steps = [(0.0, "a", "1.1.1.1")] * 4 + [
        (0.5, "a", "1.1.1.1"),
        (1.0, "b", "1.1.1.1"),
        (1.0, "c", "1.1.1.1"),
        (1.0, "d", "1.1.1.1"),
        (1.0, "e", "9.9.9.9"),
    ]
    for now, subject, ip in steps:
        expected = per_token.take(subject, now) or per_ip.take(ip, now)
        got = await limits.take("question", RATES, subject, ip, now)
        assert (got is None) == (expected is None), (now, subject)
        if expected is not None:
            assert got is not None and abs(got - expected) < 1e-6


async def test_write_limits_raise_with_a_retry_after(limits: RateLimits) -> None:
    writes = WriteLimits(limits)
    for _ in range(3):  # a question's burst per token
        await writes.check("question", "t-1", "3.3.3.3", 50.0)
    with pytest.raises(TooManyRequests) as refused:
        await writes.check("question", "t-1", "3.3.3.3", 50.0)
    assert refused.value.retry_after == "5"  # 0.2 per second: one token back in 5 s
    assert "too many questions" in refused.value.message
