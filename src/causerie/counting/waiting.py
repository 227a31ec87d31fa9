"""Where the waiting rooms' lines live: in this process, or in Redis for several nodes.

A line (`domain.waiting_room.Line`) is a handful of numbers per capped space. Each join of a
capped space costs one operation here (`take` or `present`, one round trip in Redis, done by
a script so the counter and the arrival mark change atomically); the watermark moves through
`advance`, a compare-and-set on `advanced_at`, so that of several nodes stepping at once
exactly one step counts. Spaces without a cap never come here.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Protocol

import redis.asyncio as aioredis

from ..domain.waiting_room import (
    Line,
    Policy,
    Ticket,
    TicketSigner,
    Waiting,
    advance,
    due,
    place,
)
from ..redis_client import given_or_connect
from .presence import Presence

PREFIX = "causerie:"
LINE_TTL = 24 * 3600
"""A line nobody touched for a day is dropped (a new one gets a new epoch)."""


class Lines(Protocol):
    """The lines of the capped spaces."""

    async def take(self, space_id: str) -> tuple[int, Line]:
        """A new number in the line; an admitted number is marked as arrived."""

    async def present(self, space_id: str, epoch: str, number: int) -> Line | None:
        """The line for a ticket holder (marked as arrived if admitted); None if the ticket
        belongs to an older line."""

    async def advance(self, space_id: str, before: Line, after: Line) -> Line:
        """Store `after` if the line is still `before` (by `advanced_at`); the current line."""


def _new_epoch() -> str:
    return secrets.token_hex(4)


class LocalLines:
    """`Lines` in this process's memory (the embedded default, one node)."""

    def __init__(self) -> None:
        self._lines: dict[str, Line] = {}

    def _line(self, space_id: str) -> Line:
        line = self._lines.get(space_id)
        if line is None:
            line = self._lines[space_id] = Line(epoch=_new_epoch())
        return line

    def _arrive(self, space_id: str, line: Line, number: int) -> Line:
        if line.arrived < number <= line.admitted:
            line = self._lines[space_id] = replace(line, arrived=number)
        return line

    async def take(self, space_id: str) -> tuple[int, Line]:
        line = self._line(space_id)
        number = line.issued + 1
        line = self._lines[space_id] = replace(line, issued=number)
        return number, self._arrive(space_id, line, number)

    async def present(self, space_id: str, epoch: str, number: int) -> Line | None:
        line = self._line(space_id)
        if line.epoch != epoch or number > line.issued:
            return None
        return self._arrive(space_id, line, number)

    async def advance(self, space_id: str, before: Line, after: Line) -> Line:
        line = self._line(space_id)
        if line.advanced_at == before.advanced_at and line.epoch == before.epoch:
            line = self._lines[space_id] = replace(after, issued=line.issued, arrived=line.arrived)
        return line


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
        self, url: str | None = None, *, client: aioredis.Redis | None = None, prefix: str = PREFIX
    ) -> None:
        client, self._owns_client = given_or_connect(url, client, "RedisLines")
        self._redis = client
        self._prefix = prefix
        self._take = client.register_script(_TAKE)
        self._present = client.register_script(_PRESENT)
        self._advance = client.register_script(_ADVANCE)
        # advanced_at exactly as stored, so the compare-and-set compares the same text.
        self._at_text: dict[tuple[str, float], str] = {}

    def _key(self, space_id: str) -> str:
        return f"{self._prefix}line:{space_id}"

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
            keys=[self._key(space_id)], args=[_new_epoch(), LINE_TTL, *_FIELDS]
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


class WaitingRoom:
    """The waiting rooms of this node's spaces: the lines, the tickets and the presence count.

    `enter` is all a join needs: None to let the joiner in, or where they wait (with a ticket).
    """

    def __init__(
        self,
        lines: Lines,
        tickets: TicketSigner,
        presence: Presence,
        *,
        presence_window: float,
        policy: Policy | None = None,
    ) -> None:
        self.lines = lines
        self.tickets = tickets
        self.presence = presence
        self.presence_window = presence_window
        self.policy = policy or Policy()

    async def enter(
        self, space_id: str, capacity: int, ticket: str | None, now: float
    ) -> tuple[str, Waiting] | None:
        """None if the joiner may come in now; else (their ticket, where they wait).

        A bad ticket raises `Invalid`; a ticket of an older line counts as no ticket.
        """
        line: Line | None = None
        if ticket is not None:
            held = self.tickets.verify(ticket, space_id=space_id, now=now)
            line = await self.lines.present(space_id, held.epoch, held.number)
            number = held.number
        if line is None:
            number, line = await self.lines.take(space_id)
        if number > line.admitted and due(line, now, self.policy):
            listening = await self.presence.listening_now(space_id, now)
            stepped = advance(
                line, capacity=capacity, listening=listening, now=now, policy=self.policy
            )
            line = await self.lines.advance(space_id, line, stepped)
            if number <= line.admitted:
                await self.lines.present(space_id, line.epoch, number)  # marks the arrival
        waiting = place(
            number,
            line,
            capacity=capacity,
            presence_window=self.presence_window,
            policy=self.policy,
        )
        if waiting is None:
            return None
        signed = self.tickets.issue(
            Ticket(space_id, line.epoch, number, int(now) + self.policy.ticket_ttl)
        )
        return signed, waiting

    async def close(self) -> None:
        close = getattr(self.lines, "close", None)
        if close is not None:
            await close()
