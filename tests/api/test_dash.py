"""The LL-DASH origin on a real node, over real sockets: manifests, chunked segments, bad input,
listeners that stop reading, and forwarding to a space's owner."""

from __future__ import annotations

import asyncio
import re
import socket
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from mpegdash.parser import MPEGDASHParser

from causerie.api import dash as dash_origin
from causerie.media import dash
from causerie.media.demo import DemoSpeaker, demo_voices, load_voice
from tests.conftest import account

PART_SECONDS = 10 * 1024 / 48000
ON_TIME = 0.1  # a chunk reaches a listener this soon after the packager made it, at most


@pytest.fixture
async def live(client, node):
    """A live space with the demo host voice speaking into it, and when each part was made."""
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "DASH"}, headers=host)).json()
    await client.post(f"/api/spaces/{space['id']}/start", headers=host)
    pipeline = node.app.services.broadcasts.get(space["id"])
    speaker = DemoSpeaker(load_voice(demo_voices()["host"]), pipeline.mixer.add_input("v").push)
    speaker.start()
    made: dict[tuple[int, int], float] = {}
    pipeline.on_part = lambda part: made.setdefault((part.msn, part.index), time.monotonic())
    assert await pipeline.wait_for(pipeline.packager.first_msn, 0, timeout=5)
    yield Live(space["id"], pipeline, made, host)
    await speaker.stop()


@dataclass
class Live:
    space_id: str
    pipeline: object
    made: dict[tuple[int, int], float]
    host: dict[str, str]

    @property
    def packager(self):
        return self.pipeline.packager

    def timeline(self, node) -> dash.Timeline:
        timeline = dash.Timeline.of(self.packager, node.app.dash.hls_segments(self.pipeline))
        assert timeline is not None
        return timeline

    def segment_path(self, number: int) -> str:
        return f"/dash/{self.space_id}/{self.packager.run_id}/{number}.m4s"

    def chunks_made(self, timeline: dash.Timeline, number: int) -> int:
        chunks = dash.segment_chunks(self.packager, timeline, number)
        return 0 if chunks is None else len(chunks.data)


@dataclass
class Received:
    """One response read off a raw socket, chunk by chunk, with arrival times."""

    status: int
    headers: dict[str, str]
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    started: float = 0.0  # when the status line arrived

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)


async def fetch(url: str, path: str, method: str = "GET") -> Received:
    """A request over a fresh socket; a chunked body is kept chunk by chunk (RFC 9112 §7.1):
    the origin writes one chunk per part, so this is when each part reached the listener."""
    address = urlsplit(url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        started = time.monotonic()
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        received = Received(int(status_line.split()[1]), headers, started=started)
        if method == "HEAD":
            return received
        if headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return received
                data = await reader.readexactly(size)
                received.chunks.append((time.monotonic(), data))
                assert await reader.readexactly(2) == b"\r\n"
        data = await reader.readexactly(int(headers["content-length"]))
        received.chunks.append((time.monotonic(), data))
        return received
    finally:
        writer.close()


async def wait_for_chunks(
    live: Live, timeline: dash.Timeline, low: int, high: int, after: int = 0
) -> int:
    """Poll until the segment in progress holds between `low` and `high` chunks and follows
    `after` complete ones: its number."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        last = live.packager.last_part()
        if last is not None:
            number = timeline.number_of(last[0])
            held = live.chunks_made(timeline, number)
            if low <= held <= high and number - timeline.start_number >= after:
                return number
        await asyncio.sleep(0.01)
    raise AssertionError("the segment in progress never held that many chunks")


async def test_manifest_time_and_init(client, node, live) -> None:
    response = await client.get(f"/dash/{live.space_id}/manifest.mpd")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dash+xml"
    assert response.headers["cache-control"] == "public, max-age=1"
    assert response.headers["access-control-allow-origin"] == "*"
    mpd = MPEGDASHParser.parse(response.text)
    assert mpd.type == "dynamic"
    (period,) = mpd.periods
    assert period.id == live.packager.run_id
    template = period.adaptation_sets[0].segment_templates[0]
    assert template.duration / template.timescale == dash_origin.SEGMENT_SECONDS
    assert (await client.get(f"/dash/{live.space_id}/manifest.mpd")).content == response.content

    before = time.time()
    clock = await client.get("/time")
    assert clock.status_code == 200
    assert clock.headers["cache-control"] == "no-store"
    assert clock.headers["access-control-allow-origin"] == "*"
    # ISO 8601 in UTC to the millisecond, as dash.js's http-iso source reads it.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", clock.text), clock.text
    told = datetime.fromisoformat(clock.text.replace("Z", "+00:00")).timestamp()
    assert before - 0.01 <= told <= time.time() + 0.01

    init = await client.get(f"/dash/{live.space_id}/{template.initialization}")
    assert init.status_code == 200
    assert init.content == live.packager.init
    assert init.headers["cache-control"] == "public, max-age=31536000, immutable"
    hls_init = await client.get(f"/hls/{live.space_id}/{live.packager.run_id}/init.mp4")
    assert hls_init.content == init.content  # one init section for both

    metrics = (await client.get("/metrics")).text
    assert 'causerie_dash_requests_total{kind="manifest",status="200"} 2' in metrics
    assert 'causerie_dash_requests_total{kind="time",status="200"} 1' in metrics
    assert "causerie_dash_streams_open 0" in metrics


async def test_a_listener_joining_mid_segment_gets_the_chunks_made_then_each_new_one(
    node, live
) -> None:
    timeline = live.timeline(node)
    number = await wait_for_chunks(live, timeline, 4, 8)
    already = live.chunks_made(timeline, number)
    asked = time.monotonic()
    received = await fetch(node.url, live.segment_path(number))
    assert received.status == 200
    assert received.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in received.headers
    assert received.headers["content-type"] == "audio/mp4"
    assert received.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert received.headers["access-control-allow-origin"] == "*"
    assert len(received.chunks) == timeline.chunks_per_segment  # one chunk per part
    # The chunks made before the request, at once ...
    assert all(at - asked < ON_TIME for at, _ in received.chunks[:already])
    # ... then every new one as soon as the packager made it, a part duration apart.
    late = []
    for chunk, (at, _) in enumerate(received.chunks[already:], start=already):
        late.append(at - live.made[timeline.chunk_position(number, chunk)])
    assert max(late) < ON_TIME, late
    arrivals = [at for at, _ in received.chunks[already:]]
    gaps = np.diff(arrivals)
    assert statistics.median(gaps) == pytest.approx(PART_SECONDS, abs=0.03)
    for chunk, (_, data) in enumerate(received.chunks):
        assert data == live.packager.part(*timeline.chunk_position(number, chunk))
    # Once complete: the same bytes, with a length, from the cache-friendly path.
    complete = await fetch(node.url, live.segment_path(number))
    assert "content-length" in complete.headers
    assert complete.body == received.body
    assert len(received.body) == int(complete.headers["content-length"])


async def test_the_next_segment_is_held_until_its_first_chunk(node, live) -> None:
    timeline = live.timeline(node)
    number = await wait_for_chunks(live, timeline, 10, 14)
    received = await fetch(node.url, live.segment_path(number + 1))
    assert received.status == 200
    first = timeline.chunk_position(number + 1, 0)
    assert received.started - live.made[first] < ON_TIME
    assert len(received.chunks) == timeline.chunks_per_segment


async def test_far_future_past_and_malformed_segments_are_refused_at_once(
    client, node, live
) -> None:
    timeline = live.timeline(node)
    number = await wait_for_chunks(live, timeline, 1, 16)
    run = live.packager.run_id
    base = f"/dash/{live.space_id}"
    cases = {
        live.segment_path(number + 2): 404,  # 7.7 s ahead: not held
        live.segment_path(number + 10**6): 404,
        live.segment_path(timeline.start_number - 1): 404,  # before the run
        live.segment_path(0): 404,
        f"{base}/{run}/abc.m4s": 400,
        f"{base}/{run}/007.m4s": 400,
        f"{base}/{run}/-1.m4s": 400,
        f"{base}/{run}/1.5.m4s": 400,
        f"{base}/{run}/9999999999999.m4s": 400,
        f"{base}/{run}/1.m4s.x": 404,
        f"{base}/{run}/index.m3u8": 404,
        f"{base}/otherrun/{number}.m4s": 404,
        f"{base}/bad.run/{number}.m4s": 404,
        f"{base}/{'r' * 33}/init.mp4": 404,
        f"{base}/otherrun/init.mp4": 404,
        "/dash/nosuchspace/manifest.mpd": 404,
        "/dash/nosuchspace/run/1.m4s": 404,
        "/dash/": 404,
    }
    for path, status in cases.items():
        started = time.monotonic()
        response = await client.get(path)
        assert response.status_code == status, path
        assert time.monotonic() - started < 0.5, path
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.json()["message"]
    post = await client.post(f"{base}/manifest.mpd")
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


async def test_head_answers_at_once(client, node, live) -> None:
    timeline = live.timeline(node)
    number = await wait_for_chunks(live, timeline, 2, 12, after=1)
    started = time.monotonic()
    head = await fetch(node.url, live.segment_path(number), method="HEAD")
    assert time.monotonic() - started < ON_TIME
    assert head.status == 200 and "content-length" not in head.headers
    assert head.headers["cache-control"] == "public, max-age=31536000, immutable"
    complete = await client.head(live.segment_path(number - 1))
    assert complete.status_code == 200 and complete.content == b""
    assert int(complete.headers["content-length"]) > 1000
    manifest = await client.head(f"/dash/{live.space_id}/manifest.mpd")
    assert manifest.status_code == 200 and manifest.content == b""


async def test_listeners_that_stop_reading_do_not_hold_the_node(node, live) -> None:
    timeline = live.timeline(node)
    number = await wait_for_chunks(live, timeline, 2, 6)
    address = urlsplit(node.url)
    stalled = []
    for _ in range(30):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
        request = f"GET {live.segment_path(number)} HTTP/1.1\r\nHost: test\r\n\r\n"
        await asyncio.get_running_loop().sock_sendall(sock, request.encode())
        stalled.append(sock)  # and never read from
    try:
        already = live.chunks_made(timeline, number)
        received = await fetch(node.url, live.segment_path(number))
        late = [
            at - live.made[timeline.chunk_position(number, chunk)]
            for chunk, (at, _) in enumerate(received.chunks[already:], start=already)
        ]
        assert len(received.chunks) == timeline.chunks_per_segment
        assert max(late) < ON_TIME, late
        # The segment is complete: nothing of the node waits for the stalled readers.
        deadline = time.monotonic() + 2
        while node.app.dash.streams_open and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert node.app.dash.streams_open == 0
    finally:
        for sock in stalled:
            sock.close()


async def test_a_send_that_never_returns_is_let_go(node, live, monkeypatch) -> None:
    """A listener whose socket buffers are full: `send` waits for them to drain, forever."""
    monkeypatch.setattr(dash_origin, "SEND_TIMEOUT", 0.3)
    timeline = live.timeline(node)
    number = await wait_for_chunks(live, timeline, 2, 10)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)
        if len(sent) >= 3:
            await asyncio.Event().wait()  # the listener stopped reading

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": live.segment_path(number), "headers": []}
    started = time.monotonic()
    await asyncio.wait_for(node.app.dash(scope, receive, send), timeout=2)
    assert time.monotonic() - started < 1.0
    assert node.app.dash.streams_open == 0
    assert sent[0]["status"] == 200
    assert not any(m.get("more_body") is False for m in sent[1:])  # cut off, never "complete"


async def test_the_end_completes_the_segment_in_progress(client, node, live) -> None:
    timeline = live.timeline(node)
    number = await wait_for_chunks(live, timeline, 3, 10)
    listening = asyncio.create_task(fetch(node.url, live.segment_path(number)))
    await asyncio.sleep(0.3)
    ended = await client.post(f"/api/spaces/{live.space_id}/end", headers=live.host)
    assert ended.status_code == 200, ended.text
    received = await asyncio.wait_for(listening, timeout=5)
    assert received.status == 200
    assert 3 < len(received.chunks) < timeline.chunks_per_segment  # the short final segment
    final = dash.segment_chunks(live.packager, timeline, number)
    assert final.complete and received.body == b"".join(final.data)
    # The final manifest: the Period ends where the run did, nothing more to reload.
    manifest = MPEGDASHParser.parse((await client.get(f"/dash/{live.space_id}/manifest.mpd")).text)
    assert manifest.minimum_update_period is None
    (period,) = manifest.periods
    assert float(period.duration[2:-1]) == pytest.approx(live.packager.samples / 48000, abs=1e-5)
    # The last chunk came with the event that tells players to reload it.
    assert b"emsg" in received.chunks[-1][1][:8]
    # Nothing comes after the end: asked for, refused at once.
    started = time.monotonic()
    assert (await client.get(live.segment_path(number + 1))).status_code == 404
    assert time.monotonic() - started < 0.5


async def test_segments_are_forwarded_from_the_owner_as_they_are_made(tmp_path, redis_url) -> None:
    from tests.test_two_nodes import shared_node

    async with (
        shared_node(tmp_path / "one", redis_url) as one,
        shared_node(tmp_path / "two", redis_url) as two,
        httpx.AsyncClient(base_url=one.url, timeout=15) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=15) as http2,
    ):
        host = account(one.data_dir, user="u-host")
        space = (await http1.post("/api/spaces", json={"title": "Owned"}, headers=host)).json()
        assert (await http1.post(f"/api/spaces/{space['id']}/start", headers=host)).is_success
        pipeline = one.app.services.broadcasts.get(space["id"])
        assert two.app.services.broadcasts.get(space["id"]) is None
        made: dict[tuple[int, int], float] = {}
        pipeline.on_part = lambda part: made.setdefault((part.msn, part.index), time.monotonic())
        live = Live(space["id"], pipeline, made, host)
        assert await pipeline.wait_for(pipeline.packager.first_msn, 0, timeout=5)

        manifest = await http2.get(f"/dash/{space['id']}/manifest.mpd")
        assert manifest.status_code == 200, manifest.text
        assert manifest.content == (await http1.get(f"/dash/{space['id']}/manifest.mpd")).content
        timeline = live.timeline(one)
        number = await wait_for_chunks(live, timeline, 1, 6)
        already = live.chunks_made(timeline, number)
        received = await fetch(two.url, live.segment_path(number))
        assert received.status == 200
        assert received.headers["cache-control"] == "public, max-age=31536000, immutable"
        # Streamed through node two as the owner makes it (not after it is complete).
        late = [
            at - made[timeline.chunk_position(number, chunk)]
            for chunk, (at, _) in enumerate(received.chunks)
            if chunk >= already and at > received.chunks[0][0]
        ]
        assert len(late) >= 6 and statistics.median(late) < ON_TIME, late
        complete = dash.segment_chunks(pipeline.packager, timeline, number)
        assert complete.complete and received.body == b"".join(complete.data)
        assert two.app.services.forwarder.forwarded >= 2
