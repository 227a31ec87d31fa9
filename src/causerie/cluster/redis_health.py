"""Whether this node reaches its Redis, and how fast: what `/metrics` says about Redis.

Every node of a deployment depends on one Redis (spaces, events, counts, leases); when it is
slow or gone, the dashboard must show it before listeners notice. A background loop
(node/loops.py) sends a PING every few seconds through the node's own client, so the figure is
what the node's requests see: its network path, its connection pool, its retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["RedisHealth"]


class RedisHealth:
    """The last PING's outcome: `up`, its round trip, and failed pings so far."""

    def __init__(self, client: aioredis.Redis, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self.up = False
        self.round_trip: float | None = None
        """Seconds the last successful PING took (None before the first)."""
        self.failures = 0
        """PINGs that failed since the node started (a counter)."""

    async def check(self) -> bool:
        """PING once (with the client's retries): whether Redis answered."""
        started = self.clock()
        try:
            await self.client.ping()
        except (RedisError, OSError):
            self.up = False
            self.failures += 1
            return False
        self.round_trip = self.clock() - started
        self.up = True
        return True
