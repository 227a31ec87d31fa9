"""Two real nodes sharing one Redis: one deployment, whichever node a request reaches."""

from __future__ import annotations

import asyncio
import json

import httpx

from causerie.secret_file import SECRET_FILE
from tests.api.test_events import read_events
from tests.conftest import account
from tests.nodes import run_node


async def events_until_title(response, title: str) -> list[tuple[int, str, dict]]:
    """(id, type, data) of the stream's events up to the `space` event with this title."""
    seen: list[tuple[int, str, dict]] = []
    while True:
        (event,) = await read_events(response, 1)
        if event["event"] == "ping":
            continue
        data = json.loads(event["data"])
        seen.append((int(event["id"]), event["event"], data))
        if event["event"] == "space" and data.get("title") == title:
            return seen


async def test_two_nodes_share_spaces_questions_events_and_secret(tmp_path, redis_url) -> None:
    async with (
        run_node(tmp_path / "one", redis_url=redis_url) as one,
        run_node(tmp_path / "two", redis_url=redis_url) as two,
        httpx.AsyncClient(base_url=one.url, timeout=10) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
    ):
        # One signing secret, kept in Redis: node two took node one's.
        secret_one = (one.data_dir / SECRET_FILE).read_text()
        assert (two.data_dir / SECRET_FILE).read_text() == secret_one

        # Created on node one (with a token made beside node one), read on node two.
        host = account(one.data_dir, user="u-host")
        created = await http1.post("/api/spaces", json={"title": "Both"}, headers=host)
        assert created.status_code == 201
        space = created.json()
        base = f"/api/spaces/{space['id']}"
        seen_by_two = await http2.get(base)
        assert seen_by_two.status_code == 200 and seen_by_two.json()["title"] == "Both"
        listed = (await http2.get("/api/spaces")).json()
        assert space["id"] in json.dumps(listed)

        async with (
            http1.stream("GET", f"{base}/events") as stream1,
            http2.stream("GET", f"{base}/events") as stream2,
        ):
            (snap1,) = await read_events(stream1, 1)
            (snap2,) = await read_events(stream2, 1)
            assert snap1["event"] == snap2["event"] == "snapshot"

            assert (await http1.post(f"{base}/start", headers=host)).status_code == 200
            # Listeners join through either node; their tokens work on both.
            joined_two = (await http2.post(f"{base}/join", json={"name": "Ana"})).json()
            joined_one = (await http1.post(f"{base}/join", json={"name": "Bo"})).json()
            ana = {"Authorization": f"Bearer {joined_two['token']}"}
            bo = {"Authorization": f"Bearer {joined_one['token']}"}

            # Asked on node two, voted on node one, listed on both.
            asked = await http2.post(f"{base}/questions", json={"text": "Two nodes?"}, headers=ana)
            assert asked.status_code == 201
            question = asked.json()
            vote = await http1.post(f"{base}/questions/{question['id']}/votes", headers=bo)
            assert vote.status_code == 201 and vote.json()["votes"] == 1
            again = await http2.post(f"{base}/questions/{question['id']}/votes", headers=bo)
            assert again.status_code == 409
            on_one = (await http1.get(f"{base}/questions")).json()["questions"]
            assert [(x["id"], x["votes"]) for x in on_one] == [(question["id"], 1)]
            await asyncio.sleep(1.5)  # the once-a-second question events go out

            # The host's token (made beside node one) works on node two.
            edited = await http2.patch(base, json={"title": "Done"}, headers=host)
            assert edited.status_code == 200

            events1 = await events_until_title(stream1, "Done")
            events2 = await events_until_title(stream2, "Done")

        # Both nodes' streams: the same events, in the same order, with the same ids.
        assert events1 == events2
        ids = [event_id for event_id, _, _ in events1]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        types = [kind for _, kind, _ in events1]
        assert types[0] == "space" and events1[0][2]["state"] == "live"
        assert "questions" in types

        # Listening now counts the listeners of both nodes, on both nodes.
        for http in (http1, http2):
            for _ in range(50):
                if (await http.get(base)).json()["listeners_now"] == 2:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("listeners of both nodes were not counted")
