"""The raised-hand queue on a real node, as the finding reported it: one machine minting free
listener tokens must not fill the queue, hands expire, moderators see honest people first."""

from __future__ import annotations

import time

import httpx

from tests.conftest import account
from tests.harness.in_process import run_node

BOT = {"X-Forwarded-For": "198.51.100.7"}
HONEST = {"X-Forwarded-For": "203.0.113.20"}


async def live_space(client: httpx.AsyncClient, data_dir) -> tuple[str, dict[str, str]]:
    host = account(data_dir, user="u-host")
    created = await client.post("/api/spaces", json={"title": "Hands"}, headers=host)
    space_id = created.json()["id"]
    assert (await client.post(f"/api/spaces/{space_id}/start", headers=host)).status_code == 200
    return space_id, host


async def raise_hand(client, space_id: str, via: dict[str, str], name: str) -> httpx.Response:
    joined = await client.post(f"/api/spaces/{space_id}/join", json={"name": name}, headers=via)
    token = joined.json()["token"]
    return await client.post(
        f"/api/spaces/{space_id}/speak-requests",
        headers={**via, "Authorization": f"Bearer {token}"},
    )


async def test_one_address_cannot_fill_the_queue(tmp_path) -> None:
    async with (
        # The node believes the test's X-Forwarded-For, as it believes an edge's.
        run_node(tmp_path / "data", trusted_proxies=("127.0.0.1",)) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as client,
    ):
        space_id, host = await live_space(client, node.data_dir)
        statuses = [
            (await raise_hand(client, space_id, BOT, f"Bot {n}")).status_code for n in range(12)
        ]
        assert statuses == [200] * 5 + [429] * 7
        refused = await raise_hand(client, space_id, BOT, "Bot 12")
        assert "from your network address" in refused.json()["message"]
        honest = await raise_hand(client, space_id, HONEST, "Ana")
        assert honest.status_code == 200, honest.text
        assert honest.json()["requests_waiting"] == 6

        queue = await client.get(f"/api/spaces/{space_id}/speak-requests", headers=host)
        names = [r["name"] for r in queue.json()["requests"]]
        assert names[0] == "Ana"  # the one honest hand first, the machine's five after
        assert sorted(names[1:]) == [f"Bot {n}" for n in range(5)]
        # The stored space keeps no address, only a keyed pseudonym.
        stored = (await node.app.services.store.get_space(space_id)).to_dict()
        assert "198.51.100.7" not in str(stored)


async def test_hands_expire_after_ten_minutes(node, client) -> None:
    svc = node.app.services
    space_id, host = await live_space(client, node.data_dir)
    assert (await raise_hand(client, space_id, {}, "Lou")).status_code == 200
    queue = await client.get(f"/api/spaces/{space_id}/speak-requests", headers=host)
    (hand,) = queue.json()["requests"]
    assert hand["name"] == "Lou" and hand["account"] is False

    start = time.time()
    svc.clock = lambda: start + 601
    queue = await client.get(f"/api/spaces/{space_id}/speak-requests", headers=host)
    assert queue.json()["requests"] == []
    details = await client.get(f"/api/spaces/{space_id}")
    assert details.json()["requests_waiting"] == 0
    late = await client.post(
        f"/api/spaces/{space_id}/speak-requests/{hand['user_id']}/approve", headers=host
    )
    assert late.status_code == 404, late.text
