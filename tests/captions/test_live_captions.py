"""Captions on a real node: a WHIP speaker's words reach a listener's live events, the ended
space's transcript holds them at the right time (WebVTT, a subtitles rendition in the replay's
multivariant playlist, which ffprobe reads), search finds them; a space nobody speaks in gets
no captions and no error; a host toggling quickly costs one recognizer at most."""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import webvtt

from causerie.captions.wer import word_error_rate
from tests.captions.feed_reader import FeedReader
from tests.conftest import account
from tests.fixtures.rtc import loopback_only, publish
from tests.fixtures.speech import SENTENCES, SpeechTrack
from tests.harness.in_process import RunningNode, run_node
from tests.harness.polling import eventually

pytestmark = pytest.mark.slow

WER_BOUND = 0.15


async def captioning_node(data_dir: Path):
    loopback_only()
    return run_node(data_dir, rtc_host_addresses=("127.0.0.1",), captions_max=1)


async def ready(node: RunningNode) -> None:
    captions = node.app.services.captions
    assert captions is not None
    await eventually(
        lambda: captions.ready or captions.problem is not None, 120, "the model loading"
    )
    assert captions.problem is None, captions.problem


async def live_space(http: httpx.AsyncClient, node: RunningNode) -> tuple[str, dict[str, str]]:
    host = account(node.data_dir)
    created = await http.post("/api/spaces", json={"title": "Border news"}, headers=host)
    space_id = created.json()["id"]
    assert (await http.post(f"/api/spaces/{space_id}/start", headers=host)).status_code == 200
    return space_id, host


async def state(http: httpx.AsyncClient, space_id: str) -> str | None:
    return (await http.get(f"/api/spaces/{space_id}")).json()["captions_state"]


async def until_ok(http: httpx.AsyncClient, url: str, timeout: float = 60) -> httpx.Response:
    """GET `url` until it is not a 409 (the transcript being finished)."""
    answers: list[httpx.Response] = []

    async def done() -> bool:
        answers.append(await http.get(url))
        return answers[-1].status_code != 409

    await eventually(done, timeout, f"{url} ready", every=0.25)
    return answers[-1]


def seconds(timestamp: str) -> float:
    """A WebVTT timestamp in seconds (webvtt-py's own drops the milliseconds)."""
    hours, minutes, rest = timestamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


async def ffprobe_streams(url: str) -> list[dict]:
    # ffmpeg's HLS demuxer reads subtitles renditions only when told experimental features are
    # fine (libavformat/hls.c). A subprocess, never a blocking call: the node shares the loop.
    process = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-strict", "experimental", "-show_streams", "-of", "json", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return json.loads(out)["streams"]


async def test_spoken_words_become_captions_a_transcript_and_a_search(tmp_path: Path) -> None:
    async with (
        await captioning_node(tmp_path / "data") as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as http,
    ):
        await ready(node)
        space_id, host = await live_space(http, node)
        await eventually(lambda: _is(http, space_id, "on"), 30, "captions on")
        listener = FeedReader(http, space_id).start()
        track = SpeechTrack()
        session = await publish(http, space_id, host["Authorization"].split()[1], track)
        try:
            await session.wait_connected()
            await eventually(lambda: track.ended is not None, 40, "the recording played")
            await eventually(
                lambda: len(listener.of_type("caption")) >= len(SENTENCES), 20, "two captions"
            )
        finally:
            await session.close()
            await listener.stop()

        captions = [event["data"] for _, event in listener.of_type("caption")]
        heard = " ".join(c["text"] for c in captions)
        said = " ".join(SENTENCES)
        assert word_error_rate(said, heard) < WER_BOUND, heard
        # Each line carries the program time of its words: the first one began about a second
        # into the recording (its leading silence), as sent.
        assert track.started is not None
        assert abs(captions[0]["start"] - (track.started + 1.0)) < 1.0, captions[0]
        assert all(c["end"] > c["start"] for c in captions)

        assert (await http.post(f"/api/spaces/{space_id}/end", headers=host)).status_code == 200
        vtt = await until_ok(http, f"/replay/{space_id}/transcript.vtt")
        assert vtt.status_code == 200, vtt.text
        assert vtt.headers["content-type"].startswith("text/vtt")
        cues = webvtt.from_buffer(io.StringIO(vtt.text)).captions
        assert word_error_rate(said, " ".join(c.text for c in cues)) < WER_BOUND
        # At the right time in the replay: where the sentence is in the recording.
        playlist = (await http.get(f"/replay/{space_id}/index.m3u8")).text
        first_date = re.search(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)", playlist)
        assert first_date is not None
        recording_start = datetime.fromisoformat(first_date[1].replace("Z", "+00:00"))
        expected = track.started + 1.0 - recording_start.timestamp()
        assert abs(seconds(cues[0].start) - expected) < 1.0, (cues[0].start, expected)

        details = (await http.get(f"/api/spaces/{space_id}")).json()
        assert details["transcript_url"] == f"/replay/{space_id}/transcript.vtt"
        main = await http.get(details["captioned_replay_url"])
        assert "#EXT-X-MEDIA:TYPE=SUBTITLES" in main.text
        assert 'SUBTITLES="subs"' in main.text
        streams = await ffprobe_streams(f"{node.url}{details['captioned_replay_url']}")
        assert {s["codec_type"] for s in streams} >= {"audio", "subtitle"}
        assert [s["codec_name"] for s in streams if s["codec_type"] == "subtitle"] == ["webvtt"]

        text = await http.get(f"/replay/{space_id}/transcript.txt")
        assert text.status_code == 200 and "border" in text.text.lower()
        as_json = (await http.get(f"/replay/{space_id}/transcript.json")).json()
        assert len(as_json["cues"]) == len(cues)

        async def indexed() -> bool:
            found = (await http.get("/api/search", params={"q": "border crossing"})).json()
            return bool(found["results"])

        await eventually(indexed, 20, "the transcript indexed")
        found = (await http.get("/api/search", params={"q": "border crossing"})).json()
        (result,) = found["results"]
        assert result["space_id"] == space_id
        assert result["title"] == "Border news"
        assert abs(result["lines"][0]["start"] - seconds(cues[0].start)) < 0.01
        assert result["url"] == f"/s/{space_id}?t={int(result['lines'][0]['start'])}"

        metrics = (await http.get("/metrics")).text
        lines = re.search(r"^causerie_captions_lines_total (\S+)$", metrics, re.M)
        assert lines is not None and float(lines[1]) >= len(SENTENCES)
        assert re.search(r"^causerie_captions_available 1(\.0)?$", metrics, re.M)


async def _is(http: httpx.AsyncClient, space_id: str, wanted: str) -> bool:
    return await state(http, space_id) == wanted


async def test_no_speech_no_captions_and_a_host_toggling_quickly(tmp_path: Path) -> None:
    async with (
        await captioning_node(tmp_path / "data") as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as http,
    ):
        await ready(node)
        captions = node.app.services.captions
        space_id, host = await live_space(http, node)
        listener = FeedReader(http, space_id).start()
        url = f"/api/spaces/{space_id}/captions"
        answers = await asyncio.gather(
            *(http.put(url, json={"enabled": i % 2 == 0}, headers=host) for i in range(21))
        )
        assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
        for enabled in (False, True, False, True):
            answer = await http.put(url, json={"enabled": enabled}, headers=host)
            assert answer.status_code == 200 and answer.json()["captions"] is enabled
        # Never more than the one space's recognizer at once; it settles on the last choice.
        assert len(captions.workers) <= 1
        await eventually(lambda: _is(http, space_id, "on"), 40, "captions on again")
        await eventually(lambda: not captions.finishing, 40, "the retired recognizers ending")
        worker = captions.workers[space_id]
        await asyncio.sleep(6)  # silence, captioned: a few seconds of nothing to say
        assert worker.failed is None
        assert worker.stats.frames_in > 200 and worker.stats.lines == 0
        assert (await http.post(f"/api/spaces/{space_id}/end", headers=host)).status_code == 200
        missing = await until_ok(http, f"/replay/{space_id}/transcript.vtt")
        assert missing.status_code == 404
        assert missing.json()["error"] and "no transcript" in missing.json()["message"]
        await listener.stop()
        assert listener.of_type("caption") == []
        assert (await http.put(url, json={"enabled": True}, headers=host)).status_code == 409
