"""WHIP (RFC 9725) on a real node: aiortc clients publish tones, the LL-HLS output carries them.

Each client is a real WebRTC peer in this process; ICE uses 127.0.0.1 only (node and clients).
What listeners get is checked by decoding the node's own LL-HLS parts; what speakers hear back
(their mix-minus) by the frames arriving on each client's incoming track.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import httpx
import m3u8
import pytest
from aiortc import RTCSessionDescription

from causerie.domain import SpaceState
from causerie.store import update_space
from tests.conftest import account
from tests.fixtures.rtc import ToneTrack, loopback_only, offer, publish
from tests.harness.in_process import RunningNode, run_node
from tests.harness.polling import eventually
from tests.media.conftest import decode, spectrum_at

HEARD = 0.1  # spectrum magnitude (full scale 1) above which a -12 dBFS (0.25) tone is there
ABSENT = 0.005  # below which it is not


@pytest.fixture
async def node(tmp_path) -> AsyncIterator[RunningNode]:
    """A node whose WebRTC uses 127.0.0.1 only (as do the clients of these tests)."""
    loopback_only()
    async with run_node(tmp_path / "data", rtc_host_addresses=("127.0.0.1",)) as running:
        yield running


@pytest.fixture
async def live(client, node) -> dict:
    """A live space; returns its details plus the host's token and headers."""
    host = account(node.data_dir, "Hana", user="u-host")
    space = (await client.post("/api/spaces", json={"title": "WHIP"}, headers=host)).json()
    assert (await client.post(f"/api/spaces/{space['id']}/start", headers=host)).is_success
    return {**space, "host": host, "token": host["Authorization"].split()[1]}


def frag_headers(token: str | None, if_match: str | None = "*") -> dict[str, str]:
    headers = {"Content-Type": "application/trickle-ice-sdpfrag"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if if_match is not None:
        headers["If-Match"] = if_match
    return headers


def sdp_headers(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def listener(client: httpx.AsyncClient, space_id: str) -> tuple[str, str]:
    """A listener of the space: (user id, token)."""
    joined = (await client.post(f"/api/spaces/{space_id}/join", json={"name": "Lou"})).json()
    return joined["listener_id"], joined["token"]


async def promote(node: RunningNode, space_id: str, user_id: str) -> None:
    """The listener raises a hand and the host approves: they are a speaker now."""
    svc = node.app.services

    def change(space) -> None:
        space.request_to_speak(user_id, "Lou", svc.now())
        space.answer_request(space.host_id, user_id, approve=True)

    await update_space(svc.store, space_id, change)


async def recent_output(client: httpx.AsyncClient, space_id: str, seconds: float = 1.0):
    """The last `seconds` of the space's LL-HLS output, decoded (mono float samples)."""
    playlist = m3u8.loads((await client.get(f"/hls/{space_id}/index.m3u8")).text)
    base = f"/hls/{space_id}"
    init = (await client.get(f"{base}/{playlist.segment_map[0].uri}")).content
    parts = [p for s in playlist.segments for p in s.parts]
    count = max(1, round(seconds / parts[-1].duration))
    media = [(await client.get(f"{base}/{p.uri}")).content for p in parts[-count:]]
    samples, _ = decode(init + b"".join(media))
    return (samples * 32768).astype("int16")


async def parts_advance(node: RunningNode, space_id: str, seconds: float = 1.0) -> bool:
    """Whether the pipeline still produces parts."""
    pipeline = node.app.services.broadcasts.get(space_id)
    before = pipeline.packager.last_part() or (-1, -1)
    await asyncio.sleep(seconds)
    return (pipeline.packager.last_part() or (-1, -1)) > before


# -- publishing ----------------------------------------------------------------------------


async def test_a_published_tone_reaches_the_listeners(client, node, live) -> None:
    speaker = await publish(client, live["id"], live["token"], ToneTrack(440))
    try:
        assert speaker.location.startswith(f"/whip/{live['id']}/sessions/")
        assert speaker.answer.startswith("v=0")
        assert "a=sendrecv" in speaker.answer
        candidates = [line for line in speaker.answer.splitlines() if "a=candidate:" in line]
        assert candidates and all(" 127.0.0.1 " in line for line in candidates)
        await speaker.wait_connected()
        await asyncio.sleep(2.5)
        heard = await recent_output(client, live["id"])
        assert spectrum_at(heard, 440) > HEARD
        assert spectrum_at(heard, 1000) < ABSENT
        [session] = node.app.services.speakers.sessions(live["id"])
        assert session.user_id == "u-host" and session.frames_received > 50

        # DELETE the session: the tone leaves the output, the pipeline goes on.
        response = await client.delete(speaker.location, headers=live["host"])
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert node.app.services.speakers.sessions(live["id"]) == []
        pipeline = node.app.services.broadcasts.get(live["id"])
        assert "u-host" not in pipeline.mixer.inputs
        await asyncio.sleep(1.5)
        assert spectrum_at(await recent_output(client, live["id"]), 440) < ABSENT
        assert (await client.delete(speaker.location, headers=live["host"])).status_code == 404
    finally:
        await speaker.close()


async def test_each_speaker_hears_the_others_but_not_themselves(client, node, live) -> None:
    user, token = await listener(client, live["id"])
    await promote(node, live["id"], user)
    a = await publish(client, live["id"], live["token"], ToneTrack(440))
    b = await publish(client, live["id"], token, ToneTrack(1000))
    try:
        await a.wait_connected()
        await b.wait_connected()
        # 2.5 s of audio back each (more wall time on a busy machine), the last second analysed.
        await eventually(lambda: min(len(a.received), len(b.received)) >= 125, 15)
        heard_a, heard_b = a.audio(1.0), b.audio(1.0)
        assert heard_a.size == heard_b.size == 48000
        assert spectrum_at(heard_a, 1000) > HEARD and spectrum_at(heard_a, 440) < ABSENT
        assert spectrum_at(heard_b, 440) > HEARD and spectrum_at(heard_b, 1000) < ABSENT
        program = await recent_output(client, live["id"])
        assert spectrum_at(program, 440) > HEARD and spectrum_at(program, 1000) > HEARD
    finally:
        await a.close()
        await b.close()


async def test_a_speaker_who_vanishes_is_removed_and_the_mix_goes_on(client, node, live) -> None:
    speaker = await publish(client, live["id"], live["token"], ToneTrack(440))
    await speaker.wait_connected()
    await asyncio.sleep(0.5)
    await speaker.close()  # no DELETE: the peer connection just goes away
    speakers = node.app.services.speakers
    await eventually(lambda: speakers.sessions(live["id"]) == [], 10)
    pipeline = node.app.services.broadcasts.get(live["id"])
    assert "u-host" not in pipeline.mixer.inputs
    assert await parts_advance(node, live["id"])


async def test_sendonly_offers_get_no_audio_back(client, node, live) -> None:
    speaker = await publish(client, live["id"], live["token"], ToneTrack(440), receive=False)
    try:
        assert "a=recvonly" in speaker.answer and "a=sendrecv" not in speaker.answer
        await speaker.wait_connected()
        [session] = node.app.services.speakers.sessions(live["id"])
        assert not session.sends_back
    finally:
        await speaker.close()


async def test_publishing_again_replaces_the_first_session(client, node, live) -> None:
    first = await publish(client, live["id"], live["token"], ToneTrack(440))
    second = await publish(client, live["id"], live["token"], ToneTrack(440))
    try:
        assert first.location != second.location
        [session] = node.app.services.speakers.sessions(live["id"])
        assert second.location.endswith(session.session_id)
        await second.wait_connected()
    finally:
        await first.close()
        await second.close()


async def test_moderation_mutes_and_ends_sessions(client, node, live) -> None:
    svc = node.app.services
    user, token = await listener(client, live["id"])
    await promote(node, live["id"], user)
    speaker = await publish(client, live["id"], token, ToneTrack(1000))
    try:
        await speaker.wait_connected()
        mixer = svc.broadcasts.get(live["id"]).mixer
        space, _ = await update_space(
            svc.store, live["id"], lambda s: s.set_muted(s.host_id, user, True)
        )
        svc.speakers.sync(space)
        assert mixer.inputs[user].muted
        # Taken off the stage: the session ends at once, the audio leaves the mix.
        space, _ = await update_space(
            svc.store, live["id"], lambda s: s.move_to_audience(s.host_id, user)
        )
        svc.speakers.sync(space)
        assert svc.speakers.sessions(live["id"]) == []
        assert user not in mixer.inputs
        await eventually(lambda: speaker.pc.connectionState == "closed", 10)
        # And they may not publish again.
        response = await client.post(
            f"/whip/{live['id']}", content=speaker.answer, headers=sdp_headers(token)
        )
        assert response.status_code == 403
    finally:
        await speaker.close()


async def test_a_cohost_may_end_a_speakers_session_a_listener_may_not(client, node, live) -> None:
    user, token = await listener(client, live["id"])
    await promote(node, live["id"], user)
    speaker = await publish(client, live["id"], token, ToneTrack(1000))
    try:
        _, other = await listener(client, live["id"])
        response = await client.delete(
            speaker.location, headers={"Authorization": f"Bearer {other}"}
        )
        assert response.status_code == 403
        assert (await client.delete(speaker.location)).status_code == 401
        assert (await client.delete(speaker.location, headers=live["host"])).status_code == 200
    finally:
        await speaker.close()


async def test_ending_the_space_ends_its_sessions(client, node, live) -> None:
    speaker = await publish(client, live["id"], live["token"], ToneTrack(440))
    try:
        await speaker.wait_connected()
        response = await client.post(f"/api/spaces/{live['id']}/end", headers=live["host"])
        assert response.status_code == 200
        assert node.app.services.speakers.sessions(live["id"]) == []
        await eventually(lambda: speaker.pc.connectionState == "closed", 10)
    finally:
        await speaker.close()


async def test_a_speaker_whose_audio_stops_is_reconnecting_on_every_page(client, node, live):
    from causerie.node.loops import WhoIsReconnecting
    from causerie.node.periodic import Periodic

    svc = node.app.services
    tone = ToneTrack(440)
    speaker = await publish(client, live["id"], live["token"], tone)
    publisher = Periodic("publish-reconnecting", 0.25, WhoIsReconnecting(svc).step)
    publisher.start()
    try:
        await speaker.wait_connected()
        await eventually(lambda: svc.speakers.sessions(live["id"])[0].frames_received > 10, 5)
        assert svc.speakers.reconnecting(live["id"]) == []
        before = await svc.bus.last_id(live["id"])
        tone.pause()  # nothing more leaves the speaker, as when their network drops
        stopped = time.monotonic()
        async with asyncio.timeout(5):
            async for event in svc.bus.subscribe(live["id"], before):
                if event is not None and event.type == "space":
                    [host] = [p for p in event.data["stage"] if p["id"] == "u-host"]
                    if host["reconnecting"]:
                        break
        assert time.monotonic() - stopped < 2.0  # marked within 2 s (issue 14)
        view = (await client.get(f"/api/spaces/{live['id']}")).json()
        assert view["stage"][0]["reconnecting"] is True
        # The audio comes back (an ICE restart, say): no longer reconnecting, on every page.
        before = await svc.bus.last_id(live["id"])
        tone.resume()
        async with asyncio.timeout(5):
            async for event in svc.bus.subscribe(live["id"], before):
                if (
                    event is not None
                    and event.type == "space"
                    and not event.data["stage"][0]["reconnecting"]
                ):
                    break
        assert svc.speakers.sessions(live["id"])  # the same session throughout
    finally:
        await publisher.stop()
        await speaker.close()


# -- ICE after the answer: trickle, restart (RFC 9725 §4.3.1) ---------------------------------


async def test_a_trickling_client_sends_its_candidates_with_patch(client, node, live) -> None:
    pc = await offer(ToneTrack(440))
    try:
        sdp = pc.localDescription.sdp
        candidates = [line[2:] for line in sdp.splitlines() if line.startswith("a=candidate:")]
        bare = "\r\n".join(
            line
            for line in sdp.splitlines()
            if "a=candidate:" not in line and "a=end-of-candidates" not in line
        )
        url = f"/whip/{live['id']}"
        response = await client.post(url, content=bare + "\r\n", headers=sdp_headers(live["token"]))
        assert response.status_code == 201
        etag = response.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        location = response.headers["location"]
        [session] = node.app.services.speakers.sessions(live["id"])
        assert session.etag == etag
        fragment = (
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
        )
        ufrag = next(x for x in sdp.splitlines() if x.startswith("a=ice-ufrag:")).split(":")[1]
        pwd = next(x for x in sdp.splitlines() if x.startswith("a=ice-pwd:")).split(":")[1]
        body = fragment.format(ufrag, pwd) + "".join(f"a={c}\r\n" for c in candidates)
        body += "a=end-of-candidates\r\n"
        token = live["token"]
        # If-Match: missing (428), stale (412); the wrong media type (415); garbage (400).
        response = await client.patch(location, content=body, headers=frag_headers(token, None))
        assert response.status_code == 428 and response.json()["error"] == "precondition_required"
        response = await client.patch(location, content=body, headers=frag_headers(token, '"x"'))
        assert response.status_code == 412
        response = await client.patch(location, content=body, headers=sdp_headers(token))
        assert response.status_code == 415
        assert response.headers["accept-patch"] == "application/trickle-ice-sdpfrag"
        garbage = frag_headers(token, etag)
        response = await client.patch(location, content="a=candidate:1 1 udp", headers=garbage)
        assert response.status_code == 400
        # Another listener may not touch it.
        _, other = await listener(client, live["id"])
        response = await client.patch(location, content=body, headers=frag_headers(other, etag))
        assert response.status_code == 403
        # The candidates, with the current ETag: 204, and the node knows them.
        response = await client.patch(location, content=body, headers=frag_headers(token, etag))
        assert response.status_code == 204, response.text
        assert response.content == b""
        session_pc = next(iter(node.app.services.speakers._sessions[live["id"]].values())).pc
        transport = session_pc.getTransceivers()[0].receiver.transport.transport
        assert {c.port for c in transport.getRemoteCandidates()} >= {
            int(c.split()[5]) for c in candidates
        }
        await pc.setRemoteDescription(
            RTCSessionDescription(sdp=answer_of(node, live), type="answer")
        )
        await eventually(lambda: pc.connectionState == "connected", 10)
    finally:
        await pc.close()


def answer_of(node: RunningNode, live: dict) -> str:
    session = next(iter(node.app.services.speakers._sessions[live["id"]].values()))
    return session.answer


async def test_an_ice_restart_gets_new_credentials_and_a_new_etag(client, node, live) -> None:
    speaker = await publish(client, live["id"], live["token"], ToneTrack(440))
    try:
        await speaker.wait_connected()
        [session] = node.app.services.speakers.sessions(live["id"])
        first = session.etag
        old_ufrag = next(x for x in speaker.answer.splitlines() if x.startswith("a=ice-ufrag:"))
        body = "a=ice-ufrag:n3wU\r\na=ice-pwd:aNewPasswordOf22Chars0\r\n"
        response = await client.patch(
            speaker.location, content=body, headers=frag_headers(live["token"], "*")
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/trickle-ice-sdpfrag"
        second = response.headers["etag"]
        assert second != first and node.app.services.speakers.sessions(live["id"])[0].etag == second
        lines = response.text.splitlines()
        ufrag = next(x for x in lines if x.startswith("a=ice-ufrag:"))
        assert ufrag != old_ufrag and any(x.startswith("a=ice-pwd:") for x in lines)
        assert any(x.startswith("a=candidate:") and " 127.0.0.1 " in x for x in lines)
        assert lines[-1] == "a=end-of-candidates" and "a=mid:0" in lines
        # Candidates sent for the ICE session that ended: 412. The session lives on.
        response = await client.patch(
            speaker.location,
            content="a=end-of-candidates\r\n",
            headers=frag_headers(live["token"], first),
        )
        assert response.status_code == 412
        assert node.app.services.speakers.sessions(live["id"])
    finally:
        await speaker.close()


async def test_options_and_answers_name_the_ice_servers(tmp_path) -> None:
    loopback_only()
    servers = ("stun:stun.example.net:3478", "turn:turn.example.net?transport=udp")
    async with (
        run_node(
            tmp_path / "data", rtc_host_addresses=("127.0.0.1",), rtc_ice_servers=servers
        ) as running,
        httpx.AsyncClient(base_url=running.url) as http,
    ):
        host = account(running.data_dir, "Hana", user="u-host")
        space = (await http.post("/api/spaces", json={"title": "L"}, headers=host)).json()
        await http.post(f"/api/spaces/{space['id']}/start", headers=host)
        response = await http.options(f"/whip/{space['id']}")
        assert response.status_code == 204
        link = response.headers["link"]
        assert link == ", ".join(f'<{url}>; rel="ice-server"' for url in servers)
        # Not on a CORS preflight (RFC 9725 §4.6).
        preflight = {"Origin": "https://x.example", "Access-Control-Request-Method": "POST"}
        response = await http.options(f"/whip/{space['id']}", headers=preflight)
        assert "link" not in response.headers


# -- refusals ------------------------------------------------------------------------------


@pytest.fixture
async def good_offer() -> AsyncIterator[str]:
    pc = await offer(ToneTrack(440))
    yield pc.localDescription.sdp
    await pc.close()


async def test_who_may_publish(client, node, live, good_offer) -> None:
    url = f"/whip/{live['id']}"
    # No token, a bad token.
    response = await client.post(url, content=good_offer, headers=sdp_headers(None))
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    assert response.headers["access-control-allow-origin"] == "*"
    response = await client.post(url, content=good_offer, headers=sdp_headers("c1.nope.nope"))
    assert response.status_code == 401
    # A listener is not on stage.
    _, token = await listener(client, live["id"])
    response = await client.post(url, content=good_offer, headers=sdp_headers(token))
    assert response.status_code == 403 and "ask to speak" in response.json()["message"]
    # A token for another space.
    host = live["host"]
    other = (await client.post("/api/spaces", json={"title": "Other"}, headers=host)).json()
    await client.post(f"/api/spaces/{other['id']}/start", headers=host)
    _, other_token = await listener(client, other["id"])
    response = await client.post(url, content=good_offer, headers=sdp_headers(other_token))
    assert response.status_code == 403
    # A space that is not live (yet).
    scheduled = (await client.post("/api/spaces", json={"title": "Later"}, headers=host)).json()
    response = await client.post(
        f"/whip/{scheduled['id']}", content=good_offer, headers=sdp_headers(live["token"])
    )
    assert response.status_code == 409
    # Unknown spaces.
    for space_id in ("nosuchspace", "bad.id"):
        response = await client.post(
            f"/whip/{space_id}", content=good_offer, headers=sdp_headers(live["token"])
        )
        assert response.status_code == 404, space_id
    # A removed speaker.
    user, token = await listener(client, live["id"])
    await promote(node, live["id"], user)
    await update_space(node.app.services.store, live["id"], lambda s: s.remove(s.host_id, user))
    response = await client.post(url, content=good_offer, headers=sdp_headers(token))
    assert response.status_code == 403 and "removed" in response.json()["message"]
    assert node.app.services.speakers.sessions(live["id"]) == []
    assert await parts_advance(node, live["id"])


VIDEO_ONLY = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
t=0 0
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=rtpmap:96 VP8/90000
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 00:11
a=setup:actpass
a=sendonly
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "v=0"),
        ("hello", "v=0"),
        ("v=0\nthis is not sdp\n", "line 2"),
        ("v=0\r\nm=audio x\r\n", "media line"),
        (VIDEO_ONLY, "no audio"),
        ("\udcff", "UTF-8"),
    ],
)
async def test_bad_offers_are_400(client, live, body, message) -> None:
    content = body.encode("utf-8", "surrogateescape")
    response = await client.post(
        f"/whip/{live['id']}", content=content, headers=sdp_headers(live["token"])
    )
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]


async def test_offers_aiortc_cannot_use_are_400(client, node, live, good_offer) -> None:
    url = f"/whip/{live['id']}"
    broken = [
        # No codec in common.
        re.sub(r"a=rtpmap:(\d+) \S+", r"a=rtpmap:\1 nonsense/8000", good_offer),
        # A fingerprint that is not one.
        good_offer.replace("a=fingerprint:sha-256 ", "a=fingerprint:sha-256 zz"),
        # Audio that the speaker does not send.
        good_offer.replace("a=sendrecv", "a=recvonly"),
        # A rejected audio m-line (port 0).
        re.sub(r"m=audio \d+", "m=audio 0", good_offer),
    ]
    for body in broken:
        response = await client.post(url, content=body, headers=sdp_headers(live["token"]))
        assert response.status_code == 400, (response.text[:300], body)
        assert response.json()["error"] == "bad_request"
    assert node.app.services.speakers.sessions(live["id"]) == []
    assert live["host"] and await parts_advance(node, live["id"])


async def test_other_bad_requests(client, node, live, good_offer) -> None:
    url = f"/whip/{live['id']}"
    token = live["token"]
    wrong_type = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
    response = await client.post(url, content=good_offer, headers=wrong_type)
    assert response.status_code == 415 and response.headers["accept-post"] == "application/sdp"
    response = await client.post(url, content=b"v=0\n" + b"a" * 100_000, headers=sdp_headers(token))
    assert response.status_code == 413
    session_url = f"{url}/sessions/whatever"
    response = await client.patch(session_url, content=b"a=candidate", headers=frag_headers(token))
    assert response.status_code == 404
    response = await client.delete(session_url, headers=sdp_headers(token))
    assert response.status_code == 404
    assert (await client.get(url)).status_code == 405
    assert await parts_advance(node, live["id"])


async def test_cors_preflight(client, live) -> None:
    for url in (f"/whip/{live['id']}", f"/whip/{live['id']}/sessions/abc"):
        response = await client.options(
            url,
            headers={
                "Origin": "https://studio.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert response.status_code == 204
        headers = response.headers
        assert headers["access-control-allow-origin"] == "*"
        for method in ("POST", "DELETE", "OPTIONS", "PATCH"):
            assert method in headers["access-control-allow-methods"]
        for header in ("Authorization", "Content-Type", "If-Match"):
            assert header in headers["access-control-allow-headers"]
        for header in ("Location", "Link", "ETag"):
            assert header in headers["access-control-expose-headers"]


async def test_the_space_must_be_on_the_air_on_this_node(client, node, live, good_offer) -> None:
    # Live in the store but not on this node's air (e.g. served by another node).
    await node.app.services.broadcasts.stop(live["id"])
    response = await client.post(
        f"/whip/{live['id']}", content=good_offer, headers=sdp_headers(live["token"])
    )
    assert response.status_code == 409
    space = await node.app.services.store.get_space(live["id"])
    assert space.state is SpaceState.LIVE
