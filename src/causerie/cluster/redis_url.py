"""Where a deployment's Redis is: the `--redis` URL, read and checked once, at start.

Two forms:

- one Redis server, as redis-py reads it: ``redis://[[user]:password@]host[:port][/db]``,
  ``rediss://…`` (TLS) or ``unix:///path/to/socket``;
- a primary watched by Redis Sentinel, which names the current primary and promotes a replica
  when it dies:

      redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db][?options]

  e.g. ``redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/causerie/0``. The hosts
  are the sentinels (port 26379 by default), `service` the name they monitor the primary
  under (``sentinel monitor <service> …``); the user and password are the Redis servers'.
  Options:

  - ``wait_replicas=N`` (default 1): a write that must survive a failover (spaces, questions,
    votes, media leases, the signing secrets) is acknowledged only once N replicas have it
    (``WAIT N``, cluster/replication.py); 0 acknowledges what the primary alone holds;
  - ``wait_timeout=SECONDS`` (default 1): how long such a write waits for them (beyond, the
    request gets 503 and may be retried).

The URL is checked here without connecting: a mistake is a clear error when the node starts,
not a failure on the first request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.connection import parse_url

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
WAIT_REPLICAS = 1
WAIT_TIMEOUT = 1.0
_FORM = "redis+sentinel://[user:password@]host[:port][,host[:port]...]/service[/db]"


@dataclass(frozen=True)
class RedisTarget:
    """A checked `--redis` URL: one server (`url`), or Sentinel's `service` (`sentinels` set)."""

    url: str
    """The URL as given (it may hold a password: show `shown` instead)."""
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    wait_replicas: int = 0
    """Replicas that must hold a write that matters before it is acknowledged (0: none)."""
    wait_timeout: float = WAIT_TIMEOUT
    """Seconds such a write waits for them."""

    @property
    def sentinel(self) -> bool:
        return bool(self.sentinels)

    @property
    def shown(self) -> str:
        """The URL without its password, for logs and messages."""
        scheme, sep, rest = self.url.partition("://")
        userinfo, at, hosts = rest.rpartition("@")
        if not at or ":" not in userinfo:
            return self.url
        return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hosts}"


def parse_redis_url(url: str) -> RedisTarget:
    """The target `url` names; `ValueError` with what is wrong (and the form) otherwise."""
    if url.lower().startswith(SENTINEL_SCHEME + "://"):
        return _parse_sentinel(url)
    try:
        parse_url(url)
        urlsplit(url).port  # noqa: B018 (a bad port raises)
    except ValueError as exc:
        raise ValueError(
            f"--redis is redis://host:port/db, rediss://…, unix:///path or {_FORM}, "
            f"not {_masked(url)!r} ({exc})"
        ) from None
    return RedisTarget(url)


def _parse_sentinel(url: str) -> RedisTarget:
    rest = url.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    if "#" in query or "#" in rest:
        raise _bad(url, "a fragment (#) has no meaning here")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(url, each) for each in hosts.split(","))
    names = [unquote(p) for p in path.split("/")] if path else []
    if not names or not names[0]:
        raise _bad(url, "the service name Sentinel monitors is missing")
    if len(names) > 2 or (len(names) == 2 and not names[1].isdigit()):
        raise _bad(url, "after the service name, only a database number may follow")
    service, db = names[0], int(names[1]) if len(names) == 2 else 0
    if any(c.isspace() for c in service):
        raise _bad(url, "the service name has no spaces")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
    unknown = set(options) - {"wait_replicas", "wait_timeout"}
    if unknown:
        raise _bad(url, f"unknown option {sorted(unknown)[0]!r} (wait_replicas, wait_timeout)")
    replicas = options.get("wait_replicas", str(WAIT_REPLICAS))
    if not replicas.isdigit() or int(replicas) > 16:
        raise _bad(url, "wait_replicas is a number of replicas, 0 to 16")
    try:
        timeout = float(options.get("wait_timeout", WAIT_TIMEOUT))
    except ValueError:
        timeout = math.nan
    if not 0.01 <= timeout <= 10:
        raise _bad(url, "wait_timeout is in seconds, 0.01 to 10")
    return RedisTarget(
        url,
        sentinels=sentinels,
        service=service,
        db=db,
        username=username,
        password=password,
        wait_replicas=int(replicas),
        wait_timeout=timeout,
    )


def _host_port(url: str, text: str) -> tuple[str, int]:
    """(host, port) of one sentinel: `host`, `host:port`, `[v6]` or `[v6]:port`."""
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise _bad(url, f"{text!r} is not a host[:port]")
        port = port[1:]
    else:
        host, _, port = text.partition(":")
        if ":" in port:
            raise _bad(url, f"{text!r} is not a host[:port] (IPv6 addresses go in brackets)")
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise _bad(url, f"{text!r} is not a host[:port]")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise _bad(url, f"{port!r} is not a port (1 to 65535)")
    return host, int(port) if port else SENTINEL_PORT


def _bad(url: str, why: str) -> ValueError:
    return ValueError(f"--redis {_masked(url)!r}: {why}; the form is {_FORM}[?options]")


def _masked(url: str) -> str:
    return RedisTarget(url).shown
