"""The LL-HLS origin on a real node: playlists, blocking reload, parts, caching, bad input."""

from __future__ import annotations

import asyncio
import io
import time

import av
import m3u8
import numpy as np
import pytest

from causerie.media.demo import DemoSpeaker, demo_voices, load_voice
from tests.conftest import account

PART_SECONDS = 10 * 1024 / 48000


@pytest.fixture
async def live(client, node):
    """A live space with the demo host voice speaking into it."""
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "HLS"}, headers=host)).json()
    await client.post(f"/api/spaces/{space['id']}/start", headers=host)
    pipeline = node.app.services.broadcasts.get(space["id"])
    speaker = DemoSpeaker(load_voice(demo_voices()["host"]), pipeline.mixer.add_input("v").push)
    speaker.start()
    yield space, pipeline
    await speaker.stop()


async def playlist(client, space, **params) -> m3u8.M3U8:
    response = await client.get(space["media_playlist_url"], params=params)
    assert response.status_code == 200, response.text
    return m3u8.loads(response.text)


async def wait_for_segments(client, space, count: int) -> m3u8.M3U8:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        parsed = await playlist(client, space)
        if len(parsed.segments) >= count:
            return parsed
        await asyncio.sleep(0.2)
    raise AssertionError("segments did not appear")


async def test_playlist_is_low_latency_hls(client, live) -> None:
    space, _ = live
    response = await client.get(space["media_playlist_url"])
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert response.headers["cache-control"] == "public, max-age=1"
    parsed = await wait_for_segments(client, space, 2)
    text = (await client.get(space["media_playlist_url"])).text
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=" in text
    assert parsed.server_control.part_hold_back >= 3 * parsed.part_inf.part_target
    assert parsed.preload_hint is not None
    # The segment in progress (no URI yet) carries its date on its first part.
    assert all(s.program_date_time is not None for s in parsed.segments if s.uri)


async def test_blocking_reload_answers_when_the_part_is_ready(client, live) -> None:
    space, pipeline = live
    ready: dict[tuple[int, int], float] = {}
    pipeline.on_part = lambda part: ready.setdefault((part.msn, part.index), time.monotonic())
    await wait_for_segments(client, space, 1)
    delays = []
    for _ in range(5):
        msn, index = pipeline.packager.last_part()
        want = (msn, index + 1) if index + 1 < 9 else (msn + 1, 0)
        response = await client.get(
            space["media_playlist_url"], params={"_HLS_msn": want[0], "_HLS_part": want[1]}
        )
        answered = time.monotonic()
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=6"
        assert f"{want[0]}.{want[1]}.m4s" in response.text
        delays.append(answered - ready[want])
    # Each answer comes well within one part duration of the part being ready.
    assert max(delays) < PART_SECONDS, delays


async def test_parts_and_segments_decode_and_are_immutable(client, live) -> None:
    space, _ = live
    parsed = await wait_for_segments(client, space, 2)
    base = space["media_playlist_url"].rsplit("/", 1)[0]
    init = await client.get(f"{base}/{parsed.segment_map[0].uri}")
    assert init.headers["content-type"] == "audio/mp4"
    assert "immutable" in init.headers["cache-control"]
    complete = [s for s in parsed.segments if s.uri and s.parts]
    part_uri = complete[-1].parts[0].uri
    part = await client.get(f"{base}/{part_uri}")
    assert part.status_code == 200 and "immutable" in part.headers["cache-control"]
    segment = await client.get(f"{base}/{complete[-1].uri}")
    assert segment.status_code == 200
    # LL-HLS: a segment is exactly its parts, end to end.
    parts = [(await client.get(f"{base}/{p.uri}")).content for p in complete[-1].parts]
    assert segment.content == b"".join(parts)
    for media in (part.content, segment.content):
        with av.open(io.BytesIO(init.content + media)) as container:
            samples = sum(f.samples for f in container.decode(audio=0))
        assert samples > 0
    head = await client.head(f"{base}/{part_uri}")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(part.content)


async def test_the_preload_hinted_part_is_held_until_ready(client, live) -> None:
    space, pipeline = live
    parsed = await wait_for_segments(client, space, 1)
    base = space["media_playlist_url"].rsplit("/", 1)[0]
    hint = parsed.preload_hint.uri
    response = await client.get(f"{base}/{hint}")
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    msn, index = (int(n) for n in hint.rsplit("/", 1)[1].split(".")[:2])
    assert response.content == pipeline.packager.part(msn, index)
    # A part further ahead than the hint is not held: it is simply not there.
    far = f"{base}/{pipeline.run_id}/{msn + 3}.0.m4s"
    assert (await client.get(far)).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"_HLS_msn": "abc"},
        {"_HLS_msn": "-1"},
        {"_HLS_msn": "1.5"},
        {"_HLS_part": "1"},
        {"_HLS_msn": "1", "_HLS_part": "x"},
        {"_HLS_msn": "99999999999999999999"},
    ],
)
async def test_malformed_blocking_requests_are_400(client, live, params) -> None:
    space, _ = live
    response = await client.get(space["media_playlist_url"], params=params)
    assert response.status_code == 400
    assert response.json()["message"]


async def test_too_far_in_the_future_is_400(client, live) -> None:
    space, pipeline = live
    await wait_for_segments(client, space, 1)
    msn, _ = pipeline.packager.last_part()
    response = await client.get(space["media_playlist_url"], params={"_HLS_msn": msn + 5})
    assert response.status_code == 400
    assert "too far" in response.json()["message"]


async def test_unknown_things_are_404(client, live) -> None:
    space, _ = live
    base = space["media_playlist_url"].rsplit("/", 1)[0]
    for path in (
        "/hls/nope/index.m3u8",
        f"{base}/oldrun/init.mp4",
        f"{base}/oldrun/1.0.m4s",
        f"{base}/../../etc/passwd",
        "/hls/",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["cache-control"] == "no-store"
    assert (await client.post(space["media_playlist_url"])).status_code == 405


async def test_ended_space_playlist_ends(client, node, live) -> None:
    space, _ = live
    await wait_for_segments(client, space, 1)
    host = account(node.data_dir, user=None)
    # Only the creator may end it: the creator's account id is the host id.
    creator = (await client.get(f"/api/spaces/{space['id']}")).json()["host"]["id"]
    host = account(node.data_dir, user=creator)
    assert (await client.post(f"/api/spaces/{space['id']}/end", headers=host)).status_code == 200
    text = (await client.get(space["media_playlist_url"])).text
    assert "#EXT-X-ENDLIST" in text
    # A blocking request on an ended stream answers at once.
    started = time.monotonic()
    response = await client.get(space["media_playlist_url"], params={"_HLS_msn": 10**9})
    assert response.status_code == 200 and time.monotonic() - started < 1


def test_decoded_voice_is_speech_not_silence() -> None:
    pcm = load_voice(demo_voices()["host"]).astype(np.float32)
    assert np.sqrt(np.mean(pcm**2)) > 100


async def test_the_advertised_playlist_is_multivariant_with_codecs_and_bandwidth(
    client, live
) -> None:
    """Apple's authoring rules want one; without CODECS Shaka Player guesses and fails."""
    space, _ = live
    assert space["playlist_url"] == f"/hls/{space['id']}/main.m3u8"
    response = await client.get(space["playlist_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert response.headers["cache-control"] == "public, max-age=10"
    assert response.headers["access-control-allow-origin"] == "*"
    parsed = m3u8.loads(response.text)
    assert parsed.is_variant
    (variant,) = parsed.playlists
    assert variant.stream_info.codecs == "mp4a.40.2"
    assert variant.stream_info.bandwidth >= 64_000
    assert variant.stream_info.average_bandwidth <= variant.stream_info.bandwidth
    assert variant.uri == "index.m3u8"
    # The variant is the media playlist, relative to the multivariant one.
    media = await client.get(space["playlist_url"].rsplit("/", 1)[0] + "/" + variant.uri)
    assert "#EXT-X-PART-INF" in media.text
    head = await client.head(space["playlist_url"])
    assert head.status_code == 200 and head.content == b""


async def test_no_multivariant_playlist_off_the_air(client, node) -> None:
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "Later"}, headers=host)).json()
    response = await client.get(space["playlist_url"])
    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-store"
    assert (await client.get("/hls/x/main.m3u8?a=b")).status_code == 404
