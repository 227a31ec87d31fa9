"""Writes that must survive a failover (cluster/replication.py), against real redis-servers:
acknowledged once a replica holds them, refused (503) otherwise, and safe to run twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from causerie.cluster.replication import NotReplicated, Replication, refused_for_now
from causerie.domain import Space
from causerie.domain.questions import Question
from causerie.store.redis import RedisStore
from tests.conftest import account
from tests.harness.in_process import run_node
from tests.harness.polling import eventually
from tests.harness.redis_server import RedisServer, run_redis

SET = "redis.call('SET', KEYS[1], ARGV[1]) return 1"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    made = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield made
    await made.aclose()


async def test_a_write_no_replica_acknowledged_is_not_acknowledged(
    client: aioredis.Redis,
) -> None:
    script = client.register_script(SET)
    with pytest.raises(NotReplicated, match="0 of 1 replica"):
        await Replication(1, 0.05).run(script, ["k"], ["v"])
    # It is on the primary (it may be kept or lost): the caller was told to retry.
    assert await client.get("k") == "v"
    assert await Replication().run(script, ["k"], ["w"]) == 1  # one Redis: nobody to wait for


async def test_a_write_a_replica_holds_is_acknowledged(tmp_path: Path) -> None:
    with run_redis(tmp_path / "primary") as primary:
        replica = RedisServer(tmp_path / "replica", replica_of=primary.port)
        replica.start()
        try:
            with redis.Redis(port=replica.port, decode_responses=True) as on_replica:
                await eventually(
                    lambda: on_replica.info("replication")["master_link_status"] == "up",
                    10,
                    "the replica in sync",
                )
                client = aioredis.Redis.from_url(primary.url, decode_responses=True)
                try:
                    script = client.register_script(SET)
                    assert await Replication(1, 1.0).run(script, ["k"], ["v"]) == 1
                finally:
                    await client.aclose()
                assert on_replica.get("k") == "v"  # there as soon as it was acknowledged
        finally:
            replica.stop()


async def test_a_store_write_run_twice_finds_its_own_result(redis_url: str) -> None:
    """As redis-py runs a write again when the connection broke before its reply (a failover):
    the second run is not a conflict with the first."""
    store = RedisStore(redis_url)
    try:
        space = Space.create(
            space_id="s1", host_id="h", host_name="Hana", title="Twice", now=datetime.now(UTC)
        )
        await store.create_space(space)
        await store.create_space(space)
        space.title = "Renamed"
        assert await store.replace_space(space, 0)
        assert await store.replace_space(space, 0)  # the same write (same body, version 1)
        assert (await store.get_space("s1")).title == "Renamed"
        question = Question(
            id="q1",
            space_id="s1",
            author_id="l",
            author_name="L",
            text="Twice?",
            created_at=datetime.now(UTC),
        )
        await store.add_question(question)
        await store.add_question(question)
        assert [q.id for q in await store.list_questions("s1")] == ["q1"]
    finally:
        await store.close()


async def test_redis_refusing_writes_is_a_503_not_a_500(tmp_path: Path, redis_url: str) -> None:
    """A primary without its replicas (`min-replicas-to-write`) refuses writes: the API says
    503 and Retry-After, and listeners still join."""
    async with (
        run_node(tmp_path / "data", redis_url=redis_url) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
    ):
        host = account(node.data_dir, user="u-host")
        space = (await http.post("/api/spaces", json={"title": "R"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        listener = (await http.post(f"{base}/join", json={"name": "L"})).json()
        who = {"Authorization": f"Bearer {listener['token']}"}
        with redis.Redis.from_url(redis_url) as admin:
            admin.config_set("min-replicas-to-write", 1)
            try:
                refused = await http.post(f"{base}/questions", json={"text": "Now?"}, headers=who)
                joined = await http.post(f"{base}/join", json={"name": "M"})
            finally:
                admin.config_set("min-replicas-to-write", 0)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "unavailable" and refused.headers["retry-after"]
        assert joined.status_code == 200, joined.text
        later = await http.post(f"{base}/questions", json={"text": "Now?"}, headers=who)
        assert later.status_code == 201, later.text


async def test_a_join_while_redis_is_down_is_a_503(tmp_path: Path) -> None:
    """The fast join path answers as the rest of the API does when Redis is unreachable."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        async with (
            run_node(tmp_path / "data", redis_url=server.url) as node,
            httpx.AsyncClient(base_url=node.url, timeout=10) as http,
        ):
            host = account(node.data_dir, user="u-host")
            space = (await http.post("/api/spaces", json={"title": "R"}, headers=host)).json()
            server.stop()
            await eventually(  # once the node's one-second copy of the space has expired
                lambda: _join_status(http, space["id"], 503), 10, "a 503 for a join"
            )
    finally:
        server.stop()


async def _join_status(http: httpx.AsyncClient, space_id: str, wanted: int) -> bool:
    reply = await http.post(f"/api/spaces/{space_id}/join", json={"name": "L"})
    assert reply.status_code in (200, wanted), reply.text
    if reply.status_code == wanted:
        assert reply.headers["retry-after"] and reply.json()["error"] == "unavailable"
    return reply.status_code == wanted


def test_what_counts_as_refused_for_now() -> None:
    refusals = [
        "NOREPLICAS Not enough good replicas to write.",
        "READONLY You can't write against a read only replica.",
        "ERR Error running script (call to f_0): @user_script:1: NOREPLICAS Not enough good "
        "replicas to write. script: f_0, on @user_script:1.",
    ]
    for message in refusals:
        assert refused_for_now(redis.ResponseError(message)), message
    assert refused_for_now(NotReplicated("0 of 1"))
    assert not refused_for_now(redis.ResponseError("WRONGTYPE Operation against a key"))
    assert not refused_for_now(ValueError("NOREPLICAS"))
