"""Writes that must survive a failover: acknowledged only once replicas hold them.

Redis replicates asynchronously: the primary answers a write before its replicas have it, so
when the primary dies and Sentinel promotes a replica, the last writes the old primary
acknowledged may be missing there. For the writes that matter – a space, a question, a vote,
a media lease, the signing secrets – the node sends ``WAIT numreplicas timeout`` right after
the write, on the same connection (one pipeline, one round trip): Redis answers once that many
replicas have acknowledged everything the connection wrote, or at the timeout with how many
did. Fewer than asked is `NotReplicated` (the API answers 503: retry), never an
acknowledgement. Sentinel promotes the replica with the most replicated data, so a write one
replica acknowledged survives the primary's death.

The scripts are sent with EVAL, not EVALSHA: one round trip whatever the server's script
cache holds (a newly promoted replica has none). If the connection breaks after the write
ran but before WAIT answered, redis-py runs the whole pipeline again on a new connection (the
new primary's); the store's scripts recognise their own earlier write, so that is harmless.

WAIT cannot run inside a Lua script (Redis refuses it), hence the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.asyncio.client import Redis as AsyncRedis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

Keys = Sequence[str]
Args = Sequence[str | int | float]


class NotReplicated(RedisError):
    """Fewer replicas than required acknowledged a write in time: it is on the primary, may
    be lost by a failover, and was not acknowledged. Retrying is safe."""


# Refusals of a Redis that cannot take writes right now, whatever its connection: a primary
# without enough replicas (`min-replicas-to-write`), a replica (READONLY: a demoted primary),
# one that is loading its data or waiting for its primary.
_NOT_NOW = ("NOREPLICAS", "READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN")


def refused_for_now(exc: BaseException) -> bool:
    """Whether `exc` is Redis refusing a write for now (a failover, a replica short), which
    asks for a retry (503), not a bug (500)."""
    if isinstance(exc, NotReplicated):
        return True
    if not isinstance(exc, ResponseError):
        return False
    message = str(exc)
    # A script's error carries the command's: "NOREPLICAS … script: …" or "ERR … NOREPLICAS".
    return any(message.startswith(code) or f" {code} " in message for code in _NOT_NOW)


@dataclass(frozen=True)
class Replication:
    """How many replicas must hold a write that matters before it is acknowledged."""

    replicas: int = 0
    """0: acknowledge once the primary has it (one Redis, or the operator's choice)."""
    timeout: float = 1.0
    """Seconds a write waits for them (WAIT's timeout)."""

    @property
    def _timeout_ms(self) -> int:
        return max(1, round(self.timeout * 1000))

    def _check(self, acknowledged: Any) -> None:
        if int(acknowledged) < self.replicas:
            raise NotReplicated(
                f"{acknowledged} of {self.replicas} replica(s) acknowledged the write "
                f"within {self.timeout:g} s"
            )

    async def run(self, script: AsyncScript, keys: Keys, args: Args) -> Any:
        """Run a registered Lua script (a write), then wait for the replicas; its reply."""
        if self.replicas == 0:
            return await script(keys=keys, args=args)
        client = cast("AsyncRedis", script.registered_client)
        async with client.pipeline(transaction=False) as pipe:
            pipe.eval(cast("str", script.script), len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.replicas, self._timeout_ms)
            reply, acknowledged = await pipe.execute()
        self._check(acknowledged)
        return reply

    def set_if_absent(self, client: redis.Redis, key: str, value: str) -> str | None:
        """Synchronous SET NX then GET (the value now held), waiting for the replicas."""
        pipe = client.pipeline(transaction=False)
        pipe.set(key, value, nx=True)
        if self.replicas:
            pipe.execute_command("WAIT", self.replicas, self._timeout_ms)
        pipe.get(key)
        replies = pipe.execute()
        if self.replicas:
            self._check(replies[1])
        held = replies[-1]
        return held.decode() if isinstance(held, bytes) else held

    def set(self, client: redis.Redis, key: str, value: str) -> None:
        """Synchronous SET, waiting for the replicas."""
        pipe = client.pipeline(transaction=False)
        pipe.set(key, value)
        if self.replicas:
            pipe.execute_command("WAIT", self.replicas, self._timeout_ms)
        replies = pipe.execute()
        if self.replicas:
            self._check(replies[1])
