"""Rate limits shared through a real Redis: the same arithmetic as the in-memory buckets."""

from __future__ import annotations

from causerie.ratelimit import Rate, RateLimiter
from causerie.redis_ratelimit import RedisRateLimits

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
