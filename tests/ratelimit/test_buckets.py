"""Token buckets: burst, refill, retry-after, bounded memory."""

from causerie.ratelimit.buckets import Rate, RateLimiter, retry_after_header


def test_burst_then_refill() -> None:
    limiter = RateLimiter(Rate(per_second=2, burst=3))
    assert [limiter.take("a", 0.0) for _ in range(3)] == [None, None, None]
    wait = limiter.take("a", 0.0)
    assert wait is not None and abs(wait - 0.5) < 1e-9
    assert limiter.take("b", 0.0) is None  # keys are independent
    assert limiter.take("a", 0.5) is None
    assert limiter.take("a", 0.5) is not None


def test_memory_stays_bounded() -> None:
    limiter = RateLimiter(Rate(per_second=1, burst=1), max_keys=100)
    for i in range(1000):
        limiter.take(f"k{i}", float(i))
    assert len(limiter._buckets) <= 100


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"
