"""Redis clients that ride out a Redis restart, or a Sentinel failover.

redis-py's asyncio client made with `from_url` does not retry by default: after Redis restarts,
every pooled connection fails once ("Connection closed by server") before it reconnects, so a
node would answer a burst of 500s for requests that could have succeeded. These clients retry
a command on a connection error, reconnecting, with a short jittered backoff: a restart that
takes less than a second or two costs a wait, not an error; while Redis stays down, a command
fails after about 2.5 s at most (redis-py retries the connection attempt inside each command
attempt: 3 × 3 tries) and the API answers 503 (api/errors.py); nothing is acknowledged that
Redis did not acknowledge.

With Sentinel (`redis+sentinel://…`, cluster/redis_url.py) every new connection asks the
sentinels which server is the primary (`SENTINEL MASTERS`, taking the first sentinel that
names one it does not consider down). When the primary dies, connections break; while no
primary is known a command fails fast (`MasterNotFoundError`, a connection error: retried,
then 503); once Sentinel has promoted a replica, the next attempt reaches it. A primary that
was demoted or cut off without dying may go on answering for seconds (NOREPLICAS, then
READONLY once Sentinel reconfigures it): `follow_primary`, which the node runs once a second,
moves the connections to the server the sentinels name.

A retried write may run twice if the connection broke after Redis executed it but before the
reply arrived. The store's writes are scripts that check before they change (space versions,
question and voter existence) and recognise their own earlier write, so they are idempotent; a
reaction total or a live event may be counted twice in that rare case.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.sentinel
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

from .redis_url import RedisTarget, parse_redis_url
from .replication import Replication

log = logging.getLogger(__name__)

RETRIES = 2
"""Attempts after the first, with jittered backoffs of at most 0.2 and 0.4 s."""


SENTINEL_TIMEOUT = 0.5
"""Seconds a sentinel has to connect and answer before the next one is asked."""


def _failing_over(state: dict[str, Any]) -> bool:
    """Whether a sentinel is leading a failover of this primary. Until that is over (up to
    its `failover-timeout`), the leader still lists the old primary, alive and well if it
    was demoted rather than killed, though it already names the new one to clients that ask
    GET-MASTER-ADDR-BY-NAME; redis-py asks SENTINEL MASTERS, so another sentinel is asked."""
    return "failover_in_progress" in state.get("flags", "")


class _Sentinels(Sentinel):
    def check_master_state(self, state: dict[str, Any], service_name: str) -> bool:
        return super().check_master_state(state, service_name) and not _failing_over(state)


class _SyncSentinels(redis.sentinel.Sentinel):
    def check_master_state(self, state: dict[str, Any], service_name: str) -> bool:
        return super().check_master_state(state, service_name) and not _failing_over(state)


class _SentinelManaged(aioredis.Redis):
    """The primary's client; closing it also closes its connections to the sentinels."""

    sentinels: _Sentinels | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinels is not None:
            await self.sentinels.aclose()


def _target(target: RedisTarget | str) -> RedisTarget:
    return target if isinstance(target, RedisTarget) else parse_redis_url(target)


# The clients that ask the sentinels: quick to give up on one, since the next is asked then.
_SENTINEL_OPTIONS = {
    "socket_connect_timeout": SENTINEL_TIMEOUT,
    "socket_timeout": SENTINEL_TIMEOUT,
    "decode_responses": True,
}


def connect(target: RedisTarget | str, *, decode_responses: bool = True) -> aioredis.Redis:
    """An asyncio client for `target` (a `--redis` URL) that retries commands across
    reconnections; with Sentinel, a client of whichever server is the primary now."""
    target = _target(target)
    options: dict[str, Any] = {
        "decode_responses": decode_responses,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.1, cap=0.4), RETRIES),
        "retry_on_error": [ConnectionError, TimeoutError, OSError],
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
    }
    if not target.sentinel:
        return aioredis.Redis.from_url(target.url, **options)
    sentinel = _Sentinels(list(target.sentinels), sentinel_kwargs=_SENTINEL_OPTIONS)
    client = sentinel.master_for(
        target.service,
        redis_class=_SentinelManaged,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )
    client.sentinels = sentinel
    return client


@contextlib.contextmanager
def connect_sync(target: RedisTarget | str) -> Iterator[redis.Redis]:
    """A synchronous text client for `target`, closed after the block (start-up and the
    command line only)."""
    target = _target(target)
    if not target.sentinel:
        client = redis.Redis.from_url(target.url, decode_responses=True)
        try:
            yield client
        finally:
            client.close()
        return
    sentinel = _SyncSentinels(list(target.sentinels), sentinel_kwargs=_SENTINEL_OPTIONS)
    client = sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        decode_responses=True,
        socket_connect_timeout=2,
    )
    try:
        yield client
    finally:
        client.close()
        for each in sentinel.sentinels:
            each.close()


def primary_of(client: aioredis.Redis) -> tuple[str, int] | None:
    """The primary `client`'s connections should reach, as last learnt from the sentinels
    (None: not Sentinel, or not known yet)."""
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool) and pool.master_address is not None:
        host, port = pool.master_address
        return str(host), int(port)
    return None


async def follow_primary(client: aioredis.Redis) -> bool:
    """Ask the sentinels which server is the primary; if it changed, move `client` there.

    Connections to a primary that died break and reconnect by themselves. One that was
    demoted or cut off from its replicas may stay up, answering NOREPLICAS (or READONLY)
    until Sentinel reconfigures it, seconds later: asking once a second moves the idle
    connections at once (redis-py closes them when the address changes) and the busy ones
    when they are released. Returns whether the primary changed.
    """
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return False
    before = pool.master_address
    after = await pool.get_master_address()
    if before is None or after == before:
        return False
    await pool.update_active_connections_for_reconnect()
    log.warning("the Redis primary is now %s:%s (was %s:%s)", *after, *before)
    return True


def warn_if_one_failover_stops_writes(target: RedisTarget) -> None:
    """Log a warning if, after the primary dies, fewer replicas would remain than the writes
    that matter wait for (`wait_replicas`): those writes, media leases included, would then
    be refused until a replica is back. Checked once at start; quiet if it cannot be."""
    if not target.sentinel or target.wait_replicas == 0:
        return
    try:
        with connect_sync(target) as client:
            replicas = int(client.info("replication").get("connected_slaves", 0))
    except redis.RedisError:
        return
    if replicas - 1 < target.wait_replicas:
        log.warning(
            "the Redis primary has %d replica(s) and writes wait for %d (wait_replicas): "
            "after a failover, writes and the spaces' media would stop until a replica is "
            "back; run %d replicas, or accept losing the last writes with wait_replicas=0",
            replicas,
            target.wait_replicas,
            target.wait_replicas + 1,
        )


def replication(target: RedisTarget | str) -> Replication:
    """What the writes that matter wait for with `target` (none with one Redis server)."""
    target = _target(target)
    return Replication(target.wait_replicas, target.wait_timeout)


def given_or_connect(
    url: str | None, client: aioredis.Redis | None, who: str, *, decode_responses: bool = True
) -> tuple[aioredis.Redis, bool]:
    """The `client` given, or a new one for `url` (`connect`); and whether the caller owns it
    (made it, so closes it)."""
    if client is not None:
        return client, False
    if url is None:
        raise ValueError(f"{who} needs a URL or a client")
    return connect(url, decode_responses=decode_responses), True


def text(reply: bytes | str) -> str:
    """A reply of a text client (`decode_responses=True`) as the `str` it is: redis-py types
    every reply `bytes | str`, whichever the client."""
    return reply.decode() if isinstance(reply, bytes) else reply


def binary(reply: bytes | str) -> bytes:
    """A reply of a binary client (`decode_responses=False`) as the `bytes` it is."""
    return reply.encode() if isinstance(reply, str) else reply


class RedisClients:
    """The node's two Redis clients, shared by everything it keeps in Redis: one for text
    (most keys) and one for bytes (the audience numbers' sketches). Two pools per node; with
    Sentinel, each follows the primary by itself. `replication`: what the writes that matter
    wait for."""

    def __init__(self, target: RedisTarget | str) -> None:
        self.target = _target(target)
        self.text = connect(self.target)
        self.binary = connect(self.target, decode_responses=False)
        self.replication = replication(self.target)

    async def follow_primary(self) -> None:
        """With Sentinel: both clients to the current primary (`follow_primary`)."""
        await follow_primary(self.text)
        await follow_primary(self.binary)

    async def close(self) -> None:
        await self.text.aclose()
        await self.binary.aclose()
