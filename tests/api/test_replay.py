"""Replays on a real node: a space records ~20 s of the demo voice, ends, and is replayed.

Half way, the space's pipeline is restarted (as after a node restart), so the recording has two
runs. The recording is made once for the module (it takes real time); the tests then read it with
independent clients: ffmpeg and ffprobe for the media, httpx for the API. The server runs in the
tests' event loop, so the command-line tools run as asyncio subprocesses, never blocking it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import httpx
import m3u8
import pytest
import pytest_asyncio

from causerie.api.errors import ApiError
from causerie.api.replay import Jobs, clip_range
from causerie.domain import Invalid
from causerie.media.clips import Cut
from causerie.media.demo import DemoSpeaker, demo_voices, load_voice
from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node

pytestmark = pytest.mark.asyncio(loop_scope="module")

RECORD_SECONDS = 20.0
PART_SECONDS = 10 * 1024 / 48000
TITLE = 'Replay: tests / ünïcode & "quotes"'


@dataclass
class Recorded:
    """The shared scenario: a node, its spaces, and what was seen while the space was live."""

    node: RunningNode
    client: httpx.AsyncClient
    space: dict
    host: dict[str, str]
    scheduled: dict
    unrecorded: dict
    live: dict[str, httpx.Response] = field(default_factory=dict)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Recorded]:
    async with (
        run_node(tmp_path_factory.mktemp("replay") / "data") as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as client,
    ):
        host = account(node.data_dir)

        async def create(title: str, **body: object) -> dict:
            response = await client.post("/api/spaces", json={"title": title, **body}, headers=host)
            assert response.status_code == 201, response.text
            return response.json()

        space = await create(TITLE)
        scheduled = await create("Not yet")
        unrecorded = await create("Off the record", recording=False)
        for one in (unrecorded, space):
            assert (await client.post(f"/api/spaces/{one['id']}/start", headers=host)).is_success
        await client.post(f"/api/spaces/{unrecorded['id']}/end", headers=host)

        broadcasts = node.app.services.broadcasts
        voice = load_voice(demo_voices()["host"])

        def speak() -> DemoSpeaker:
            pipeline = broadcasts.get(space["id"])
            speaker = DemoSpeaker(voice, pipeline.mixer.add_input("v").push)
            speaker.start()
            return speaker

        speaker = speak()
        started = time.monotonic()
        scenario = Recorded(node, client, space, host, scheduled, unrecorded)
        base = f"/replay/{space['id']}"
        await asyncio.sleep(8)
        # While live: no replay yet, but clips of what is recorded so far.
        scenario.live["playlist"] = await client.get(f"{base}/index.m3u8")
        scenario.live["download"] = await client.get(f"{base}.m4a")
        scenario.live["clip"] = await client.post(f"/api/spaces/{space['id']}/clips")
        scenario.live["details"] = await client.get(f"/api/spaces/{space['id']}")
        # A new run, as when a restarted node resumes the space (app.resume_live_spaces).
        await speaker.stop()
        await broadcasts.stop(space["id"])
        await broadcasts.start(space["id"], record=True)
        speaker = speak()
        await asyncio.sleep(RECORD_SECONDS - (time.monotonic() - started))
        await speaker.stop()
        ended = await client.post(f"/api/spaces/{space['id']}/end", headers=host)
        assert ended.status_code == 200, ended.text
        yield scenario


async def run(*command: str) -> bytes:
    """Run a command line tool without blocking the event loop the node runs in."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out


async def decoded_seconds(url: str) -> float:
    """What ffmpeg decodes from ``url``, in seconds (48 kHz mono PCM counted)."""
    pcm = await run(
        "ffmpeg", "-v", "error", "-i", url, "-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1"
    )
    return len(pcm) / 2 / 48000


async def probe(url: str) -> dict:
    report = await run(
        "ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", url
    )
    return json.loads(report)


async def test_nothing_to_replay_while_live(recorded: Recorded) -> None:
    live = recorded.live
    assert live["playlist"].status_code == 409
    assert "live" in live["playlist"].json()["message"]
    assert live["download"].status_code == 409
    assert live["details"].json()["replay_url"] is None
    assert live["details"].json()["recording_error"] is None


async def test_clips_of_a_live_space_cut_what_is_recorded_so_far(recorded: Recorded) -> None:
    response = recorded.live["clip"]
    assert response.status_code == 201, response.text
    clip = response.json()
    # After ~8 s on the air, the default clip is everything recorded so far (under 30 s).
    assert clip["start"] == 0 and 4 < clip["end"] < 10
    report = await probe(recorded.node.url + clip["url"])
    assert float(report["format"]["duration"]) == pytest.approx(clip["duration"], abs=0.25)


async def test_the_replay_playlist_is_vod_and_decodes_to_the_whole_space(
    recorded: Recorded,
) -> None:
    url = f"/replay/{recorded.space['id']}/index.m3u8"
    response = await recorded.client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert response.headers["cache-control"] == "no-cache"  # every play reaches the origin
    playlist = m3u8.loads(response.text)
    assert playlist.playlist_type == "vod" and playlist.is_endlist
    # Two runs: each with its init section, joined by a discontinuity (RFC 8216 4.3.2.3).
    runs = [m.uri.split("/")[0] for m in playlist.segment_map]
    assert len(runs) == 2 and runs[0] != runs[1]
    assert [s.uri.split("/")[0] for s in playlist.segments if s.discontinuity] == runs[1:]
    assert all(s.program_date_time is not None for s in playlist.segments)
    listed = sum(s.duration for s in playlist.segments)
    assert listed == pytest.approx(RECORD_SECONDS, abs=1.0)
    # ffmpeg, as an independent HLS client, plays it through.
    seconds = await decoded_seconds(recorded.node.url + url)
    assert seconds == pytest.approx(RECORD_SECONDS, abs=1.0)
    # All of it, except that ffmpeg 5.1's HLS demuxer drops the first fragment (one part,
    # 213 ms) after a discontinuity where timestamps restart; each run alone decodes in full.
    assert listed - PART_SECONDS - 0.05 <= seconds <= listed + 0.05

    base = url.rsplit("/", 1)[0]
    media = await recorded.client.get(f"{base}/{playlist.segments[0].uri}")
    assert media.status_code == 200 and media.headers["content-type"] == "audio/mp4"
    assert "immutable" in media.headers["cache-control"]
    init = await recorded.client.head(f"{base}/{playlist.segment_map[0].uri}")
    assert init.status_code == 200 and int(init.headers["content-length"]) > 0


async def test_the_download_is_one_plain_m4a_as_long_as_the_replay(recorded: Recorded) -> None:
    client, space_id = recorded.client, recorded.space["id"]
    url = f"/replay/{space_id}.m4a"
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mp4"
    assert response.headers["content-disposition"] == (
        'attachment; filename="Replay tests unicode quotes.m4a"'
    )
    report = await probe(recorded.node.url + url)
    assert report["streams"][0]["codec_name"] == "aac"
    playlist = m3u8.loads((await client.get(f"/replay/{space_id}/index.m3u8")).text)
    listed = sum(s.duration for s in playlist.segments)
    assert float(report["format"]["duration"]) == pytest.approx(listed, abs=0.3)
    assert await decoded_seconds(recorded.node.url + url) == pytest.approx(listed, abs=0.3)

    # Made once, then served from disk: HEAD and byte ranges work on it.
    made = recorded.node.data_dir / "recordings" / space_id / "replay.m4a"
    mtime = made.stat().st_mtime_ns
    head = await client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(response.content)
    ranged = await client.get(url, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.content == response.content[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(response.content)}"
    assert (await client.get(url)).content == response.content
    assert made.stat().st_mtime_ns == mtime


async def test_a_clip_is_as_long_as_asked_and_cut_once(recorded: Recorded) -> None:
    client, space_id = recorded.client, recorded.space["id"]
    response = await client.post(f"/api/spaces/{space_id}/clips", json={"start": 5, "end": 15})
    assert response.status_code == 201, response.text
    clip = response.json()
    assert clip == {"url": clip["url"], "start": 5.0, "end": 15.0, "duration": 10.0}
    assert response.headers["location"] == clip["url"]
    report = await probe(recorded.node.url + clip["url"])
    assert report["streams"][0]["codec_name"] == "aac"
    assert float(report["format"]["duration"]) == pytest.approx(10.0, abs=0.25)
    served = await client.get(clip["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "audio/mp4"
    assert "immutable" in served.headers["cache-control"]

    # The same range again: the same clip, not cut again.
    path = recorded.node.data_dir / "recordings" / space_id / "clips" / clip["url"].split("/")[-1]
    mtime = path.stat().st_mtime_ns
    again = await client.post(f"/api/spaces/{space_id}/clips", json={"start": 5.0, "end": 15})
    assert again.status_code == 201 and again.json()["url"] == clip["url"]
    assert path.stat().st_mtime_ns == mtime


async def test_the_default_clip_is_the_last_30_s_or_the_whole_recording(
    recorded: Recorded,
) -> None:
    client, space_id = recorded.client, recorded.space["id"]
    response = await client.post(f"/api/spaces/{space_id}/clips")
    assert response.status_code == 201, response.text
    clip = response.json()
    # 20 s recorded: the last min(30, 20) s, that is all of it.
    assert clip["start"] == 0 and clip["end"] == pytest.approx(RECORD_SECONDS, abs=1.0)
    report = await probe(recorded.node.url + clip["url"])
    assert float(report["format"]["duration"]) == pytest.approx(clip["duration"], abs=0.25)
    # Only an end: the 30 s before it, or from the start.
    only_end = await client.post(f"/api/spaces/{space_id}/clips", json={"end": 12})
    assert only_end.json()["start"] == 0 and only_end.json()["end"] == 12
    only_start = await client.post(f"/api/spaces/{space_id}/clips", json={"start": 10})
    assert only_start.json()["start"] == 10 and only_start.json()["end"] == clip["end"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"start": 15, "end": 5}, "before end"),
        ({"start": 5, "end": 5}, "before end"),
        ({"start": -1, "end": 5}, "0 or more"),
        ({"end": -3}, "0 or more"),
        ({"start": 5, "end": 999}, "beyond the end"),
        ({"start": 999}, "beyond the end"),
        ({"start": "abc"}, "start"),
        ({"start": "5"}, "start"),
        ({"end": True}, "end"),
        ({"start": [1]}, "start"),
        ({"start": 1, "length": 3}, "length"),
        ([1, 2], ""),
    ],
)
async def test_bad_clip_ranges_are_422(recorded: Recorded, body: object, words: str) -> None:
    response = await recorded.client.post(f"/api/spaces/{recorded.space['id']}/clips", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"
    assert words in response.json()["message"]


async def test_not_a_number_is_422_too(recorded: Recorded) -> None:
    # Python's JSON parser accepts NaN and Infinity; a clip range must not.
    for text in (b'{"start": NaN}', b'{"end": Infinity}'):
        response = await recorded.client.post(
            f"/api/spaces/{recorded.space['id']}/clips",
            content=text,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text


async def test_clip_ranges_are_at_most_30_s() -> None:
    length = Fraction(100)
    assert clip_range(None, None, length) == (70_000, 100_000)
    assert clip_range(10, None, length) == (10_000, 40_000)
    assert clip_range(None, 20, length) == (0, 20_000)
    assert clip_range(0, 30, length) == (0, 30_000)
    with pytest.raises(Invalid, match="at most 30 s"):
        clip_range(0, 30.5, length)
    with pytest.raises(Invalid, match="at most 30 s"):
        clip_range(10, 70, length)
    # A little past the end (a rounded length) is the end.
    assert clip_range(90, 100.02, length) == (90_000, 100_000)


async def test_unknown_spaces_and_paths_are_404(recorded: Recorded) -> None:
    client, space_id = recorded.client, recorded.space["id"]
    run_id = m3u8.loads((await client.get(f"/replay/{space_id}/index.m3u8")).text).segments[0].uri
    run_id = run_id.split("/")[0]
    for method, path in [
        ("GET", "/replay/nope/index.m3u8"),
        ("GET", "/replay/nope.m4a"),
        ("POST", "/api/spaces/nope/clips"),
        ("POST", "/api/spaces/bad%20id!/clips"),
        ("GET", f"/replay/{space_id}/{run_id}/999.m4s"),
        ("GET", f"/replay/{space_id}/otherrun/init.mp4"),
        ("GET", f"/replay/{space_id}/{run_id}/..%2F..%2Fcauserie.sqlite3"),
        ("GET", f"/replay/{space_id}/..%2F..%2F/index.jsonl"),
        ("GET", f"/replay/{space_id}/{run_id}/index.jsonl"),
        ("GET", "/replay/..%2F..%2Fetc/x/init.mp4"),
        ("GET", "/clips/nope.m4a"),
        ("GET", f"/clips/{space_id}.1-2.m4a"),
        ("GET", "/clips/..%2Fcauserie.1-2.m4a"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"] == "not_found"


async def test_spaces_without_a_recording(recorded: Recorded) -> None:
    client = recorded.client
    scheduled, unrecorded = recorded.scheduled["id"], recorded.unrecorded["id"]
    not_yet = await client.get(f"/replay/{scheduled}/index.m3u8")
    assert not_yet.status_code == 409 and "scheduled" in not_yet.json()["message"]
    clip = await client.post(f"/api/spaces/{scheduled}/clips")
    assert clip.status_code == 409 and "not started" in clip.json()["message"]
    assert (await client.get(f"/replay/{unrecorded}/index.m3u8")).status_code == 404
    assert (await client.get(f"/replay/{unrecorded}.m4a")).status_code == 404
    clip = await client.post(f"/api/spaces/{unrecorded}/clips")
    assert clip.status_code == 409 and "not recorded" in clip.json()["message"]
    details = (await client.get(f"/api/spaces/{unrecorded}")).json()
    assert details["replay_url"] is None and details["download_url"] is None


async def test_details_of_an_ended_space_link_its_replay(recorded: Recorded) -> None:
    space_id = recorded.space["id"]
    details = (await recorded.client.get(f"/api/spaces/{space_id}")).json()
    assert details["state"] == "ended"
    assert details["replay_url"] == f"/replay/{space_id}/index.m3u8"
    assert details["download_url"] == f"/replay/{space_id}.m4a"
    assert details["recording_error"] is None
    assert recorded.node.app.services.broadcasts.recorder(space_id).closed


async def test_only_a_few_files_are_made_at_once(tmp_path: Path) -> None:
    jobs = Jobs(limit=1)
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(path: Path) -> Cut:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=10)
        path.write_bytes(b"made")
        return Cut(Fraction(0), Fraction(1), 1)

    first = asyncio.create_task(jobs.make(tmp_path / "a", lambda: slow(tmp_path / "a")))
    await asyncio.sleep(0.05)
    # The same file: waits for the job already running. Another one: refused for now.
    same = asyncio.create_task(jobs.make(tmp_path / "a", lambda: slow(tmp_path / "a")))
    with pytest.raises(ApiError) as refused:
        await jobs.make(tmp_path / "b", lambda: slow(tmp_path / "b"))
    assert refused.value.status == 503 and refused.value.headers["Retry-After"]
    release.set()
    await asyncio.gather(first, same)
    assert (tmp_path / "a").read_bytes() == b"made"
    await jobs.make(tmp_path / "a", lambda: pytest.fail("made twice"))


async def test_replay_plays_are_counted_apart_from_live(recorded: Recorded) -> None:
    client, space_id = recorded.client, recorded.space["id"]
    before = (await client.get(f"/api/spaces/{space_id}/stats")).json()["replay"]
    agent = {"User-Agent": "replay-counting-test"}
    for _ in range(2):  # the same device twice is one play, two requests
        assert (
            await client.get(f"/replay/{space_id}/index.m3u8", headers=agent)
        ).status_code == 200
    after = (await client.get(f"/api/spaces/{space_id}/stats")).json()["replay"]
    assert after["requests"] == before["requests"] + 2
    assert after["plays"] == before["plays"] + 1
