"""Who is listening now, across nodes: the buckets of `LocalPresence` as HyperLogLogs in Redis.

`seen` adds the listener to `presence:{space}:{bucket}` (PFADD), a key that expires three
intervals after its last addition; `listening_now` is PFCOUNT over the current and previous
bucket keys, which Redis answers with the size of their union.

Heartbeats are batched: the Python client, not Redis, is the bottleneck (one command per
heartbeat tops out far below what one PFADD of a thousand ids does), so ids wait here for up to
`flush_after` seconds or until `batch` of them are waiting, then go in one round trip, one
PFADD per key. `listening_now` first sends what this node has seen, so a count always includes
every heartbeat this node received before it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import given_or_connect
from .presence import HEARTBEAT_INTERVAL

log = logging.getLogger(__name__)

FLUSH_AFTER = 0.1
BATCH = 1000


class RedisPresence:
    """`Presence` in Redis, shared by every node of a deployment."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        interval: float = HEARTBEAT_INTERVAL,
        keys: RedisKeys = KEYS,
        flush_after: float = FLUSH_AFTER,
        batch: int = BATCH,
    ) -> None:
        client, self._owns_client = given_or_connect(url, client, "RedisPresence")
        self._redis = client
        self.interval = interval
        self._keys = keys
        self._flush_after = flush_after
        self._batch = batch
        self._ttl = max(1, round(3 * interval))
        # Waiting ids: space -> bucket -> listener ids.
        self._pending: dict[str, dict[int, set[str]]] = {}
        self._waiting = 0
        self._timer: asyncio.TimerHandle | None = None
        self._write = asyncio.Lock()  # writes go out in the order their ids were taken
        self._tasks: set[asyncio.Task[Any]] = set()
        self._buckets: dict[str, set[int]] = {}  # buckets this node wrote, for `forget`
        self._forgetting: dict[str, asyncio.Task[None]] = {}
        self._counted: dict[str, tuple[int, int]] = {}

    def _bucket(self, now: float) -> int:
        return int(now // self.interval)

    def _key(self, space_id: str, bucket: int) -> str:
        return self._keys.presence(space_id, bucket)

    # -- recording -------------------------------------------------------------------------

    async def seen(self, space_id: str, listener_id: str, now: float) -> None:
        bucket = self._bucket(now)
        ids = self._pending.setdefault(space_id, {}).setdefault(bucket, set())
        if listener_id in ids:
            return
        ids.add(listener_id)
        self._waiting += 1
        if self._waiting >= self._batch:
            await self._flush(None, wait=False)
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._flush_after, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._flush_logged(), name="presence-flush")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_logged(self) -> None:
        try:
            await self._flush(None, wait=False)
        except Exception:
            log.exception("presence: sending heartbeats to Redis failed (they are dropped)")

    def _take(self, space_id: str | None) -> dict[str, dict[int, set[str]]]:
        if space_id is None:
            taken, self._pending = self._pending, {}
            self._waiting = 0
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return taken
        buckets = self._pending.pop(space_id, None)
        if buckets is None:
            return {}
        self._waiting -= sum(len(ids) for ids in buckets.values())
        return {space_id: buckets}

    async def _flush(self, space_id: str | None, *, wait: bool) -> None:
        """Send the waiting ids (of one space, or all). With `wait`, also wait for earlier
        writes still in flight, so that everything seen so far is in Redis on return."""
        taken = self._take(space_id)
        if not taken and not wait:
            return
        async with self._write:
            if not taken:
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for space, buckets in taken.items():
                    self._counted.pop(space, None)
                    written = self._buckets.setdefault(space, set())
                    for bucket, ids in buckets.items():
                        key = self._key(space, bucket)
                        pipe.pfadd(key, *ids)
                        pipe.expire(key, self._ttl)
                        written.add(bucket)
                    for old in [b for b in written if b < max(buckets) - 2]:
                        written.discard(old)
                await pipe.execute()

    # -- counting --------------------------------------------------------------------------

    async def listening_now(self, space_id: str, now: float) -> int:
        forgetting = self._forgetting.get(space_id)
        if forgetting is not None:
            await asyncio.shield(forgetting)
        await self._flush(space_id, wait=True)
        second = int(now)
        cached = self._counted.get(space_id)
        if cached is not None and cached[0] == second:
            return cached[1]
        current = self._bucket(now)
        count = await self._redis.pfcount(
            self._key(space_id, current - 1), self._key(space_id, current)
        )
        self._counted[space_id] = (second, int(count))
        return int(count)

    async def count_window(self, space_id: str, bucket: int) -> int:
        """Distinct listeners seen in `bucket` or the one before it: "listening now" as it was
        at the end of `bucket` (the buckets expire three intervals after their last use)."""
        await self._flush(space_id, wait=True)
        count = await self._redis.pfcount(
            self._key(space_id, bucket - 1), self._key(space_id, bucket)
        )
        return int(count)

    def forget(self, space_id: str) -> None:
        """Drop a space's buckets (after it ended): those this node wrote, in the background."""
        self._pending.pop(space_id, None)
        self._waiting = sum(len(i) for b in self._pending.values() for i in b.values())
        self._counted.pop(space_id, None)
        buckets = self._buckets.pop(space_id, set())
        if not buckets:
            return
        keys = [self._key(space_id, b) for b in buckets]

        async def delete() -> None:
            try:
                async with self._write:  # after any write of these buckets still in flight
                    await self._redis.delete(*keys)
            finally:
                if self._forgetting.get(space_id) is task:
                    del self._forgetting[space_id]

        task = asyncio.get_running_loop().create_task(delete(), name="presence-forget")
        self._forgetting[space_id] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Send what is waiting, then let go of the connection."""
        with contextlib.suppress(Exception):
            await self._flush(None, wait=True)
        for task in list(self._tasks):
            if not task.done():
                with contextlib.suppress(Exception):
                    await task
        if self._owns_client:
            await self._redis.aclose()
