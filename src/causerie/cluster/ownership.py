"""Which node runs a space's media: its owner.

A live space's audio (mixer, encoder, packager, recorder) runs on exactly one node at a time.

- Embedded (one node, no Redis): this node owns every space (`SoleOwner`).
- Redis (several nodes): a lease per space, `causerie:owner:{space}`, whose value is the owner's
  node id and advertised URL ("{node} {url}"), set with ``SET NX PX`` (`RedisOwnership`). Each
  node runs a supervisor (`RedisOwnership.supervise`) that, every half second, in one script call:
  renews the leases it holds (compare-and-extend), claims live spaces nobody holds (and starts
  their pipelines), and learns which of its pipelines lost their lease (stopped at once, so
  there are never two owners) or whose space is no longer live (ended elsewhere: stopped).
  If the owner dies, its leases expire after ``LEASE_TTL`` seconds and the next supervisor tick
  of another node claims them: a new run starts there (docs/failover.md). With Sentinel,
  renewals and claims count once a replica holds them (cluster/replication.py), and an owner
  rides out a failover of Redis that takes less than about 3 s without stopping.

Runs: `causerie:run:{space}` counts the runs of a space (each new owner's run gets the next
discontinuity sequence, so players know the timestamps restarted) and keeps the last media
sequence number a cleanly stopped run used (so a quick handover never reuses one).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from ..logs import RepeatedErrors
from ..media.broadcasts import ENDED_KEPT_SECONDS, Broadcasts
from .keys import KEYS, RedisKeys
from .redis_client import given_or_connect, text
from .replication import Replication

log = logging.getLogger(__name__)

LEASE_TTL = 5.0
"""Seconds a lease lives without renewal: how long a dead owner's spaces stay silent at most."""
SAFETY = 0.3
"""Of the lease's TTL, how much earlier than its expiry an owner cut off from Redis stops."""
TICK = 0.5
"""Seconds between supervisor ticks (renewals: ten per lease lifetime). Short, so that the
last renewal is recent when Redis goes away: an owner keeps its media on the air while Redis
fails over if a new primary is usable within `(1 - SAFETY) * LEASE_TTL - TICK` = 3 s."""
RETRY = 0.1
"""Seconds between a failed tick and the next attempt (each attempt retries for ~0.5 s)."""
CLAIMS_PER_TICK = 32
"""Live spaces one node claims per tick at most, so a mass failover spreads over the nodes."""
OWNER_CACHE_SECONDS = 0.5
"""How long a non-owner remembers who owns a space (it forwards every media request there)."""
OWNER_STALE_SECONDS = 10.0
"""How long the owner last seen is still used while Redis cannot say (an owner that really
died is found unreachable by the forwarder, which forgets it at once)."""
LOOKUP_PATIENCE = 0.2
"""How long a request waits for a look-up before going to the owner last seen (< a part)."""
LOOKUP_FAILED_SECONDS = 1.0
"""After a failed look-up, how long requests go to the owner last seen without waiting."""
RUN_KEPT_SECONDS = 7 * 86400
"""How long a space's run counter outlives its last claim."""

# KEYS[1]: the lease, KEYS[2]: the run hash. ARGV[1]: this node's lease value, ARGV[2]: TTL ms,
# ARGV[3]: how long the run hash is kept (s).
# Returns {1, runs, last msn or ''} if this node holds the lease now, else {0, owner}.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return {0, owner} end
local runs
if owner then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    runs = tonumber(redis.call('HGET', KEYS[2], 'n') or '1')
else
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    runs = redis.call('HINCRBY', KEYS[2], 'n', 1)
    redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return {1, runs, redis.call('HGET', KEYS[2], 'msn') or ''}
"""

# One call per tick for all spaces. KEYS[1]: the live set. ARGV: lease prefix, run prefix, this
# node's value, TTL ms, claims allowed, run TTL s, then the spaces this node runs.
# Returns a flat list of (space, status, runs, last msn): 'claimed' (start it), 'lost' (someone
# else holds it: stop it), 'gone' (no longer live: stop it). Renewed leases are not listed.
# The ids come from the live set inside the script: one round trip whatever their number.
_TICK = """
local me, ttl, claims = ARGV[3], ARGV[4], tonumber(ARGV[5])
local running, out = {}, {}
local function report(id, status, runs, msn)
    table.insert(out, id); table.insert(out, status)
    table.insert(out, runs); table.insert(out, msn)
end
for i = 7, #ARGV do running[ARGV[i]] = true end
local live = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    live[id] = true
    local key = ARGV[1] .. id
    local owner = redis.call('GET', key)
    if owner == me then
        redis.call('PEXPIRE', key, ttl)
        if not running[id] then
            local run = ARGV[2] .. id
            report(id, 'claimed', redis.call('HGET', run, 'n') or '1',
                   redis.call('HGET', run, 'msn') or '')
        end
    elseif not owner then
        if running[id] or claims > 0 then
            redis.call('SET', key, me, 'PX', ttl)
            if not running[id] then
                -- A new run here (a running one whose lease lapsed just keeps it).
                claims = claims - 1
                local run = ARGV[2] .. id
                local runs = redis.call('HINCRBY', run, 'n', 1)
                redis.call('EXPIRE', run, ARGV[6])
                report(id, 'claimed', runs, redis.call('HGET', run, 'msn') or '')
            end
        end
    elseif running[id] then
        report(id, 'lost', 0, '')
    end
end
for id, _ in pairs(running) do
    if not live[id] then
        report(id, 'gone', 0, '')
    end
end
return out
"""

# KEYS[1]: the lease, KEYS[2]: the run hash. ARGV[1]: this node's value, ARGV[2]: last msn or '',
# ARGV[3]: new TTL ms, or 0 to delete the lease. Only the holder changes its lease.
_LET_GO = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], 'msn', ARGV[2]) end
if tonumber(ARGV[3]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
    redis.call('DEL', KEYS[1])
end
return 1
"""


@dataclass(frozen=True)
class Owner:
    """The node that runs a space's media: `url` to reach it, `here` if it is this node."""

    node: str
    url: str
    here: bool


@dataclass(frozen=True)
class Claim:
    """What a new owner needs to continue a space's stream: its run count, last used MSN."""

    runs: int
    last_msn: int | None


class Spaces(Protocol):
    """What the supervisor asks the store: the live spaces, and whether one records."""

    async def live(self) -> list[tuple[str, bool]]:
        """(space id, records) of every live space."""

    async def recorded(self, space_id: str) -> bool:
        """Whether the space keeps its audio for replay."""


class Ownership(Protocol):
    """Who runs which space's media; the only place that knows whether there is a lease."""

    shared: bool
    """True when several nodes share the spaces (Redis): requests may need forwarding."""
    node_url: str

    async def go_live(self, space_id: str, record: bool) -> None:
        """The space just went live through this node: put it on the air (here, if possible)."""

    async def end(self, space_id: str) -> None:
        """The space ended: take it off the air if it runs here (its owner stops it anyway)."""

    async def owner(self, space_id: str) -> Owner | None:
        """Who runs the space's media now (None: nobody, e.g. between two owners)."""

    def forget(self, space_id: str) -> None:
        """Drop what is remembered about the space's owner (it did not answer)."""

    async def supervise(self, spaces: Spaces) -> None:
        """Keep this node's share of the live spaces on the air, until cancelled."""

    async def close(self) -> None:
        """Let go of every space (after the node's pipelines stopped)."""


class SoleOwner:
    """Embedded mode: one node, which owns every space."""

    shared = False

    def __init__(self, broadcasts: Broadcasts, node_url: str) -> None:
        self.broadcasts = broadcasts
        self.node_url = node_url
        self._me = Owner("local", node_url, True)

    async def go_live(self, space_id: str, record: bool) -> None:
        await self.broadcasts.start(space_id, record=record)

    async def end(self, space_id: str) -> None:
        await self.broadcasts.stop(space_id)

    async def owner(self, space_id: str) -> Owner | None:
        return self._me

    def forget(self, space_id: str) -> None:
        pass

    async def supervise(self, spaces: Spaces) -> None:
        """After a restart, put the spaces that were live back on the air (once)."""
        for space_id, record in await spaces.live():
            # A new run: its recording is appended to the space's, after a discontinuity.
            await self.broadcasts.start(space_id, record=record)
            log.info("resumed live space %s", space_id)

    async def close(self) -> None:
        pass


def parse_lease(value: str) -> tuple[str, str]:
    """(node id, URL) from a lease value "{node} {url}"."""
    node, _, url = value.partition(" ")
    return node, url


class RedisOwnership:
    """Leases in Redis: one owner per live space among the nodes sharing it."""

    shared = True

    def __init__(
        self,
        url: str | None,
        broadcasts: Broadcasts,
        node_url: str,
        *,
        client: aioredis.Redis | None = None,
        keys: RedisKeys = KEYS,
        ttl: float = LEASE_TTL,
        tick: float = TICK,
        claims_per_tick: int = CLAIMS_PER_TICK,
        replication: Replication | None = None,
    ) -> None:
        client, self._owns_client = given_or_connect(url, client, "RedisOwnership")
        self._redis = client
        self._replication = replication or Replication()
        self.broadcasts = broadcasts
        self.node_url = node_url
        self.node_id = secrets.token_hex(6)
        self.value = f"{self.node_id} {node_url}"
        self.keys = keys
        self.ttl = ttl
        self.tick = tick
        self.claims_per_tick = claims_per_tick
        self._claim = client.register_script(_CLAIM)
        self._tick = client.register_script(_TICK)
        self._let_go = client.register_script(_LET_GO)
        self._owners: dict[str, tuple[float, Owner | None]] = {}
        self._lookups: dict[str, asyncio.Future[Owner | None]] = {}
        self._failed: dict[str, float] = {}
        """When a look-up of the space last failed (cleared by one that succeeds)."""
        self.tick_errors = RepeatedErrors("ownership supervisor tick failed", logger=log)
        self._me = Owner(self.node_id, node_url, True)

    def _lease_key(self, space_id: str) -> str:
        return self.keys.owner(space_id)

    def _run_key(self, space_id: str) -> str:
        return self.keys.run(space_id)

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    # -- the lease, one space at a time ------------------------------------------------------

    async def claim(self, space_id: str) -> Claim | None:
        """Take the space's lease if nobody holds it (or renew it if this node does).

        Returns None when another node holds it.
        """
        got = await self._replication.run(
            self._claim,
            keys=[self._lease_key(space_id), self._run_key(space_id)],
            args=[self.value, self._ttl_ms, RUN_KEPT_SECONDS],
        )
        if int(got[0]) != 1:
            return None
        return Claim(int(got[1]), int(got[2]) if got[2] else None)

    async def release(self, space_id: str, keep: float = 0.0) -> bool:
        """Let go of the lease (only if this node holds it); with `keep`, hold it `keep` more
        seconds without renewal instead (an ended space: others keep forwarding to its ENDLIST)."""
        pipeline = self.broadcasts.get(space_id)
        last = pipeline.packager.last_part() if pipeline is not None else None
        done = await self._let_go(
            keys=[self._lease_key(space_id), self._run_key(space_id)],
            args=[self.value, str(last[0]) if last else "", round(keep * 1000)],
        )
        self._owners.pop(space_id, None)
        return bool(done)

    async def owner(self, space_id: str) -> Owner | None:
        """Who holds the space's lease, remembered for `OWNER_CACHE_SECONDS`.

        Concurrent look-ups of one space share one Redis read (a burst of listeners' requests
        is one GET, not one per request). If Redis cannot answer (down, failing over, or the
        client's pool exhausted), the owner last seen within `OWNER_STALE_SECONDS` is kept:
        an error reading the lease is not a change of owner. Nor does a listener's request wait
        for Redis's retries (a Sentinel failover takes seconds): with an owner last seen, it
        waits `LOOKUP_PATIENCE` at most, then goes there; after a failed look-up, at once.
        """
        now = time.monotonic()
        hit = self._owners.get(space_id)
        if hit is not None and now - hit[0] < OWNER_CACHE_SECONDS:
            return hit[1]
        pending = self._lookups.get(space_id)
        if pending is None:
            pending = asyncio.ensure_future(self._look_up(space_id))
            self._lookups[space_id] = pending
            pending.add_done_callback(lambda done: self._looked_up(space_id, done))
        stale = hit[1] if hit is not None and now - hit[0] < OWNER_STALE_SECONDS else None
        if stale is None:
            return await asyncio.shield(pending)
        failed = self._failed.get(space_id)
        if failed is not None and now - failed < LOOKUP_FAILED_SECONDS:
            return stale
        try:
            return await asyncio.wait_for(asyncio.shield(pending), LOOKUP_PATIENCE)
        except Exception:  # slow (a TimeoutError) or failing: the owner last seen
            return stale

    def _looked_up(self, space_id: str, done: asyncio.Future[Owner | None]) -> None:
        self._lookups.pop(space_id, None)
        if done.cancelled():
            return
        if done.exception() is not None:  # (retrieved: the waiters, if any, have it too)
            if len(self._failed) > 10_000:
                self._failed.clear()
            self._failed[space_id] = time.monotonic()
        else:
            self._failed.pop(space_id, None)

    async def _look_up(self, space_id: str) -> Owner | None:
        value = await self._redis.get(self._lease_key(space_id))
        found: Owner | None = None
        if value:
            node, url = parse_lease(text(value))
            found = self._me if node == self.node_id else Owner(node, url, False)
        if len(self._owners) > 10_000:
            self._owners.clear()
        self._owners[space_id] = (time.monotonic(), found)
        return found

    def forget(self, space_id: str) -> None:
        self._owners.pop(space_id, None)

    # -- going live and ending ---------------------------------------------------------------

    async def go_live(self, space_id: str, record: bool) -> None:
        """Claim the space at once and start it here; if another node holds it, it runs there."""
        claim = await self.claim(space_id)
        if claim is None:
            return
        await self._start(space_id, record, claim)

    async def _start(self, space_id: str, record: bool, claim: Claim) -> None:
        try:
            await self.broadcasts.start(
                space_id,
                record=record,
                run_number=claim.runs - 1,
                after_msn=claim.last_msn,
            )
        except Exception:
            log.exception("space %s: could not start its pipeline; letting it go", space_id)
            await self.release(space_id)
            return
        self._owners.pop(space_id, None)
        log.info("space %s: this node owns it now (run %d)", space_id, claim.runs)

    async def end(self, space_id: str) -> None:
        if space_id not in self.broadcasts.live_ids():
            return  # its owner's supervisor stops it within a tick
        await self.broadcasts.stop(space_id)
        await self.release(space_id, keep=ENDED_KEPT_SECONDS)

    # -- the supervisor ----------------------------------------------------------------------

    async def supervise(self, spaces: Spaces) -> None:
        """Every `tick` seconds: renew, claim, stop what was lost or ended. Until cancelled.

        Never two owners: a renewal sent at `t` keeps the lease until `t + ttl` at the latest,
        and another node may claim it from then on. So a tick that has not succeeded by
        `t + (1 - SAFETY) * ttl` (Redis down, or cut off by a partition, where a command may
        hang instead of failing) is abandoned, and this node stops what it runs before its
        leases can expire (tests/cluster/test_ownership.py).
        """
        renewed = time.monotonic()
        while True:
            started = time.monotonic()
            safe_until = renewed + (1 - SAFETY) * self.ttl
            pause = self.tick
            try:
                await asyncio.wait_for(self.step(spaces), max(0.05, safe_until - started))
                renewed = started
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a TimeoutError too: the tick hung
                # Try again at once rather than a tick later: during a Sentinel failover the
                # new primary is usable a moment after promotion, and every fraction of a
                # second before the deadline below is audio kept on the air.
                pause = RETRY
                self.tick_errors.record(exc, "the ownership supervisor's tick")
                if time.monotonic() >= safe_until:
                    for space_id in self.broadcasts.live_ids():
                        log.warning(
                            "space %s: leases not renewed for %.1f s; stopping here before "
                            "they can expire (never two owners)",
                            space_id,
                            time.monotonic() - renewed,
                        )
                        await self.broadcasts.stop(space_id, keep=False)
            await asyncio.sleep(max(0.05, pause - (time.monotonic() - started)))

    async def step(self, spaces: Spaces | None = None) -> list[tuple[str, str]]:
        """One supervisor tick; returns what changed, as (space, status) pairs."""
        running = self.broadcasts.live_ids()
        # With Sentinel, renewals and claims count once a replica holds them: a primary cut
        # off from its replicas (about to be replaced by one of them) cannot keep an owner
        # running beside the one that claims the space on the new primary (NotReplicated:
        # the tick failed, and the deadline above applies).
        reply = await self._replication.run(
            self._tick,
            keys=[self.keys.live_spaces],
            args=[
                self.keys.owner_prefix,
                self.keys.run_prefix,
                self.value,
                self._ttl_ms,
                self.claims_per_tick,
                RUN_KEPT_SECONDS,
                *running,
            ],
        )
        changes = []
        for i in range(0, len(reply), 4):
            space_id, status, runs, msn = reply[i : i + 4]
            changes.append((space_id, status))
            if status == "claimed":
                record = await spaces.recorded(space_id) if spaces is not None else True
                await self._start(space_id, record, Claim(int(runs), int(msn) if msn else None))
            elif status == "lost":
                # Another node holds the lease (ours expired): it runs the space now. Stop at
                # once and drop the pipeline, so its ENDLIST is never served.
                log.warning("space %s: lease lost to another node; stopping here", space_id)
                await self.broadcasts.stop(space_id, keep=False)
            elif status == "gone":
                log.info("space %s: no longer live; stopping here", space_id)
                await self.broadcasts.stop(space_id)
                await self.release(space_id, keep=ENDED_KEPT_SECONDS)
        return changes

    async def close(self) -> None:
        """Release the leases of the spaces this node ran, so another node takes them at its
        next tick (call after the pipelines stopped)."""
        try:
            for space_id in self.broadcasts.ended_ids():
                await self.release(space_id)
        except Exception:
            log.exception("could not release the leases (they expire by themselves)")
        finally:
            if self._owns_client:
                await self._redis.aclose()
