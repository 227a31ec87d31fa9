"""The shared bus for several nodes: a Redis Stream per space as the backlog, pub/sub to wake.

Publishing is one Lua script, so it is atomic and totally ordered across nodes: INCR the space's
sequence, XADD the event to the space's stream with the id `{seq}-0` (trimmed to the backlog),
PUBLISH it. Every node therefore sees the same ids in the same order.

Each node holds one pub/sub connection for all its subscribers. It subscribes to a space's
channel when the first local subscriber of that space arrives (and drops it a while after the
last one left), and fans events out in-process the same way `LocalBus` does: a small window of
recent events per space and one shared future that wakes every waiting subscriber.

With Sentinel the pub/sub connection follows the primary: when the primary dies it breaks, and
redis-py reconnects to the promoted one and subscribes again (then the gap is read from the
stream); when the sentinels name another primary while it is still up (a demoted primary, or
one cut off from its replicas), the reader moves it there (cluster/redis_client.py
`follow_primary` learns the address once a second).

A subscriber never loses or repeats an event between the replay and the live part: the node's
subscription to the channel is confirmed by Redis *before* the subscriber reads where the
space stands, and whatever it needs that is not in the in-process window (the replay, or a gap
after a lost connection) is read from the stream by id, so every id above its cursor is
delivered exactly once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import given_or_connect, primary_of
from .local import BACKLOG
from .protocol import Event

log = logging.getLogger(__name__)

STREAM_TTL = 7 * 86400
"""A space's event stream and sequence expire after a week without events."""
LINGER = 30.0
"""Seconds a node stays subscribed to a space's channel after its last local subscriber left."""
STUCK = 10.0
"""Seconds after which a (un)subscription Redis did not confirm is sent again."""

# KEYS: sequence, stream. ARGV: type, data (JSON), backlog, channel, ttl.
# The stream is trimmed exactly (MAXLEN =), so the backlog is what it says on every node. The
# publication time is Redis's clock (TIME), never earlier than the event before: one clock for
# every node, so every node puts an event in the same window (node/feed.py).
_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local now = redis.call('TIME')
local at = tonumber(now[1]) + tonumber(now[2]) / 1000000
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if last[1] then
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'a' then at = math.max(at, tonumber(fields[i + 1])) end
  end
end
local stamp = string.format('%.6f', at)
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[3], seq .. '-0',
  't', ARGV[1], 'd', ARGV[2], 'a', stamp)
redis.call('PUBLISH', ARGV[4], seq .. '\\n' .. ARGV[1] .. '\\n' .. stamp .. '\\n' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {seq, stamp}
"""

_SUBSCRIBING, _SUBSCRIBED, _UNSUBSCRIBING = "subscribing", "subscribed", "unsubscribing"


class _Channel:
    """This node's view of one space: recent events received live, and who waits for them."""

    def __init__(self, window: int) -> None:
        # Contiguous ids, ending with the latest event received over pub/sub.
        self.events: deque[Event] = deque(maxlen=window)
        self.known = 0  # the highest id known to exist (received, or read from Redis)
        self.next: asyncio.Future[None] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.state = _SUBSCRIBING
        self.changed_at = time.monotonic()  # when `state` last changed
        self.subscribers = 0
        self.idle_since = time.monotonic()

    def receive(self, event: Event) -> None:
        if self.events and event.id <= self.events[-1].id:
            return  # seen already
        if self.events and event.id != self.events[-1].id + 1:
            self.events.clear()  # a gap (a lost connection): the missing ones come from Redis
        self.events.append(event)
        self.known = max(self.known, event.id)
        self.wake()

    def wake(self) -> None:
        waiter, self.next = self.next, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class RedisBus:
    """`Bus` on Redis, shared by every node of a deployment."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        backlog: int = BACKLOG,
        keys: RedisKeys = KEYS,
        linger: float = LINGER,
    ) -> None:
        client, self._owns_client = given_or_connect(url, client, "RedisBus")
        self._redis = client
        self.backlog = backlog
        self._keys = keys
        self._linger = linger
        self._publish = client.register_script(_PUBLISH)
        self._pubsub = client.pubsub()
        self._channels: dict[str, _Channel] = {}
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- keys ------------------------------------------------------------------------------

    def _seq_key(self, space_id: str) -> str:
        return self._keys.event_seq(space_id)

    def _stream_key(self, space_id: str) -> str:
        return self._keys.events(space_id)

    def _channel_name(self, space_id: str) -> str:
        return self._keys.events_channel(space_id)

    def _space_of(self, channel: str) -> str | None:
        return self._keys.space_of_events_channel(channel)

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, space_id: str, type: str, data: dict[str, Any]) -> Event:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        seq, stamp = await self._publish(
            keys=[self._seq_key(space_id), self._stream_key(space_id)],
            args=[type, body, self.backlog, self._channel_name(space_id), STREAM_TTL],
        )
        return Event(int(seq), type, data, float(stamp))

    async def last_id(self, space_id: str) -> int:
        return int(await self._redis.get(self._seq_key(space_id)) or 0)

    # -- the node's one pub/sub connection -------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _channel(self, space_id: str) -> _Channel:
        """The space's channel, subscribed (confirmed by Redis) before this returns."""
        channel = self._channels.get(space_id)
        if channel is None:
            channel = self._channels[space_id] = _Channel(self.backlog)
            # A task of its own: a subscriber leaving meanwhile must not cut the command short.
            self._spawn(self._send_subscribe(space_id, channel))
        channel.subscribers += 1
        try:
            await asyncio.shield(channel.ready)
        except BaseException:
            self._leave(channel)
            raise
        return channel

    async def _send_subscribe(self, space_id: str, channel: _Channel) -> None:
        try:
            await self._pubsub.subscribe(self._channel_name(space_id))
        except Exception as exc:
            if self._channels.get(space_id) is channel:
                del self._channels[space_id]
            if not channel.ready.done():
                channel.ready.set_exception(exc)
                channel.ready.exception()  # retrieved: only its waiters care
            return
        if self._reader is None and not self._closed:  # reading needs the connection made
            self._reader = asyncio.create_task(self._read(), name="redis-bus-reader")

    def _leave(self, channel: _Channel) -> None:
        channel.subscribers -= 1
        if channel.subscribers == 0:
            channel.idle_since = time.monotonic()

    async def _read(self) -> None:
        """Receive every pub/sub message of this node and hand it to its channel."""
        last_sweep = time.monotonic()
        while not self._closed:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection dropped: redis-py reconnects and
                if self._closed:  # subscribes again; the gap is read from the streams
                    return
                log.warning("redis bus: pub/sub connection lost (%s); reconnecting", exc)
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._handle(message)
            await self._follow_primary()
            now = time.monotonic()
            if now - last_sweep >= min(self._linger, 5.0):
                last_sweep = now
                await self._sweep(now)

    async def _follow_primary(self) -> None:
        """Reconnect the pub/sub connection if it is not on the primary the sentinels name:
        events are published there, so a connection left on the old one would hear none."""
        primary = primary_of(self._redis)
        connection = self._pubsub.connection
        if primary is None or connection is None or not connection.is_connected:
            return
        if (str(connection.host), int(connection.port)) != primary:
            log.warning("redis bus: moving to the new primary %s:%s", *primary)
            with contextlib.suppress(RedisError, OSError):
                await connection.disconnect()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        name = message.get("channel")
        space_id = self._space_of(name) if isinstance(name, str) else None
        if space_id is None:
            return
        channel = self._channels.get(space_id)
        if channel is None:
            return
        if kind == "message":
            seq, type, stamp, body = message["data"].split("\n", 3)
            channel.receive(Event(int(seq), type, json.loads(body), float(stamp)))
        elif kind == "subscribe":
            if channel.state == _SUBSCRIBING:
                channel.state, channel.changed_at = _SUBSCRIBED, time.monotonic()
                if not channel.ready.done():
                    channel.ready.set_result(None)
            elif channel.state == _SUBSCRIBED:
                # Subscribed again after a reconnection: events may have been missed.
                self._spawn(self._catch_up(space_id, channel))
        elif kind == "unsubscribe" and channel.state == _UNSUBSCRIBING:
            if channel.subscribers > 0:  # someone came back meanwhile
                channel.state, channel.changed_at = _SUBSCRIBING, time.monotonic()
                self._spawn(self._pubsub.subscribe(self._channel_name(space_id)))
            else:
                del self._channels[space_id]

    async def _catch_up(self, space_id: str, channel: _Channel) -> None:
        for attempt in range(8):  # the pool's first connections may be stale after an outage
            try:
                latest = await self.last_id(space_id)
                break
            except (RedisError, OSError):
                await asyncio.sleep(0.05 * 2**attempt)
        else:
            log.warning("redis bus: could not catch up with space %s", space_id)
            return
        if latest < channel.known:
            # Redis came back without its data: ids start again, subscribers start over.
            channel.events.clear()
        channel.known = latest
        channel.wake()

    async def _sweep(self, now: float) -> None:
        """Stop following spaces nobody here followed for a while; retry what got no answer."""
        for space_id, channel in list(self._channels.items()):
            name = self._channel_name(space_id)
            if channel.state != _SUBSCRIBED and now - channel.changed_at >= STUCK:
                # No confirmation (the connection dropped meanwhile): subscribe again, which
                # Redis confirms whatever the subscription's state was.
                channel.state, channel.changed_at = _SUBSCRIBING, now
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.subscribe(name)
            elif (
                channel.state == _SUBSCRIBED
                and channel.subscribers == 0
                and now - channel.idle_since >= self._linger
            ):
                channel.state, channel.changed_at = _UNSUBSCRIBING, now
                channel.ready = asyncio.get_running_loop().create_future()
                channel.events.clear()
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(name)

    # -- subscribing -----------------------------------------------------------------------

    async def _range(self, space_id: str, first: int, last: int) -> list[Event]:
        # A text client: ids and fields are str. redis-py types an entry `(bytes | str | None,
        # dict | None)` for every command (XCLAIM may name deleted entries), XRANGE included.
        entries = cast(
            "list[tuple[str, dict[str, str]]]",
            await self._redis.xrange(self._stream_key(space_id), f"{first}-0", f"{last}-0"),
        )
        return [
            Event(
                int(entry_id.split("-", 1)[0]),
                fields["t"],
                json.loads(fields["d"]),
                float(fields.get("a", 0.0)),
            )
            for entry_id, fields in entries
        ]

    async def subscribe(
        self, space_id: str, after: int | None = None, keepalive: float | None = None
    ) -> AsyncIterator[Event | None]:
        if self._closed:
            return
        channel = await self._channel(space_id)
        try:
            # Read only now that the channel is subscribed: any later event arrives live.
            latest = await self.last_id(space_id)
            channel.known = max(channel.known, latest)
            cursor = latest if after is None else after
            if cursor > latest:
                # An id Redis never gave (its data was lost or expired): start over.
                cursor = latest
                yield Event(latest, "reset", {"reason": "the server restarted"})
            while not self._closed:
                if cursor > channel.known:
                    # (Its id is read once: more may arrive while the reset is being handed.)
                    cursor = channel.known
                    yield Event(cursor, "reset", {"reason": "the server restarted"})
                if cursor < channel.known:
                    window = list(channel.events)
                    if window and window[0].id <= cursor + 1 <= window[-1].id:
                        for event in window:
                            if event.id > cursor:
                                yield event
                                cursor = event.id
                        continue
                    # Not in this node's window: from the stream in Redis, up to the window.
                    last = window[0].id - 1 if window and window[0].id > cursor else channel.known
                    try:
                        missed = await self._range(space_id, cursor + 1, last)
                    except (RedisError, OSError):
                        if self._closed:
                            return
                        raise
                    oldest = missed[0].id if missed else last + 1
                    if cursor + 1 < oldest:
                        cursor = oldest - 1
                        yield Event(cursor, "reset", {"reason": "missed events"})
                    for event in missed:
                        if event.id > cursor:
                            yield event
                            cursor = event.id
                    continue
                if channel.next is None:
                    channel.next = asyncio.get_running_loop().create_future()
                try:
                    # shield: one subscriber timing out must not cancel the shared future.
                    await asyncio.wait_for(asyncio.shield(channel.next), keepalive)
                except TimeoutError:
                    yield None
        finally:
            self._leave(channel)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for channel in self._channels.values():
            if not channel.ready.done():
                channel.ready.set_result(None)
            channel.wake()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()
        if self._owns_client:
            await self._redis.aclose()
