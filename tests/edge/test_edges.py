"""Real edges (nginx, Varnish) in front of a real `causerie demo` node, on 127.0.0.1.

Each test runs once per kind of edge: ffmpeg records through it; crowds of simulated LL-HLS
listeners cost the origin about one request per part whatever their number; details survive
the origin going away; joins and live events pass through.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from causerie.cli import issue_account_token
from tests.edge.conftest import require
from tests.edge.listeners import listen
from tests.edge.servers import counter, run_edge, run_origin
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge
from tests.harness.ports import free_port
from tests.hls_recording import record_live

PART_SECONDS = 0.21333
FOLLOW_SECONDS = 8.0


def test_ffmpeg_records_the_live_space_through_the_edge(
    edge: RunningEdge, origin: CauserieProcess, ffmpeg: str, tmp_path: Path
) -> None:
    samples = record_live(ffmpeg, edge.url + origin.playlist_path, 6, tmp_path)
    samples = samples.astype(np.float64) / 32768
    assert len(samples) / 48000 > 5.5
    rms = float(np.sqrt(np.mean(samples**2)))
    assert rms > 0.01, f"silent recording (RMS {rms:.4f})"


@pytest.mark.parametrize(
    "listeners", [100, pytest.param(1000, marks=pytest.mark.slow)], ids=lambda n: f"{n}-listeners"
)
async def test_listeners_cost_the_origin_one_request_per_part(
    edge: RunningEdge, origin: CauserieProcess, listeners: int
) -> None:
    parts = {"kind": "part", "status": "200"}
    playlists = {"kind": "playlist", "status": "200"}
    before = counter(origin, "causerie_hls_requests_total", **parts)
    playlists_before = counter(origin, "causerie_hls_requests_total", **playlists)
    started = time.monotonic()
    audience = await listen(edge.port, origin.playlist_path, listeners, FOLLOW_SECONDS)
    elapsed = time.monotonic() - started
    origin_parts = counter(origin, "causerie_hls_requests_total", **parts) - before
    origin_playlists = (
        counter(origin, "causerie_hls_requests_total", **playlists) - playlists_before
    )

    fetched = audience.parts_fetched  # every part some listener got
    produced = elapsed / PART_SECONDS
    got = sorted(len(f.received) for f in audience.followers)
    report = (
        f"{edge.kind}, {listeners} listeners, {elapsed:.1f} s: {len(fetched)} distinct parts "
        f"(~{produced:.0f} produced), origin part requests {origin_parts:.0f}, origin playlist "
        f"requests {origin_playlists:.0f}, parts per listener min {got[0]} median "
        f"{got[len(got) // 2]}, requests {audience.requests}, errors {audience.errors}"
    )
    print(report)
    # The listeners followed the live edge, part after part (a listener that falls out of the
    # playlist window and skips ahead counts an error), even on a busy machine.
    assert len(fetched) >= 0.6 * (FOLLOW_SECONDS / PART_SECONDS), report
    assert got[len(got) // 2] >= 0.75 * len(fetched), report
    assert audience.errors <= 0.01 * audience.requests, report
    # About one origin request per part, whatever the number of listeners.
    assert origin_parts <= 1.5 * len(fetched), report
    assert origin_playlists <= 3 * len(fetched), report


@pytest.mark.parametrize("kind", ["nginx", "varnish"])
def test_details_survive_the_origin_going_away(kind: str, tmp_path: Path) -> None:
    require(kind)
    with (
        run_origin(tmp_path / "origin") as origin,
        run_edge(kind, [origin.url], tmp_path / kind) as edge,
        httpx.Client(base_url=edge.url, timeout=10) as client,
    ):
        path = f"/api/spaces/{origin.space_id}"
        first = client.get(path)
        assert first.status_code == 200
        assert "stale-if-error" in first.headers["cache-control"]
        assert client.get(path).headers["x-cache"] == "HIT"
        # Safe to cache whoever asks: credentials do not change the details.
        assert client.get(path, headers={"Authorization": "Bearer x"}).headers["x-cache"] == "HIT"

        origin.stop()
        assert client.get("/api/spaces/nosuchspace").status_code >= 500  # the origin is gone
        # Past max-age (2 s) only a stale copy is left; keep asking until the edge has said
        # so (nginx: X-Cache STALE or UPDATING; Varnish: an Age beyond max-age) and a little
        # longer (Varnish's health probe marks the origin sick after about 2 s).
        stale_seen = 0
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            again = client.get(path)
            assert again.status_code == 200, again.text
            assert again.json() == first.json()
            age = int(again.headers.get("age", "0"))
            if again.headers["x-cache"] in ("STALE", "UPDATING") or age > 2:
                stale_seen += 1
            time.sleep(0.5)
        assert stale_seen >= 3


class _Failing(http.server.BaseHTTPRequestHandler):
    """An origin that looks healthy to probes (/healthz) but drops every other request, as a
    node does when it is killed between two health probes."""

    def do_GET(self) -> None:
        if self.path.startswith("/healthz"):
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def failing_origin() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), _Failing)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("kind", ["nginx", "varnish"])
def test_a_failing_origin_is_skipped_for_media(
    kind: str, origin: CauserieProcess, tmp_path: Path
) -> None:
    """Media requests for a space go to the origin its id hashes to; when that one fails (a
    killed owner, not yet marked sick), the edge asks the next (which forwards to the space's
    new owner): nginx proxy_next_upstream, Varnish a retry with the shard's next backend."""
    require(kind)
    with (
        failing_origin() as failing,
        run_edge(kind, [failing, origin.url], tmp_path / kind) as edge,
        httpx.Client(base_url=edge.url, timeout=15) as client,
    ):
        live = client.get(origin.playlist_path)
        assert live.status_code == 200 and "#EXT-X-PART:" in live.text
        # Eight space ids: about half of them hash to the failing origin first. Each must be
        # answered by the working origin (its JSON 404), not with the edge's 502/503.
        statuses = [client.get(f"/hls/nosuch{n}x{kind}/index.m3u8").status_code for n in range(8)]
        assert statuses == [404] * 8


def test_joins_go_to_the_origin_every_time(edge: RunningEdge, origin: CauserieProcess) -> None:
    before = counter(origin, "causerie_joins_total")
    path = f"/api/spaces/{origin.space_id}/join"
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        first = client.post(path, json={"name": "Ana"})
        second = client.post(path, json={"name": "Ana"})
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["token"] != second.json()["token"]
    assert first.json()["listener_id"] != second.json()["listener_id"]
    assert counter(origin, "causerie_joins_total") - before == 2


def test_authorized_requests_are_not_cached(edge: RunningEdge, origin: CauserieProcess) -> None:
    """Except the public details and media: an API read with credentials is never a hit."""
    path = f"/api/spaces/{origin.space_id}/questions"
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        assert client.get(path).status_code == 200
        assert client.get(path).headers["x-cache"] == "HIT"  # public, max-age=1
        token = {"Authorization": "Bearer not-checked-here"}
        assert client.get(path, headers=token).headers["x-cache"] not in ("HIT", "STALE")


async def test_live_events_stream_through_the_edge(
    edge: RunningEdge, origin: CauserieProcess
) -> None:
    token = issue_account_token(origin.data_dir, "Host", None, days=1)
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=edge.url, timeout=10) as client:
        created = await client.post("/api/spaces", json={"title": "Through the edge"}, headers=auth)
        assert created.status_code == 201, created.text
        space_id = created.json()["id"]
        states: list[str] = []

        async def follow() -> None:
            async with client.stream("GET", f"/api/spaces/{space_id}/events") as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                event = ""
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event in ("snapshot", "space"):
                        states.append(json.loads(line[6:])["state"])
                        if states[-1] == "ended":
                            return

        follower = asyncio.create_task(follow())
        async with asyncio.timeout(10):
            while not states:  # the snapshot: the stream is open
                await asyncio.sleep(0.02)
        assert states == ["scheduled"]
        started = await client.post(f"/api/spaces/{space_id}/start", headers=auth)
        assert started.status_code == 200, started.text
        async with asyncio.timeout(10):
            while "live" not in states:
                await asyncio.sleep(0.02)
        ended = await client.post(f"/api/spaces/{space_id}/end", headers=auth)
        assert ended.status_code == 200, ended.text
        async with asyncio.timeout(10):
            await follower
    assert states == ["scheduled", "live", "ended"]
