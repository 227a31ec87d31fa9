"""Redis restarted (`kill -9`, then started again on its append-only file) under two nodes: the
nodes reconnect by themselves, every question and role change they acknowledged is still there,
listeners' heartbeats count again, and a live event stream resumes (reconnecting with
Last-Event-ID, as browsers do) without losing an event.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from causerie.node.services import SPACE_CACHE_SECONDS
from tests.harness.event_stream import EventFollower
from tests.harness.in_process import run_node
from tests.harness.polling import eventually
from tests.harness.ports import stable_port
from tests.harness.redis_server import RedisServer

pytestmark = pytest.mark.slow

DOWN_FOR = 3.0  # seconds Redis stays dead: longer than a command retries (about 0.7 s)
RECOVER_WITHIN = 10.0


async def _until_ok(call, timeout: float, what: str) -> tuple[httpx.Response, float]:
    """Retry `call` (a request) until 2xx; (response, seconds it took)."""
    replies: list[httpx.Response] = []

    async def succeeded() -> bool:
        try:
            reply = await call()
        except httpx.HTTPError:
            return False
        assert reply.is_success or reply.status_code >= 500, (reply.status_code, reply.text)
        replies.append(reply)
        return reply.is_success

    took = await eventually(succeeded, timeout, what, every=0.1)
    return replies[-1], took


async def test_redis_restart_under_two_nodes(tmp_path: Path) -> None:
    # Durable (append-only file, fsync always), on a port it can bind again after the kill.
    redis = RedisServer(tmp_path / "redis", stable_port(), durable=True)
    redis.start()
    try:
        async with (
            run_node(tmp_path / "a", redis_url=redis.url) as a,
            run_node(tmp_path / "b", redis_url=redis.url) as b,
            httpx.AsyncClient(base_url=a.url, timeout=5) as on_a,
            httpx.AsyncClient(base_url=b.url, timeout=5) as on_b,
            httpx.AsyncClient(base_url=b.url, timeout=None) as events_b,
        ):
            token = issue_account_token(tmp_path / "a", "Hana", "u-host", 1, redis.url)
            host = {"Authorization": f"Bearer {token}"}
            space = (await on_a.post("/api/spaces", json={"title": "R"}, headers=host)).json()
            base = f"/api/spaces/{space['id']}"
            assert (await on_a.post(f"{base}/start", headers=host)).status_code == 200
            listeners = []
            for client in (on_a, on_b):
                joined = (await client.post(f"{base}/join", json={"name": "L"})).json()
                listeners.append(({"Authorization": f"Bearer {joined['token']}"}, joined))
            follower = EventFollower(events_b, f"{base}/events")
            following = asyncio.create_task(follower.run())
            try:
                acknowledged: list[str] = []
                for i, (client, (who, _)) in enumerate(zip((on_a, on_b), listeners, strict=True)):
                    reply = await client.post(
                        f"{base}/questions", json={"text": f"Q{i}"}, headers=who
                    )
                    assert reply.status_code == 201, reply.text
                    acknowledged.append(reply.json()["id"])
                # A role change: the listener on B raises a hand, the host (on A) brings them up.
                speaker_id = listeners[1][1]["listener_id"]
                hand = await on_b.post(f"{base}/speak-requests", headers=listeners[1][0])
                assert hand.status_code == 200, hand.text
                approve = await on_a.post(
                    f"{base}/speak-requests/{speaker_id}/approve", headers=host
                )
                assert approve.status_code == 200, approve.text
                await asyncio.sleep(1.0)
                seen_before = len(follower.events)
                assert follower.of_type("space"), follower.events

                redis.kill9()
                # A question asked while Redis is down is refused (503, retry), not lost after
                # being acknowledged.
                during = asyncio.create_task(
                    on_a.post(
                        f"{base}/questions",
                        json={"text": "During"},
                        headers=listeners[0][0],
                        timeout=20,
                    )
                )
                await asyncio.sleep(DOWN_FOR)
                redis.start()
                restarted = time.monotonic()

                # Both nodes work again by themselves: a question through each.
                for i, (client, (who, _)) in enumerate(zip((on_a, on_b), listeners, strict=True)):
                    reply, took = await _until_ok(
                        lambda c=client, w=who, i=i: c.post(
                            f"{base}/questions", json={"text": f"After {i}"}, headers=w
                        ),
                        RECOVER_WITHIN,
                        f"a question through node {'ab'[i]}",
                    )
                    acknowledged.append(reply.json()["id"])
                    print(f"\nnode {'ab'[i]} wrote again {took:.1f} s after the restart")
                # A role change after the restart, made on A, must reach the stream on B.
                cohost = await on_a.put(f"{base}/cohosts/{speaker_id}", headers=host)
                assert cohost.status_code == 200, cohost.text
                await eventually(
                    lambda: any(
                        e[2].get("stage")
                        and any(
                            p.get("id") == speaker_id and p.get("role") == "cohost"
                            for p in e[2]["stage"]
                        )
                        for e in follower.of_type("space")
                    ),
                    RECOVER_WITHIN,
                    lambda: f"the cohost on node b's stream: {follower.events[seen_before:]}",
                    every=0.1,
                )
                print(f"live events back on node b {time.monotonic() - restarted:.1f} s after")
                down = await during
                print(f"the question asked during the outage: {down.status_code}")
                assert down.status_code == 503, down.text
                assert down.json()["error"] == "unavailable" and down.headers["retry-after"]
            finally:
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)

            # Nothing acknowledged was lost: the questions, the role changes (read once the
            # nodes' one-second cache of the space has expired).
            await asyncio.sleep(SPACE_CACHE_SECONDS + 0.1)
            for client in (on_a, on_b):
                listed = (await client.get(f"{base}/questions")).json()["questions"]
                assert {q["id"] for q in listed} == set(acknowledged), listed
                details = (await client.get(base)).json()
                roles = {p["id"]: p["role"] for p in details["stage"]}
                assert roles.get(speaker_id) == "cohost", details["stage"]
            # Event ids are contiguous: nothing was lost on the stream, nothing repeated.
            print(f"event stream connections: {follower.connections}")
            assert not follower.of_type("reset"), follower.events
            ids = [e[0] for e in follower.events]
            assert ids == list(range(ids[0], ids[0] + len(ids))), ids
            # Heartbeats count again on both nodes.
            for client, (who, _) in zip((on_a, on_b), listeners, strict=True):
                beat = await client.post(f"{base}/heartbeat", headers=who)
                assert beat.status_code == 204, beat.text
    finally:
        redis.stop()
