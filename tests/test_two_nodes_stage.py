"""Two nodes sharing one Redis: moderation made through either node reaches a speaker's session.

The session lives on the node running the space's media (its owner); a host whose requests
land on the other node must still be able to mute and remove a rogue speaker (SECURITY.md).
"""

from __future__ import annotations

import httpx

from causerie.api.whip import STAGE_SYNC_INTERVAL
from tests.conftest import account
from tests.fixtures.rtc import ToneTrack, loopback_only, publish
from tests.harness.in_process import RunningNode, run_node
from tests.harness.polling import eventually


async def test_a_removal_through_another_node_ends_the_session(tmp_path, redis_url) -> None:
    loopback_only()
    rtc = {"redis_url": redis_url, "rtc_host_addresses": ("127.0.0.1",)}
    async with (
        run_node(tmp_path / "one", **rtc) as one,
        run_node(tmp_path / "two", **rtc) as two,
        httpx.AsyncClient(base_url=one.url, timeout=10) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
    ):
        host = account(one.data_dir, user="u-host")
        space = (await http1.post("/api/spaces", json={"title": "Two"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http1.post(f"{base}/start", headers=host)).status_code == 200
        joined = (await http1.post(f"{base}/join")).json()
        user, token = joined["listener_id"], joined["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert (await http1.post(f"{base}/speak-requests", headers=auth)).status_code == 200
        approved = await http1.post(f"{base}/speak-requests/{user}/approve", headers=host)
        assert approved.status_code == 200
        speaker = await publish(http1, space["id"], token, ToneTrack(440))
        try:
            await speaker.wait_connected()
            owner: RunningNode = one if one.app.services.speakers.sessions(space["id"]) else two
            elsewhere = http2 if owner is one else http1
            mixer = owner.app.services.broadcasts.get(space["id"]).mixer
            assert not mixer.inputs[user].muted

            muted = await elsewhere.put(
                f"{base}/stage/{user}/muted", json={"muted": True}, headers=host
            )
            assert muted.status_code == 200
            await eventually(lambda: mixer.inputs[user].muted, 3 * STAGE_SYNC_INTERVAL + 2)

            removed = await elsewhere.post(f"{base}/removals", json={"user_id": user}, headers=host)
            assert removed.status_code == 200
            sessions = owner.app.services.speakers
            await eventually(
                lambda: not sessions.sessions(space["id"]), 3 * STAGE_SYNC_INTERVAL + 2
            )
            assert user not in mixer.inputs
            again = await (http1 if owner is one else http2).post(
                f"/whip/{space['id']}",
                content=speaker.pc.localDescription.sdp,
                headers={**auth, "Content-Type": "application/sdp"},
            )
            assert again.status_code == 403 and "removed" in again.json()["message"]
        finally:
            await speaker.close()
