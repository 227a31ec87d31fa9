"""Accounts in Redis, shared by every node (keys in cluster/keys.py).

`invite:{id}` and `account:{id}` hold JSON, `invites` and `accounts` are sorted sets by
creation time, `revoked` a set of account ids. Each write is one Lua script (atomic), and goes
through `Replication`: with Sentinel, a revocation or a used invite is acknowledged only once a
replica holds it, so a failover cannot bring a revoked account or a used invite back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import cast

import redis.asyncio as aioredis

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import given_or_connect
from ..cluster.replication import Replication
from ..domain import Conflict, NotFound
from ..domain.accounts import Account, Invite
from .protocol import LIST_LIMIT

# KEYS: the invite, the invites zset. ARGV: body, score, id. An equal body is this write again.
_ADD = """
local current = redis.call('GET', KEYS[1])
if current then
    if current == ARGV[1] then return 1 end
    return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# KEYS: the invite, then (redeeming) the account and the accounts zset.
# ARGV: new body (holding the new version), expected version, then (redeeming) the account's
# body, score and id. A stored body equal to the new one is this write, run again.
_REPLACE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current == ARGV[1] then return 1 end
if tonumber(cjson.decode(current)['version']) ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if #KEYS == 3 then
    redis.call('SET', KEYS[2], ARGV[3])
    redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
end
return 1
"""

# KEYS: the revoked set, the account. ARGV: account id, when. The account, if an invite made
# it, is marked revoked (once).
_REVOKE = """
redis.call('SADD', KEYS[1], ARGV[1])
local body = redis.call('GET', KEYS[2])
if body then
    local account = cjson.decode(body)
    if account['revoked_at'] == cjson.null then
        account['revoked_at'] = ARGV[2]
        redis.call('SET', KEYS[2], cjson.encode(account))
    end
end
return 1
"""


def _json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)


class RedisAccounts:
    """`Accounts` in Redis."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        keys: RedisKeys = KEYS,
        replication: Replication | None = None,
    ) -> None:
        client, self._owns_client = given_or_connect(url, client, "RedisAccounts")
        self._redis = client
        self._keys = keys
        self._replication = replication or Replication()
        self._add = client.register_script(_ADD)
        self._replace = client.register_script(_REPLACE)
        self._revoke = client.register_script(_REVOKE)

    async def add_invite(self, invite: Invite) -> None:
        added = await self._replication.run(
            self._add,
            keys=[self._keys.invite(invite.id), self._keys.invites],
            args=[_json(invite.to_dict()), repr(invite.created_at.timestamp()), invite.id],
        )
        if not added:
            raise Conflict("that invite exists already")

    async def get_invite(self, invite_id: str) -> Invite:
        body = await self._redis.get(self._keys.invite(invite_id))
        if body is None:
            raise NotFound("no such invite")
        return Invite.from_dict(json.loads(body))

    async def list_invites(self, limit: int = LIST_LIMIT) -> list[Invite]:
        # A text client, no scores asked: plain ids (redis-py types any reply of ZRANGE).
        ids = cast("list[str]", await self._redis.zrevrange(self._keys.invites, 0, limit - 1))
        if not ids:
            return []
        bodies = await self._redis.mget([self._keys.invite(i) for i in ids])
        return [Invite.from_dict(json.loads(b)) for b in bodies if b is not None]

    async def replace_invite(self, invite: Invite, expected_version: int) -> bool:
        invite.version = expected_version + 1
        replaced = await self._replication.run(
            self._replace,
            keys=[self._keys.invite(invite.id)],
            args=[_json(invite.to_dict()), expected_version],
        )
        return bool(replaced)

    async def redeem_invite(self, invite: Invite, expected_version: int, account: Account) -> bool:
        invite.version = expected_version + 1
        replaced = await self._replication.run(
            self._replace,
            keys=[
                self._keys.invite(invite.id),
                self._keys.account(account.id),
                self._keys.accounts,
            ],
            args=[
                _json(invite.to_dict()),
                expected_version,
                _json(account.to_dict()),
                repr(account.created_at.timestamp()),
                account.id,
            ],
        )
        return bool(replaced)

    async def list_accounts(self, limit: int = LIST_LIMIT) -> list[Account]:
        # A text client, no scores asked: plain ids (redis-py types any reply of ZRANGE).
        ids = cast("list[str]", await self._redis.zrevrange(self._keys.accounts, 0, limit - 1))
        if not ids:
            return []
        bodies = await self._redis.mget([self._keys.account(i) for i in ids])
        return [Account.from_dict(json.loads(b)) for b in bodies if b is not None]

    async def revoke(self, account_id: str, at: datetime) -> None:
        await self._replication.run(
            self._revoke,
            keys=[self._keys.revoked, self._keys.account(account_id)],
            args=[account_id, at.isoformat()],
        )

    async def is_revoked(self, account_id: str) -> bool:
        return bool(await self._redis.sismember(self._keys.revoked, account_id))

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
