"""Two nodes sharing one Redis, seen and run by an operator: each node's console shows both
nodes (and the other as silent once it stops); an operator whose requests land on one node
removes a speaker and ends a space whose media runs on the other; an invite made on one node is
used once on either; a revocation made on one node holds on the other from the next request.
"""

from __future__ import annotations

import httpx

from causerie.api.whip import STAGE_SYNC_INTERVAL
from causerie.cli import issue_account_token
from causerie.cluster.nodes import SILENT_AFTER
from tests.conftest import account
from tests.fixtures.rtc import ToneTrack, loopback_only, publish
from tests.harness.in_process import run_node
from tests.harness.polling import eventually
from tests.harness.ports import free_port


def operator(data_dir, redis_url) -> dict[str, str]:
    token = issue_account_token(data_dir, "Olga", "u-op", 1, redis_url, operator=True)
    return {"Authorization": f"Bearer {token}"}


async def overview(http: httpx.AsyncClient, headers: dict[str, str]) -> dict:
    answer = await http.get("/api/admin/overview", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_nodes_view_shows_both_nodes_and_a_stopped_one(tmp_path, redis_url) -> None:
    options = {"redis_url": redis_url}
    async with run_node(tmp_path / "one", free_port(), **options) as one:
        url_one = one.app.services.config.node_url
        async with httpx.AsyncClient(base_url=one.url, timeout=10) as http1:
            op = operator(one.data_dir, redis_url)
            async with (
                run_node(tmp_path / "two", free_port(), **options) as two,
                httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
            ):
                url_two = two.app.services.config.node_url
                host = account(two.data_dir, user="u-host")
                space = (await http2.post("/api/spaces", json={"title": "T"}, headers=host)).json()
                started = await http2.post(f"/api/spaces/{space['id']}/start", headers=host)
                assert started.is_success

                async def both_seen() -> bool:
                    for http, me in ((http1, url_one), (http2, url_two)):
                        nodes = {n["url"]: n for n in (await overview(http, op))["nodes"]}
                        if set(nodes) != {url_one, url_two} or not nodes[me]["this_node"]:
                            return False
                        if any(n["status"] != "up" for n in nodes.values()):
                            return False
                        if not all(n["redis"] and n["redis"]["reachable"] for n in nodes.values()):
                            return False
                    return True

                await eventually(both_seen, 10, "both nodes in each node's console")
                seen = {n["url"]: n for n in (await overview(http1, op))["nodes"]}
                owned = seen[url_one]["live_spaces"] + seen[url_two]["live_spaces"]
                assert owned == [space["id"]]
                assert seen[url_two]["started_at"] and seen[url_two]["version"]
                listed = (await overview(http1, op))["spaces"]
                owner = next(s["owner"] for s in listed if s["id"] == space["id"])
                assert owner in (url_one, url_two)

            # Node two stopped: node one shows it silent after three missed reports.
            async def two_silent() -> bool:
                nodes = {n["url"]: n for n in (await overview(http1, op))["nodes"]}
                return nodes.get(url_two, {}).get("status") == "silent"

            await eventually(two_silent, SILENT_AFTER + 5, "node two shown as silent")


async def test_an_operator_acts_on_a_space_run_by_another_node(tmp_path, redis_url) -> None:
    loopback_only()
    rtc = {"redis_url": redis_url, "rtc_host_addresses": ("127.0.0.1",)}
    async with (
        run_node(tmp_path / "one", free_port(), **rtc) as one,
        run_node(tmp_path / "two", free_port(), **rtc) as two,
        httpx.AsyncClient(base_url=one.url, timeout=10) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
    ):
        host = account(two.data_dir, user="u-host")
        op = operator(one.data_dir, redis_url)
        space = (await http2.post("/api/spaces", json={"title": "Elsewhere"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http2.post(f"{base}/start", headers=host)).status_code == 200
        nodes = {"one": one, "two": two}

        def owner_name() -> str | None:
            return next(
                (n for n, node in nodes.items() if node.app.services.broadcasts.get(space["id"])),
                None,
            )

        await eventually(owner_name, 5, "a node running the space's media")
        owner = nodes[owner_name()]
        # The operator's requests go to the node that does not run the space.
        elsewhere = http1 if owner is two else http2
        owner_http = http2 if owner is two else http1

        joined = (await owner_http.post(f"{base}/join")).json()
        user, auth = joined["listener_id"], {"Authorization": f"Bearer {joined['token']}"}
        assert (await owner_http.post(f"{base}/speak-requests", headers=auth)).status_code == 200
        assert (
            await owner_http.post(f"{base}/speak-requests/{user}/approve", headers=host)
        ).status_code == 200
        speaker = await publish(owner_http, space["id"], joined["token"], ToneTrack(440))
        try:
            await speaker.wait_connected()
            sessions = owner.app.services.speakers
            assert sessions.sessions(space["id"])
            removed = await elsewhere.post(f"{base}/removals", json={"user_id": user}, headers=op)
            assert removed.status_code == 200, removed.text
            await eventually(
                lambda: not sessions.sessions(space["id"]), 3 * STAGE_SYNC_INTERVAL + 2
            )
            ended = await elsewhere.post(f"{base}/end", headers=op)
            assert ended.status_code == 200 and ended.json()["state"] == "ended"
            broadcasts = owner.app.services.broadcasts
            await eventually(
                lambda: space["id"] not in broadcasts.live_ids(), 5, "the owner stopping it"
            )
            listed = (await overview(owner_http, op))["spaces"]
            shown = next(s for s in listed if s["id"] == space["id"])
            assert shown["state"] == "ended"
            assert shown["stage"] == [{"id": "u-host", "name": "Hana"}]
        finally:
            await speaker.close()


async def test_invites_and_revocations_hold_on_every_node_at_once(tmp_path, redis_url) -> None:
    options = {"redis_url": redis_url}
    async with (
        run_node(tmp_path / "one", free_port(), **options) as one,
        run_node(tmp_path / "two", free_port(), **options) as two,
        httpx.AsyncClient(base_url=one.url, timeout=10) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
    ):
        op = operator(one.data_dir, redis_url)
        made = (await http1.post("/api/admin/invites", json={}, headers=op)).json()
        used = await http2.post(f"/api/invites/{made['code']}", json={"name": "Ada"})
        assert used.status_code == 201, used.text
        again = await http1.post(f"/api/invites/{made['code']}", json={"name": "Eve"})
        assert again.status_code == 409 and "used" in again.json()["message"]
        ada = {"Authorization": f"Bearer {used.json()['token']}"}
        for http in (http1, http2):
            created = await http.post("/api/spaces", json={"title": "Ada's"}, headers=ada)
            assert created.status_code == 201
        revoke = f"/api/admin/accounts/{used.json()['account']['id']}/revoke"
        assert (await http2.post(revoke, headers=op)).status_code == 200
        # No waiting: the very next request on the other node is refused.
        refused = await http1.post("/api/spaces", json={"title": "Again"}, headers=ada)
        assert refused.status_code == 401 and "revoked" in refused.json()["message"]
        accounts = (await http1.get("/api/admin/accounts", headers=op)).json()["accounts"]
        assert accounts[0]["revoked_at"] is not None
