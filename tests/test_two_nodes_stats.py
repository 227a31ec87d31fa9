"""Two real nodes on one Redis show the same, honest audience numbers: the deployment's."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import account
from tests.harness.in_process import run_node

INTERVAL = 2.0  # heartbeat buckets of 2 s, so a sample is taken within the test


async def test_both_nodes_count_the_listeners_of_both(tmp_path, redis_url) -> None:
    options = {"redis_url": redis_url, "heartbeat_interval": INTERVAL}
    async with (
        run_node(tmp_path / "one", **options) as one,
        run_node(tmp_path / "two", **options) as two,
        httpx.AsyncClient(base_url=one.url, timeout=10) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
    ):
        host = account(one.data_dir, user="u-host")
        space = (await http1.post("/api/spaces", json={"title": "Counted"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http1.post(f"{base}/start", headers=host)).status_code == 200

        # 20 listeners join through node one, 20 through node two; then every one of them
        # sends a heartbeat through the *other* node (behind a balancer, requests move).
        tokens = []
        for http in (http1, http2):
            for _ in range(20):
                joined = await http.post(f"{base}/join")
                assert joined.status_code == 200, joined.text
                tokens.append(joined.json()["token"])
        for index, token in enumerate(tokens):
            other = http2 if index < 20 else http1
            beat = await other.post(
                f"{base}/heartbeat", headers={"Authorization": f"Bearer {token}"}
            )
            assert beat.status_code == 204, beat.text

        # A bucket ends, the nodes share their numbers (every second) and take its sample.
        numbers = []
        for _ in range(60):
            await asyncio.sleep(0.25)
            numbers = [(await http.get(f"{base}/stats")).json() for http in (http1, http2)]
            peaks = [(n["peak"] or {}).get("listeners", 0) for n in numbers]
            if min(peaks) >= 39 and all(n["joins"]["admitted"] == 40 for n in numbers):
                break
        for stats in numbers:
            assert stats["joins"]["admitted"] == 40  # sums of both nodes, exact
            assert stats["joins"]["attempted"] == 40
            assert stats["heartbeats"] == 40
            assert 39 <= stats["unique_listeners"] <= 41  # a union: 40, not 80
            assert 39 <= stats["peak"]["listeners"] <= 41  # not one node's 20, not a sum of 80
        # The same numbers on both nodes.
        assert numbers[0]["peak"] == numbers[1]["peak"]
        assert numbers[0]["unique_listeners"] == numbers[1]["unique_listeners"]
