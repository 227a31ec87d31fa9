"""`causerie relay` in front of a real `causerie demo` node, on 127.0.0.1: LL-DASH segments and
windows of live events, each one origin request however many listeners ask, streamed to all of
them as it is made; listeners joining mid-segment get what exists at once; a listener that
stops reading is dropped without holding the others.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_dash import fetch
from tests.edge.servers import counter
from tests.edge.test_dash_edges import SEGMENTS, crowd, template_of
from tests.edge.test_feed_edge import follow
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge, run_relay
from tests.harness.polling import wait_until

SEND_TIMEOUT = 2.0
TCP_ESTABLISHED = 1  # tcpi_state (linux/tcp.h)


@pytest.fixture(scope="module")
def relay(
    origin: CauserieProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningEdge]:
    with run_relay(
        origin.url,
        tmp_path_factory.mktemp("relay"),
        extra=["--send-timeout", str(SEND_TIMEOUT)],
    ) as running:
        yield running


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_a_segment_in_progress_reaches_200_listeners_with_one_origin_request(
    relay: RunningEdge, origin: CauserieProcess
) -> None:
    listeners, segments = 200, 2
    before = counter(origin, "causerie_dash_requests_total", **SEGMENTS)
    results = await crowd(relay, origin, listeners, segments)
    requests = counter(origin, "causerie_dash_requests_total", **SEGMENTS) - before
    requests -= segments  # the test's own, for the complete bytes
    assert requests == segments  # exactly one per segment, whatever the audience
    for number, answers, complete in results:
        for answer in answers:
            assert answer.status == 200, number
            assert answer.body == complete
            assert answer.headers["access-control-allow-origin"] == "*"
            assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        # Streamed while it was made: chunk after chunk over about a segment duration.
        spread = sorted(a.chunks[-1][0] - a.chunks[0][0] for a in answers)
        assert spread[len(spread) // 10] > 2.5, spread[:5]
        assert sum(a.headers["x-cache"] == "HIT" for a in answers) == listeners - 1


async def test_a_listener_joining_mid_segment_gets_the_chunks_made_so_far_at_once(
    relay: RunningEdge, origin: CauserieProcess
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        mpd = await client.get(f"{relay.url}/dash/{origin.space_id}/manifest.mpd")
    template = template_of(mpd.text)
    number = template.next_due(time.time())
    path = f"/dash/{origin.space_id}/{template.run}/{number}.m4s"
    await asyncio.sleep(max(0.0, template.due(number) - time.time()))
    first = asyncio.create_task(fetch(relay.url, path))
    await asyncio.sleep(2.0)  # ~9 of its 18 chunks made
    late = await fetch(relay.url, path)
    early = await first
    assert early.status == late.status == 200
    assert late.body == early.body
    # The first piece the late listener got (at once) held every chunk made so far ...
    arrived, data = late.chunks[0]
    assert arrived - late.started < 0.1
    assert data.count(b"mdat") >= 6, data.count(b"mdat")
    # ... then it followed chunk by chunk, like the early one.
    assert late.chunks[-1][0] - late.chunks[0][0] > 1.0


@pytest.mark.slow
async def test_an_event_reaches_200_listeners_with_one_origin_request_per_window(
    relay: RunningEdge, origin: CauserieProcess
) -> None:
    listeners, seconds = 200, 20.0
    labels = {"kind": "window", "status": "200"}
    before = counter(origin, "causerie_feed_requests_total", **labels)
    limits = httpx.Limits(max_connections=listeners + 10, max_keepalive_connections=listeners)
    until = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=relay.url, timeout=30, limits=limits) as http:
        heard = await asyncio.gather(
            *(follow(http, origin.space_id, until) for _ in range(listeners))
        )
    origin_requests = counter(origin, "causerie_feed_requests_total", **labels) - before
    report = f"{listeners} listeners, origin window requests {origin_requests:.0f}"
    assert len(heard[0]) >= 3, report
    # Everyone heard the same events, in order, none missed; a listener whose last window
    # ended a moment after `until` (the end lines reach 200 readers over some milliseconds)
    # read one window more than another, so the shorter lists are the start of the longest.
    longest = max(heard, key=len)
    assert all(ids == longest[: len(ids)] for ids in heard), report
    assert min(len(ids) for ids in heard) >= 3, report
    # Windows of 15 s: the one open at the start, the next, maybe one more.
    assert origin_requests <= seconds / 15 + 2, report


async def test_a_stalled_listener_is_dropped_without_holding_the_others_or_memory(
    relay: RunningEdge, origin: CauserieProcess
) -> None:
    async with httpx.AsyncClient(base_url=relay.url, timeout=10) as client:
        template = template_of((await client.get(f"/dash/{origin.space_id}/manifest.mpd")).text)
        number = template.next_due(time.time()) - 1  # in progress: complete after this request
        old = f"/dash/{origin.space_id}/{template.run}/{number}.m4s"
        answer = await client.get(old)
        assert answer.status_code == 200, answer.text
        size = len(answer.content)
    rss_before = rss_kib(relay.process.pid)
    # A listener that asks for 400 copies at once (~13 MB) and reads nothing.
    stalled = socket.create_connection(("127.0.0.1", relay.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the relay buffers the rest
    request = f"GET {old} HTTP/1.1\r\nHost: relay\r\n\r\n".encode()
    stalled.sendall(request * 400)
    started = time.monotonic()
    # Meanwhile another listener streams the next segment as it is made.
    number = template.next_due(time.time())
    await asyncio.sleep(max(0.0, template.due(number) - time.time()))
    other = await fetch(relay.url, f"/dash/{origin.space_id}/{template.run}/{number}.m4s")
    assert other.status == 200 and len(other.chunks) > 10
    assert other.chunks[-1][0] - other.chunks[0][0] > 2.5  # streamed, not held up
    # It is cut off (a reset) once its writes stayed paused for the send timeout; what it asked
    # for never piled up in the relay (one response beyond the socket's buffers).
    grew = rss_kib(relay.process.pid) - rss_before
    assert grew < 4 * size // 1024 + 2048, grew

    def cut_off() -> bool:
        # Without reading (which would let it go on): the kernel's view of the connection.
        state = stalled.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        return state != TCP_ESTABLISHED

    wait_until(cut_off, 20, "the stalled listener cut off")
    assert time.monotonic() - started >= SEND_TIMEOUT
    stalled.close()
    assert httpx.get(f"{relay.url}/healthz", timeout=5).status_code == 200


def test_manifest_init_and_clock(relay: RunningEdge, origin: CauserieProcess) -> None:
    with httpx.Client(base_url=relay.url, timeout=10) as client:
        path = f"/dash/{origin.space_id}/manifest.mpd"
        first = client.get(path)
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "application/dash+xml"
        assert first.headers["access-control-allow-origin"] == "*"
        again = client.get(path)
        assert again.headers["x-cache"] == "HIT" and again.content == first.content
        run = template_of(first.text).run
        init = f"/dash/{origin.space_id}/{run}/init.mp4"
        assert client.get(init).status_code == 200
        assert client.get(init).headers["x-cache"] == "HIT"
        head = client.head(init)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 100
        clocks = [client.get("/time") for _ in range(2)]
        assert all(c.status_code == 200 and c.headers["x-cache"] == "PASS" for c in clocks)
        assert all(c.headers["cache-control"] == "no-store" for c in clocks)
        # A segment that is not there is not remembered as missing (the origin says no-store).
        for _ in range(2):
            missing = client.get(f"/dash/{origin.space_id}/{run}/1.m4s")
            assert missing.status_code == 404 and missing.headers["x-cache"] == "MISS"
            assert missing.headers["access-control-allow-origin"] == "*"
        # Credentials are not forwarded and change nothing: the object is the same for all.
        with_cookie = client.get(path, headers={"Cookie": "a=b", "Authorization": "Bearer x"})
        assert with_cookie.content == first.content
