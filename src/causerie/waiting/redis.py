"""The waiting rooms' lines in Redis, shared by several nodes (one script per operation)."""

from __future__ import annotations

import redis.asyncio as aioredis

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import given_or_connect
from ..domain.waiting_room import Line
from .protocol import LINE_TTL, new_epoch

_FIELDS = ("epoch", "issued", "admitted", "arrived", "advanced_at", "granted_at", "rate")

# KEYS[1] the line; ARGV[1] a new epoch (used if the line is new), ARGV[2] the TTL.
_TAKE = """
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local number = redis.call('HINCRBY', KEYS[1], 'issued', 1)
local admitted = tonumber(redis.call('HGET', KEYS[1], 'admitted') or '0')
local arrived = tonumber(redis.call('HGET', KEYS[1], 'arrived') or '0')
if number <= admitted and number > arrived then
  redis.call('HSET', KEYS[1], 'arrived', number)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('HMGET', KEYS[1], unpack(ARGV, 3))
"""

# ARGV[1] the ticket's epoch, ARGV[2] its number, ARGV[3] the TTL.
_PRESENT = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local number = tonumber(ARGV[2])
local issued = tonumber(redis.call('HGET', KEYS[1], 'issued') or '0')
if epoch ~= ARGV[1] or number > issued then
  return false
end
local admitted = tonumber(redis.call('HGET', KEYS[1], 'admitted') or '0')
local arrived = tonumber(redis.call('HGET', KEYS[1], 'arrived') or '0')
if number <= admitted and number > arrived then
  redis.call('HSET', KEYS[1], 'arrived', number)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('HMGET', KEYS[1], unpack(ARGV, 4))
"""

# ARGV[1] the epoch and ARGV[2] the advanced_at the step started from; then the new
# admitted, advanced_at, granted_at, rate. The watermark never goes back.
_ADVANCE = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local at = redis.call('HGET', KEYS[1], 'advanced_at') or '0'
if epoch == ARGV[1] and at == ARGV[2] then
  local admitted = tonumber(redis.call('HGET', KEYS[1], 'admitted') or '0')
  redis.call('HSET', KEYS[1], 'admitted', math.max(admitted, tonumber(ARGV[3])),
             'advanced_at', ARGV[4], 'granted_at', ARGV[5], 'rate', ARGV[6])
end
return redis.call('HMGET', KEYS[1], unpack(ARGV, 7))
"""


def _float_text(value: float) -> str:
    return repr(float(value))


class RedisLines:
    """`Lines` in Redis, shared by every node of a deployment."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        keys: RedisKeys = KEYS,
    ) -> None:
        client, self._owns_client = given_or_connect(url, client, "RedisLines")
        self._redis = client
        self._keys = keys
        self._take = client.register_script(_TAKE)
        self._present = client.register_script(_PRESENT)
        self._advance = client.register_script(_ADVANCE)
        # advanced_at exactly as stored, so the compare-and-set compares the same text.
        self._at_text: dict[tuple[str, float], str] = {}

    def _key(self, space_id: str) -> str:
        return self._keys.line(space_id)

    def _line(self, space_id: str, values: list[str | None]) -> Line:
        epoch, issued, admitted, arrived, advanced_at, granted_at, rate = values
        at = float(advanced_at or 0)
        if len(self._at_text) > 10_000:
            self._at_text.clear()
        self._at_text[(space_id, at)] = advanced_at or "0"
        return Line(
            epoch=epoch or "",
            issued=int(issued or 0),
            admitted=int(admitted or 0),
            arrived=int(arrived or 0),
            advanced_at=at,
            granted_at=float(granted_at or 0),
            rate=float(rate or 0),
        )

    async def take(self, space_id: str) -> tuple[int, Line]:
        values = await self._take(
            keys=[self._key(space_id)], args=[new_epoch(), LINE_TTL, *_FIELDS]
        )
        line = self._line(space_id, values)
        return line.issued, line

    async def present(self, space_id: str, epoch: str, number: int) -> Line | None:
        values = await self._present(
            keys=[self._key(space_id)], args=[epoch, number, LINE_TTL, *_FIELDS]
        )
        return None if values is None else self._line(space_id, values)

    async def advance(self, space_id: str, before: Line, after: Line) -> Line:
        at = self._at_text.get((space_id, before.advanced_at), _float_text(before.advanced_at))
        values = await self._advance(
            keys=[self._key(space_id)],
            args=[
                before.epoch,
                at,
                after.admitted,
                _float_text(after.advanced_at),
                _float_text(after.granted_at),
                _float_text(after.rate),
                *_FIELDS,
            ],
        )
        return self._line(space_id, values)

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
