"""Moderation in Redis, shared by every node: reports, the audit log, bans (keys in
cluster/keys.py).

The audit log is a stream (`audit`) that causerie only ever XADDs to: no code path issues
XDEL, XTRIM, DEL or a MAXLEN on it (tests/store/test_moderation.py scans the source for it).
Reports are JSON strings indexed by sorted sets; each change of several keys is one Lua script,
so it is atomic, and goes through `Replication` (acknowledged once a replica holds it, with
Sentinel), like the spaces.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import cast

import redis.asyncio as aioredis

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import given_or_connect, text
from ..cluster.replication import Replication
from ..domain import Invalid, NotFound
from ..domain.audit import AuditEntry
from ..domain.reports import Report, ReportState
from .moderation import AUDIT_PAGE_MAX

# KEYS: dedupe hash, report, open zset, all zset, target zset.
# ARGV: dedupe field, ref, body, score. The ref of the open report kept: an existing one (a
# repeat), or this one. A retried write finds its own ref, so it is idempotent.
_ADD_REPORT = """
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return existing end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
return ARGV[2]
"""

# KEYS: report, open zset, target zset, dedupe hash. ARGV: ref, new body, dedupe field.
# Only a report still open is closed (1); else 0. A retried write finds its own body: 1.
_CLOSE_REPORT = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current == ARGV[2] then return 1 end
if cjson.decode(current)['state'] ~= 'open' then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[4], ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[4], ARGV[3]) end
return 1
"""

# KEYS: the audit stream. ARGV: the entry as JSON. The only write to the stream there is.
_APPEND_AUDIT = """
return redis.call('XADD', KEYS[1], '*', 'entry', ARGV[1])
"""

_BAN = """
return redis.call('SADD', KEYS[1], ARGV[1])
"""

_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


class RedisModeration:
    """`ModerationStore` in Redis."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        keys: RedisKeys = KEYS,
        replication: Replication | None = None,
    ) -> None:
        client, self._owns_client = given_or_connect(url, client, "RedisModeration")
        self._redis = client
        self._keys = keys
        self._replication = replication or Replication()
        self._add_report = client.register_script(_ADD_REPORT)
        self._close_report = client.register_script(_CLOSE_REPORT)
        self._append_audit = client.register_script(_APPEND_AUDIT)
        self._ban = client.register_script(_BAN)

    # -- reports -----------------------------------------------------------------------------

    async def add_report(self, report: Report) -> tuple[Report, bool]:
        keys = self._keys
        kept = await self._replication.run(
            self._add_report,
            keys=[
                keys.report_dedupe,
                keys.report(report.ref),
                keys.open_reports,
                keys.all_reports,
                keys.target_reports(report.target.key),
            ],
            args=[
                report.dedupe_key,
                report.ref,
                _json(report.to_dict()),
                repr(report.created_at.timestamp()),
            ],
        )
        if text(kept) == report.ref:
            return report, True
        return await self.get_report(text(kept)), False

    async def get_report(self, ref: str) -> Report:
        body = await self._redis.get(self._keys.report(ref))
        if body is None:
            raise NotFound("no such report")
        return Report.from_dict(json.loads(body))

    async def open_reports(self, limit: int = 1000) -> list[Report]:
        refs = await self._redis.zrange(self._keys.open_reports, 0, max(limit, 1) - 1)
        return await self._load(refs)

    async def open_count(self) -> int:
        return int(await self._redis.zcard(self._keys.open_reports))

    async def open_reports_of(self, target_key: str) -> list[Report]:
        refs = await self._redis.zrange(self._keys.target_reports(target_key), 0, -1)
        return [r for r in await self._load(refs) if r.state is ReportState.OPEN]

    async def close_reports(self, reports: list[Report]) -> list[Report]:
        closed = []
        for report in reports:
            if report.state is ReportState.OPEN:
                continue
            done = await self._replication.run(
                self._close_report,
                keys=[
                    self._keys.report(report.ref),
                    self._keys.open_reports,
                    self._keys.target_reports(report.target.key),
                    self._keys.report_dedupe,
                ],
                args=[report.ref, _json(report.to_dict()), report.dedupe_key],
            )
            if done:
                closed.append(report)
        return closed

    async def reports_since(self, since: datetime, limit: int = 100_000) -> list[Report]:
        refs = await self._redis.zrangebyscore(
            self._keys.all_reports, since.timestamp(), "+inf", start=0, num=limit
        )
        return await self._load(refs)

    async def _load(self, refs: list) -> list[Report]:
        if not refs:
            return []
        bodies = await self._redis.mget([self._keys.report(text(r)) for r in refs])
        return [Report.from_dict(json.loads(b)) for b in bodies if b is not None]

    # -- the audit log -----------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        body = entry.to_dict()
        del body["id"]  # the stream entry's id is the entry's
        entry_id = await self._replication.run(
            self._append_audit, keys=[self._keys.audit], args=[_json(body)]
        )
        return AuditEntry.from_dict(body, text(entry_id))

    async def audit(self, after: str = "", limit: int = 100) -> list[AuditEntry]:
        if after and not _STREAM_ID.fullmatch(after):
            raise Invalid("after: not an audit entry id")
        start = f"({after}" if after else "-"  # "(": exclusive (XRANGE, Redis 6.2+)
        # A text client: ids and fields are str (redis-py types XRANGE's entries as XCLAIM's,
        # which may name deleted ones).
        rows = cast(
            "list[tuple[str, dict[str, str]]]",
            await self._redis.xrange(
                self._keys.audit, start, "+", count=min(limit, AUDIT_PAGE_MAX)
            ),
        )
        return [
            AuditEntry.from_dict(json.loads(fields["entry"]), entry_id) for entry_id, fields in rows
        ]

    async def latest_audit(self, limit: int = 20) -> list[AuditEntry]:
        rows = cast(
            "list[tuple[str, dict[str, str]]]",
            await self._redis.xrevrange(
                self._keys.audit, "+", "-", count=min(limit, AUDIT_PAGE_MAX)
            ),
        )
        return [
            AuditEntry.from_dict(json.loads(fields["entry"]), entry_id) for entry_id, fields in rows
        ]

    # -- bans --------------------------------------------------------------------------------

    async def ban(self, subject: str) -> bool:
        added = await self._replication.run(self._ban, keys=[self._keys.bans], args=[subject])
        return bool(added)

    async def banned(self) -> set[str]:
        return {text(s) for s in await self._redis.smembers(self._keys.bans)}

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()


def _json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)
