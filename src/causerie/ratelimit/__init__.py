"""Rate limits: token buckets, kept per node or shared through Redis, and the write limits."""

from .buckets import Rate, RateLimiter, retry_after_header
from .local import LocalRateLimits
from .protocol import RateLimits
from .redis import RedisRateLimits
from .writes import TooManyRequests, WriteLimits

__all__ = [
    "LocalRateLimits",
    "Rate",
    "RateLimiter",
    "RateLimits",
    "RedisRateLimits",
    "TooManyRequests",
    "WriteLimits",
    "retry_after_header",
]
