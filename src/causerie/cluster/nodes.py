"""Every node of a deployment and how it is doing: what the admin console's nodes view shows.

Each node publishes a short status report every few seconds (`node/status.py` makes it, the
`publish-node-status` loop sends it) and any node reads them all. Embedded, the only node is
this one (`LocalNodes`). With Redis, the reports are one hash, `causerie:nodes`, node URL → the
report as JSON (`RedisNodes`): a node restarted under the same URL replaces its own entry. A
report carries the time it was made (`seen_at`, Unix seconds): a node not heard from for
`SILENT_AFTER` seconds is shown as silent (stopped, stuck, or cut off from Redis), and one
silent for `FORGET_AFTER` is dropped from the hash.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import redis.asyncio as aioredis

from .keys import KEYS, RedisKeys
from .redis_client import given_or_connect, text

REPORT_INTERVAL = 2.0
"""Seconds between two reports of a node."""
SILENT_AFTER = 3 * REPORT_INTERVAL + 1
"""A node whose last report is older than this is silent: three reports missed."""
FORGET_AFTER = 24 * 3600.0
"""A node silent for a day is gone for good (scaled down, renamed): its entry is dropped."""

Report = dict[str, Any]


class Nodes(Protocol):
    """The nodes' last status reports."""

    async def publish(self, url: str, report: Report) -> None:
        """Make `report` (with its `seen_at`) this node's last one."""

    async def reports(self, now: float) -> list[Report]:
        """Every node's last report not older than `FORGET_AFTER`, by URL."""

    async def close(self) -> None:
        """Let go of what the registry holds."""


class LocalNodes:
    """One node, no Redis: its own last report is all there is."""

    def __init__(self) -> None:
        self._last: dict[str, Report] = {}

    async def publish(self, url: str, report: Report) -> None:
        self._last = {url: report}

    async def reports(self, now: float) -> list[Report]:
        return list(self._last.values())

    async def close(self) -> None:
        pass


class RedisNodes:
    """The reports of every node sharing a Redis, in one hash."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        keys: RedisKeys = KEYS,
    ) -> None:
        self._redis, self._owns_client = given_or_connect(url, client, "RedisNodes")
        self._key = keys.nodes

    async def publish(self, url: str, report: Report) -> None:
        await self._redis.hset(self._key, url, json.dumps(report, separators=(",", ":")))

    async def reports(self, now: float) -> list[Report]:
        found: list[Report] = []
        gone: list[str] = []
        for key, body in sorted((await self._redis.hgetall(self._key)).items()):
            url = text(key)
            try:
                report = json.loads(body)
                seen_at = float(report["seen_at"])
            except (ValueError, KeyError, TypeError):
                gone.append(url)  # not a report this code wrote: drop it
                continue
            if now - seen_at > FORGET_AFTER:
                gone.append(url)
            else:
                found.append(report)
        if gone:
            await self._redis.hdel(self._key, *gone)
        return found

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
