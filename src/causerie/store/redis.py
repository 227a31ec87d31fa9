"""The shared store for several nodes: Redis (redis.asyncio with hiredis).

Keys (cluster/keys.py lists them all):

- `space:{id}`: the space as JSON, its version inside;
- `spaces:{state}`: a sorted set of space ids per state, scored by the sort time (started,
  else scheduled, else created) so listing never reads spaces it does not return;
- `questions:{space}`: a hash, question id -> the question as JSON (without its votes);
- `votes:{space}`: a hash, question id -> vote count; `voters:{space}:{question}`: a set;
- `reactions:{space}`: a hash, emoji -> total.

Every change that touches several keys is one Lua script, so it is atomic: Redis runs a script
without running anything else meanwhile. A space is replaced only if its stored version is the
one the caller read (optimistic concurrency, as in SQLite).

Writes of spaces, questions and votes go through `Replication` (cluster/replication.py): with
Sentinel, they are acknowledged only once a replica holds them, so a failover loses none. A
write run again after a broken connection (redis-py retries) finds its own earlier result and
succeeds again, instead of reporting a conflict with itself. Reactions (summed, a second's
worth at a time) are not waited for.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import cast

import redis.asyncio as aioredis

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import given_or_connect, text
from ..cluster.replication import Replication
from ..domain import Conflict, NotFound, Space, SpaceState
from ..domain.questions import Question

log = logging.getLogger(__name__)

TURN_HOLD = 0.25
"""Seconds a refused writer keeps its turn at most (if it never writes again, e.g. it gave up)."""

_STATES = list(SpaceState)

# KEYS: the space, then one sorted set per state (in _STATES order).
# ARGV: body, index of the new state's set (1-based in KEYS), score, id.
# An existing space with this very body is this write, run again: done already.
_CREATE = """
local current = redis.call('GET', KEYS[1])
if current then
    if current == ARGV[1] then return 1 end
    return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[tonumber(ARGV[2])], ARGV[3], ARGV[4])
return 1
"""

# ARGV: body, index of the new state's set, score, id, expected version. The body holds the
# new version: a stored body equal to it is this write, run again.
_REPLACE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current == ARGV[1] then return 1 end
if tonumber(cjson.decode(current)['version']) ~= tonumber(ARGV[5]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
local target = tonumber(ARGV[2])
for i = 2, #KEYS do
    if i ~= target then redis.call('ZREM', KEYS[i], ARGV[4]) end
end
redis.call('ZADD', KEYS[target], ARGV[3], ARGV[4])
return 1
"""

# KEYS: questions hash, voters set, votes hash. ARGV: question id, voter.
# A vote for a question that does not exist is not recorded (None, like a repeated vote).
_VOTE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return false end
if redis.call('SADD', KEYS[2], ARGV[2]) == 0 then return false end
return redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
"""

# KEYS: questions hash. ARGV: question id, body. 0 if another question has that id; an equal
# one is this write, run again.
_ADD_QUESTION = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
    if current == ARGV[2] then return 1 end
    return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: questions hash. ARGV: question id, body. Never creates a question.
_SAVE_QUESTION = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class _Turn:
    """Refused writers of one space on this node, retrying one at a time (FIFO)."""

    __slots__ = ("holder", "lock", "timer", "waiting")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.holder: asyncio.Task | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.waiting = 0


def _sort_time(space: Space) -> float:
    moment = space.started_at or space.scheduled_start or space.created_at
    return moment.timestamp()


def _json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)


class RedisStore:
    """`Store` in Redis, shared by every node of a deployment."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        keys: RedisKeys = KEYS,
        replication: Replication | None = None,
    ) -> None:
        client, self._owns_client = given_or_connect(url, client, "RedisStore")
        self._redis = client
        self._keys = keys
        self._replication = replication or Replication()
        self._create = client.register_script(_CREATE)
        self._add_question = client.register_script(_ADD_QUESTION)
        self._replace = client.register_script(_REPLACE)
        self._vote = client.register_script(_VOTE)
        self._save_question = client.register_script(_SAVE_QUESTION)
        self._turns: dict[str, _Turn] = {}

    # -- keys ------------------------------------------------------------------------------

    def _space_key(self, space_id: str) -> str:
        return self._keys.space(space_id)

    def _state_key(self, state: SpaceState) -> str:
        return self._keys.spaces_in(state.value)

    def _space_keys(self, space_id: str) -> list[str]:
        return [self._space_key(space_id), *(self._state_key(s) for s in _STATES)]

    def _state_index(self, state: SpaceState) -> int:
        return 2 + _STATES.index(state)  # Lua is 1-based and KEYS[1] is the space

    # -- spaces ----------------------------------------------------------------------------

    async def create_space(self, space: Space) -> None:
        created = await self._replication.run(
            self._create,
            keys=self._space_keys(space.id),
            args=[
                _json(space.to_dict()),
                self._state_index(space.state),
                repr(_sort_time(space)),
                space.id,
            ],
        )
        if not created:
            raise Conflict(f"a space with id {space.id!r} exists already")

    async def get_space(self, space_id: str) -> Space:
        body = await self._redis.get(self._space_key(space_id))
        if body is None:
            raise NotFound("no such space")
        return Space.from_dict(json.loads(body))

    async def list_spaces(self, states: Iterable[SpaceState], limit: int = 100) -> list[Space]:
        wanted = list(dict.fromkeys(SpaceState(s) for s in states))
        if not wanted or limit <= 0:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for state in wanted:
                pipe.zrange(self._state_key(state), 0, limit - 1, withscores=True)
            ranges = await pipe.execute()
        # Live first, then the other states together by sort time (as SQLite orders them).
        live: list[tuple[float, str]] = []
        rest: list[tuple[float, str]] = []
        for state, members in zip(wanted, ranges, strict=True):
            target = live if state is SpaceState.LIVE else rest
            target.extend((score, space_id) for space_id, score in members)
        ids = [space_id for _, space_id in sorted(live) + sorted(rest)][:limit]
        if not ids:
            return []
        bodies = await self._redis.mget([self._space_key(i) for i in ids])
        return [Space.from_dict(json.loads(body)) for body in bodies if body is not None]

    async def recently_ended(self, limit: int = 50) -> list[Space]:
        if limit <= 0:
            return []
        # A text client, no scores asked: plain ids (redis-py types any reply of ZRANGE).
        ended = self._state_key(SpaceState.ENDED)
        ids = cast("list[str]", await self._redis.zrevrange(ended, 0, limit - 1))
        if not ids:
            return []
        bodies = await self._redis.mget([self._space_key(i) for i in ids])
        return [Space.from_dict(json.loads(body)) for body in bodies if body is not None]

    async def replace_space(self, space: Space, expected_version: int) -> bool:
        new_version = expected_version + 1
        space.version = new_version
        replaced = await self._replication.run(
            self._replace,
            keys=self._space_keys(space.id),
            args=[
                _json(space.to_dict()),
                self._state_index(space.state),
                repr(_sort_time(space)),
                space.id,
                expected_version,
            ],
        )
        task = asyncio.current_task()
        turn = self._turns.get(space.id)
        if turn is not None and task is not None and turn.holder is task:
            self._end_turn(space.id, turn, task)  # its one attempt with the space to itself
        if replaced:
            return True
        if task is not None:
            await self._wait_turn(space.id, task)
        return False

    async def _wait_turn(self, space_id: str, task: asyncio.Task) -> None:
        """Queue a refused writer of this node: its next attempt is the only one in flight.

        Every call here is a real round trip, so writers of one space interleave: a hundred
        raised hands at once would all read the same version and retry in lockstep, one
        winning per round, most giving up. Queued, each retry finds the space quiet (only
        writers of other nodes, or first attempts, can still get in between). SQLite never
        needs this: its calls do not yield to the event loop.
        """
        turn = self._turns.get(space_id)
        if turn is None:
            turn = self._turns[space_id] = _Turn()
        turn.waiting += 1
        try:
            await turn.lock.acquire()
        finally:
            turn.waiting -= 1
        turn.holder = task
        turn.timer = asyncio.get_running_loop().call_later(
            TURN_HOLD, self._end_turn, space_id, turn, task
        )

    def _end_turn(self, space_id: str, turn: _Turn, task: asyncio.Task) -> None:
        if turn.holder is not task:
            return  # ended already
        if turn.timer is not None:
            turn.timer.cancel()
        turn.holder = turn.timer = None
        turn.lock.release()
        if turn.waiting == 0 and self._turns.get(space_id) is turn:
            del self._turns[space_id]

    # -- questions -------------------------------------------------------------------------

    def _questions_key(self, space_id: str) -> str:
        return self._keys.questions(space_id)

    def _votes_key(self, space_id: str) -> str:
        return self._keys.votes(space_id)

    def _voters_key(self, space_id: str, question_id: str) -> str:
        return self._keys.voters(space_id, question_id)

    async def add_question(self, question: Question) -> None:
        added = await self._replication.run(
            self._add_question,
            keys=[self._questions_key(question.space_id)],
            args=[question.id, _json(question.to_dict())],
        )
        if not added:
            raise Conflict("that question exists already")

    async def get_question(self, space_id: str, question_id: str) -> Question:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._questions_key(space_id), question_id)
            pipe.hget(self._votes_key(space_id), question_id)
            body, votes = await pipe.execute()
        if body is None:
            raise NotFound("no such question")
        return Question.from_dict(json.loads(body), votes=int(votes or 0))

    async def list_questions(self, space_id: str) -> list[Question]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._questions_key(space_id))
            pipe.hgetall(self._votes_key(space_id))
            bodies, votes = await pipe.execute()
        # By id, as SQLite returns them (its primary key); callers order them for display.
        return [
            Question.from_dict(json.loads(bodies[i]), votes=int(votes.get(i, 0)))
            for i in sorted(bodies)
        ]

    async def save_question(self, question: Question) -> None:
        await self._replication.run(
            self._save_question,
            keys=[self._questions_key(question.space_id)],
            args=[question.id, _json(question.to_dict())],
        )

    async def add_vote(self, space_id: str, question_id: str, voter: str) -> int | None:
        total = await self._replication.run(
            self._vote,
            keys=[
                self._questions_key(space_id),
                self._voters_key(space_id, question_id),
                self._votes_key(space_id),
            ],
            args=[question_id, voter],
        )
        return None if total is None else int(total)

    # -- reactions -------------------------------------------------------------------------

    async def add_reactions(self, space_id: str, counts: dict[str, int]) -> None:
        if not counts:
            return
        key = self._keys.reactions(space_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for emoji, n in counts.items():
                pipe.hincrby(key, emoji, n)
            await pipe.execute()

    async def reaction_totals(self, space_id: str) -> dict[str, int]:
        totals = await self._redis.hgetall(self._keys.reactions(space_id))
        return {text(emoji): int(n) for emoji, n in totals.items()}

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
