"""Two real nodes sharing one Redis: one deployment, whichever node a request reaches."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from causerie.security.secret_file import SECRET_FILE
from tests.api.test_events import read_events
from tests.conftest import account
from tests.fixtures.rtc import ToneTrack, loopback_only, publish
from tests.harness.in_process import run_node
from tests.harness.polling import eventually
from tests.harness.ports import free_port


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

            async def both_counted(http: httpx.AsyncClient = http) -> bool:
                return (await http.get(base)).json()["listeners_now"] == 2

            await eventually(both_counted, 5, "the listeners of both nodes counted", every=0.1)


# -- one owner per space's media, reached through any node -----------------------------------


def shared_node(data_dir: Path, redis_url: str):
    """A node on one Redis, on a port chosen beforehand: the URL it advertises to the others
    (where they forward requests for the spaces it runs) must be its real one."""
    return run_node(
        data_dir, port=free_port(), redis_url=redis_url, rtc_host_addresses=("127.0.0.1",)
    )


async def test_media_runs_on_its_owner_and_is_forwarded_from_the_other_node(
    tmp_path, redis_url
) -> None:
    loopback_only()
    async with (
        shared_node(tmp_path / "one", redis_url) as one,
        shared_node(tmp_path / "two", redis_url) as two,
        httpx.AsyncClient(base_url=one.url, timeout=15) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=15) as http2,
    ):
        host = account(one.data_dir, user="u-host")
        space = (await http1.post("/api/spaces", json={"title": "Owned"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http1.post(f"{base}/start", headers=host)).status_code == 200
        # Going live claimed the space for node one at once: its media runs there only.
        assert one.app.services.broadcasts.live_ids() == [space["id"]]
        await asyncio.sleep(1.2)  # a supervisor tick of each node: nothing moves
        assert one.app.services.broadcasts.live_ids() == [space["id"]]
        assert two.app.services.broadcasts.live_ids() == []
        pipeline = one.app.services.broadcasts.get(space["id"])
        await pipeline.wait_for(pipeline.packager.first_msn, 2, timeout=5)

        # LL-HLS through node two: the owner's bytes and headers, not a redirect.
        playlist_url = space["media_playlist_url"]
        last_msn, last_part = pipeline.packager.last_part()
        blocking = f"{playlist_url}?_HLS_msn={last_msn}&_HLS_part={last_part + 1}"
        via_two = await http2.get(blocking)
        assert via_two.status_code == 200, via_two.text
        assert via_two.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert via_two.headers["cache-control"] == "public, max-age=6"
        playlist = via_two.text
        part_uri = pipeline.packager.part_uri(last_msn, last_part)
        assert part_uri in playlist
        part_path = f"/hls/{space['id']}/{part_uri}"
        part_two, part_one = await http2.get(part_path), await http1.get(part_path)
        assert part_two.status_code == part_one.status_code == 200
        assert part_two.content == part_one.content and len(part_two.content) > 100
        assert part_two.headers["cache-control"] == part_one.headers["cache-control"]
        assert part_two.headers["content-type"] == "audio/mp4"
        assert two.app.services.forwarder.forwarded >= 2

        # Loops are refused: a forwarded request for a space the receiving node does not run.
        looped = await http2.get(playlist_url, headers={"X-Causerie-Forwarded": one.url})
        assert looped.status_code == 503 and looped.headers["retry-after"] == "1"
        assert (await http2.get("/hls/nosuchspace/index.m3u8")).status_code == 404

        # WHIP through node two: the owner answers (its checks, its session, its candidates).
        path = f"/whip/{space['id']}"
        unauthenticated = await http2.post(path, content="v=0", headers=sdp_type())
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["www-authenticate"] == "Bearer"
        joined = (await http2.post(f"{base}/join", json={"name": "Lou"})).json()
        refused = await http2.post(
            path, content="v=0", headers=sdp_type(joined["token"])
        )  # a listener may not publish
        assert refused.status_code == 403, refused.text
        assert refused.headers["access-control-allow-origin"] == "*"
        patched = await http2.patch(f"{path}/sessions/nope", headers=host)
        assert patched.status_code == 404  # trickle ICE goes to the owner: no such session
        token = host["Authorization"].split()[1]
        speaker = await publish(http2, space["id"], token, ToneTrack(440), receive=False)
        try:
            candidates = [x for x in speaker.answer.splitlines() if "a=candidate:" in x]
            assert candidates and all(" 127.0.0.1 " in line for line in candidates)
            [session] = one.app.services.speakers.sessions(space["id"])
            assert session.user_id == "u-host"
            assert two.app.services.speakers.sessions(space["id"]) == []
            await speaker.wait_connected()
            speakers = one.app.services.speakers
            await eventually(
                lambda: speakers.sessions(space["id"])[0].frames_received > 25,
                10,
                "the tone reached node one",
            )
            # A mute handled by node two reaches the owner's mixer within about a tick.
            muted = await http2.put(
                f"{base}/stage/u-host/muted", json={"muted": True}, headers=host
            )
            assert muted.status_code == 200
            mixer = one.app.services.broadcasts.get(space["id"]).mixer
            took = await eventually(lambda: mixer.inputs["u-host"].muted, 3, "muted on node one")
            assert took < 2.0
            stopped = await http2.delete(speaker.location, headers=host)
            assert stopped.status_code == 200
            assert one.app.services.speakers.sessions(space["id"]) == []
            missing = await http2.delete(speaker.location, headers=host)
            assert missing.status_code == 404
        finally:
            await speaker.close()

        # Ended through node two: the owner stops within about a tick, and node two forwards
        # listeners to its ended playlist.
        assert (await http2.post(f"{base}/end", headers=host)).status_code == 200
        took = await eventually(
            lambda: one.app.services.broadcasts.live_ids() == [], 2.0, "node one stopped"
        )
        assert took < 1.5
        ended = await http2.get(playlist_url)
        assert ended.status_code == 200 and "#EXT-X-ENDLIST" in ended.text


def sdp_type(token: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def test_an_unreachable_owner_means_503_and_the_space_comes_back(tmp_path, redis_url) -> None:
    async with (
        shared_node(tmp_path / "one", redis_url) as one,
        shared_node(tmp_path / "two", redis_url) as two,
        httpx.AsyncClient(base_url=one.url, timeout=15) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=15) as http2,
    ):
        host = account(one.data_dir, user="u-host")
        space = (await http1.post("/api/spaces", json={"title": "Lost"}, headers=host)).json()
        assert (await http1.post(f"/api/spaces/{space['id']}/start", headers=host)).is_success
        assert one.app.services.broadcasts.live_ids() == [space["id"]]

        # Another "node" holds the lease now, at an address where nothing answers.
        lease = f"causerie:owner:{space['id']}"
        redis = aioredis.Redis.from_url(redis_url)
        try:
            await redis.set(lease, f"gone http://127.0.0.1:{free_port()}", px=20_000)
            # Node one learns at its next tick that it lost the space, and stops at once.
            await eventually(
                lambda: one.app.services.broadcasts.get(space["id"]) is None, 3, "node one stops"
            )
            for node in (one, two):
                node.app.services.forwarder.hold = 0.5
            for http in (http1, http2):
                playlist = await http.get(space["media_playlist_url"])
                assert playlist.status_code == 503, playlist.text
                assert playlist.headers["retry-after"] == "1"
                assert playlist.json()["error"] == "unavailable"
            whip = await http2.post(
                f"/whip/{space['id']}", content="v=0", headers=sdp_type("whatever")
            )
            assert whip.status_code == 503 and whip.headers["retry-after"] == "1"

            # The lease goes (expired): a node claims the space within a tick; listeners are
            # served again through either node.
            await redis.delete(lease)
        finally:
            await redis.aclose()
        await eventually(
            lambda: (
                one.app.services.broadcasts.live_ids() + two.app.services.broadcasts.live_ids()
                == [space["id"]]
            ),
            3,
            "a node took the space",
        )
        for node in (one, two):
            node.app.services.forwarder.hold = 5.0  # the new run's first part is on its way
        for http in (http1, http2):
            assert (await http.get(space["media_playlist_url"])).status_code == 200
