"""Rate limits shared by every node through Redis (`RateLimits` for several nodes).

With several nodes behind a balancer, limits kept per node would let a client that spreads its
requests over N nodes do N times as much. Here both of an action's buckets – the token's and the
address's – live in Redis and are taken in one round trip by a script (the same token-bucket
arithmetic as `RateLimiter.take`): the token's bucket first, the address's only if the token
may act, as `LocalRateLimits` does. Buckets expire once they would be full again.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import given_or_connect
from .buckets import Rate

# KEYS: the two buckets. ARGV: rate and burst of each, then now (seconds). Returns the seconds
# to wait, as text ("0": allowed).
_TAKE = """
local now = tonumber(ARGV[5])
for i = 1, 2 do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local saved = redis.call('HMGET', KEYS[i], 't', 'at')
  local tokens = tonumber(saved[1]) or burst
  local at = tonumber(saved[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < 1 then
    redis.call('HSET', KEYS[i], 't', tostring(tokens), 'at', tostring(now))
    redis.call('EXPIRE', KEYS[i], math.ceil(burst / rate) + 1)
    return tostring((1 - tokens) / rate)
  end
  redis.call('HSET', KEYS[i], 't', tostring(tokens - 1), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[i], math.ceil(burst / rate) + 1)
end
return '0'
"""


class RedisRateLimits:
    """Token buckets in Redis for pairs of (per-token, per-address) limits."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        keys: RedisKeys = KEYS,
    ) -> None:
        self._redis, self._owns_client = given_or_connect(url, client, "RedisRateLimits")
        self._keys = keys
        self._take = self._redis.register_script(_TAKE)

    async def take(
        self, kind: str, rates: tuple[Rate, Rate], subject: str, ip: str, now: float
    ) -> float | None:
        """Take a token from the subject's bucket, then the address's: None if allowed, else the
        seconds to wait before trying again."""
        per_token, per_ip = rates
        keys = list(self._keys.limit(kind, subject, ip))
        args = [per_token.per_second, per_token.burst, per_ip.per_second, per_ip.burst, now]
        wait = float(await self._take(keys=keys, args=args))
        return wait if wait > 0 else None

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
