"""Audience numbers shared by every node of a deployment (Redis mode).

Each node records what it sees in a `LocalStats`, the same hot path as the embedded default,
and shares it: every `SHARE_INTERVAL` seconds it writes the state of each space whose numbers
changed to Redis, one field per node (`stats:{space}`: node id -> `SpaceStats.to_bytes()`).
Reading merges every node's state: sums and sketch unions are exact, so joins, heartbeats,
unique listeners and replay plays are the deployment's, whichever node each event reached.

A *sample* ("listening now" at the end of a 15 s bucket; peak and average minute audience are
made of them) cannot be merged from per-node counts: a listener whose heartbeats reach two nodes
would count twice in a sum and the larger count would leave out the other node's listeners. So
samples are taken from the buckets every node shares in Redis (`RedisPresence`: the union of
buckets k-1 and k, the same number "listening now" shows) by each node for the spaces it saw,
a few seconds after each bucket ends, and kept in `stats:{space}:samples` (the larger value
written wins, since a later count includes heartbeats a node sent late).

What a crash loses: the events a node recorded in its last `SHARE_INTERVAL` (about a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

import redis.asyncio as aioredis

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import binary, given_or_connect
from .local_stats import LocalStats
from .presence import HEARTBEAT_INTERVAL
from .redis_presence import RedisPresence
from .stats import SpaceStats, Summary

log = logging.getLogger(__name__)

SHARE_INTERVAL = 1.0
"""Seconds between two writes of a node's changed numbers to Redis."""
KEEP_SECONDS = 90 * 86_400
"""How long the numbers of a space stay in Redis after their last change."""

# HSET the sample if it is larger than the one there (several nodes take the same sample).
_MAX_SAMPLE = """
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > old then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class RedisStats:
    """`AudienceStats` shared through Redis by every node (see the module's docstring)."""

    def __init__(
        self,
        url: str | None = None,
        presence: RedisPresence | None = None,
        *,
        client: aioredis.Redis | None = None,
        interval: float = HEARTBEAT_INTERVAL,
        keys: RedisKeys = KEYS,
        node_id: str | None = None,
    ) -> None:
        client, self._owns_client = given_or_connect(
            url, client, "RedisStats", decode_responses=False
        )
        self._redis = client
        self.presence = presence or RedisPresence(url, interval=interval, keys=keys)
        self.interval = interval
        self.local = LocalStats(interval)
        self.node_id = node_id or uuid.uuid4().hex
        self._keys = keys
        self._changed: set[str] = set()
        self._last_event: dict[str, float] = {}  # space -> when this node last saw an event
        self._sampled: dict[str, int] = {}  # space -> the last bucket this node sampled
        self._sharer: asyncio.Task[None] | None = None
        self._max_sample = self._redis.register_script(_MAX_SAMPLE)

    def _key(self, space_id: str) -> str:
        return self._keys.stats(space_id)

    def _samples_key(self, space_id: str) -> str:
        return self._keys.stats_samples(space_id)

    # -- recording: this node's share, in memory until the next `share` --------------------

    async def join_attempted(self, space_id: str, now: float) -> None:
        await self.local.join_attempted(space_id, now)
        self._recorded(space_id, now)

    async def joined(self, space_id: str, listener_id: str, now: float) -> None:
        await self.local.joined(space_id, listener_id, now)
        self._recorded(space_id, now)

    async def heartbeat(self, space_id: str, listener_id: str, now: float) -> None:
        await self.local.heartbeat(space_id, listener_id, now)
        self._recorded(space_id, now)

    async def record_replay_listen(self, space_id: str, client_key: str, now: float) -> None:
        await self.local.record_replay_listen(space_id, client_key, now)
        self._recorded(space_id, now)

    def _recorded(self, space_id: str, now: float) -> None:
        self._changed.add(space_id)
        self._last_event[space_id] = now

    # -- sharing ----------------------------------------------------------------------------

    async def share(self, now: float) -> None:
        """Write the numbers that changed here, and take the samples of buckets that ended."""
        changed, self._changed = self._changed, set()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for space_id in changed:
                    stats = self.local.spaces.get(space_id)
                    if stats is None:
                        continue
                    pipe.hset(self._key(space_id), self.node_id, stats.to_bytes())
                    pipe.expire(self._key(space_id), KEEP_SECONDS)
                await pipe.execute()
        except Exception:
            self._changed |= changed  # written at the next turn
            raise
        await self._take_samples(now)

    async def _take_samples(self, now: float) -> None:
        """For each space seen here lately, the sample of every bucket that ended since the last
        turn (the presence buckets expire three buckets after their last use; a bucket's sample
        is the union with the bucket before, so the one after the last event counts too)."""
        ended = int(now // self.interval) - 1
        for space_id, last_event in list(self._last_event.items()):
            last = int(last_event // self.interval) + 1
            first = max(self._sampled.get(space_id, ended - 1) + 1, ended - 1)
            for bucket in range(first, min(ended, last) + 1):
                count = await self.presence.count_window(space_id, bucket)
                await self._max_sample(
                    keys=[self._samples_key(space_id)], args=[bucket, count, KEEP_SECONDS]
                )
            self._sampled[space_id] = ended
            if ended >= last:
                del self._last_event[space_id]  # quiet here: nothing more to sample

    async def keep_shared(
        self, every: float = SHARE_INTERVAL, clock: Callable[[], float] = time.time
    ) -> None:
        """Share every `every` seconds until cancelled; a failed turn is logged and retried."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.share(clock())
            except Exception as exc:  # Redis away: the numbers wait here for the next turn
                log.warning("sharing the audience numbers with Redis failed: %s", exc)

    # -- reading ----------------------------------------------------------------------------

    async def merged(self, space_id: str) -> tuple[SpaceStats, dict[int, int]]:
        """Every node's numbers of the space merged, and the shared samples (bucket -> count)."""
        states, samples = await asyncio.gather(
            self._redis.hgetall(self._key(space_id)),
            self._redis.hgetall(self._samples_key(space_id)),
        )
        merged = SpaceStats(self.interval)
        mine = self.local.spaces.get(space_id)
        for node, data in states.items():
            node = node.decode() if isinstance(node, bytes) else node
            if node == self.node_id and mine is not None:
                continue  # this node's own numbers are newer in memory
            try:
                merged.merge(SpaceStats.from_bytes(binary(data)))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("the shared numbers of space %s from node %s: %s", space_id, node, exc)
        if mine is not None:
            merged.merge(mine)
        return merged, {int(k): int(v) for k, v in samples.items()}

    async def summary(
        self, space_id: str, now: float, started_at: float | None, ended_at: float | None
    ) -> Summary:
        merged, samples = await self.merged(space_id)
        merged.advance(now)  # samples of the buckets that ended since, from the merged sketches
        for bucket, value in samples.items():  # overridden by the shared ones where taken
            if value > 0:
                merged.samples[bucket] = value
            else:
                merged.samples.pop(bucket, None)
        summary = merged.summarize(now, started_at, ended_at)
        # "Listening now" is the shared presence's, as on every other page.
        return replace(summary, listening_now=await self.presence.listening_now(space_id, now))

    def forget(self, space_id: str) -> None:
        """Drop this node's in-memory state of a space (what is in Redis stays)."""
        self.local.forget(space_id)
        self._sampled.pop(space_id, None)
        self._changed.discard(space_id)

    def start(self) -> None:
        """Share this node's numbers every few seconds from now on, in a task of its own."""
        if self._sharer is None:
            self._sharer = asyncio.create_task(self.keep_shared(), name="share-stats")

    async def close(self) -> None:
        """Stop sharing in the background, share what is left, then let go of the connection."""
        sharer, self._sharer = self._sharer, None
        if sharer is not None:
            sharer.cancel()
            await asyncio.gather(sharer, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.share(time.time())
        if self._owns_client:
            await self._redis.aclose()
