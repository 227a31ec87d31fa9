"""Two real nodes on one Redis: a listener's rate limit is the deployment's, not each node's."""

from __future__ import annotations

import httpx

from tests.conftest import account
from tests.harness.in_process import run_node


async def test_a_listener_cannot_double_the_limit_by_using_two_nodes(tmp_path, redis_url) -> None:
    async with (
        run_node(tmp_path / "one", redis_url=redis_url) as one,
        run_node(tmp_path / "two", redis_url=redis_url) as two,
        httpx.AsyncClient(base_url=one.url, timeout=10) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
    ):
        host = account(one.data_dir, user="u-host")
        space = (await http1.post("/api/spaces", json={"title": "Limits"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http1.post(f"{base}/start", headers=host)).status_code == 200
        token = (await http1.post(f"{base}/join")).json()["token"]
        listener = {"Authorization": f"Bearer {token}"}

        # Questions: 3 at once per token. Alternating nodes, the fourth is refused.
        statuses = []
        for n, http in enumerate((http1, http2, http1, http2)):
            asked = await http.post(
                f"{base}/questions", json={"text": f"Question {n}?"}, headers=listener
            )
            statuses.append(asked.status_code)
        assert statuses == [201, 201, 201, 429], statuses
        assert int(asked.headers["retry-after"]) >= 1
        assert "questions" in asked.json()["message"]
