"""Redis clients that ride out a Redis restart.

redis-py's asyncio client made with `from_url` does not retry by default: after Redis restarts,
every pooled connection fails once ("Connection closed by server") before it reconnects, so a
node would answer a burst of 500s for requests that could have succeeded. These clients retry
a command on a connection error, reconnecting, with a short jittered backoff: a restart that
takes less than a second or two costs a wait, not an error; while Redis stays down, a command
fails after about 2.5 s at most (redis-py retries the connection attempt inside each command
attempt: 3 × 3 tries) and the API answers 503 (api/errors.py); nothing is acknowledged that
Redis did not acknowledge.

A retried write may run twice if the connection broke after Redis executed it but before the
reply arrived. The store's writes are scripts that check before they change (space versions,
question and voter existence), so they are idempotent; a reaction total or a live event may be
counted twice in that rare case.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

RETRIES = 2
"""Attempts after the first, with jittered backoffs of at most 0.2 and 0.4 s."""


def connect(url: str, *, decode_responses: bool = True) -> aioredis.Redis:
    """An asyncio client for `url` that retries commands across reconnections."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=0.4), RETRIES),
        retry_on_error=[ConnectionError, TimeoutError, OSError],
        socket_connect_timeout=2,
        health_check_interval=30,
    )


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
    (most keys) and one for bytes (the audience numbers' sketches). Two pools per node."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.text = connect(url)
        self.binary = connect(url, decode_responses=False)

    async def close(self) -> None:
        await self.text.aclose()
        await self.binary.aclose()
