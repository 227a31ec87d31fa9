"""LL-DASH: which segment length, and which edge, from measurements.

a. Player (`--part player`). dash.js in headless Chromium plays the demo space's LL-DASH
   manifest from a page on another origin, for `--seconds` (60) per segment length (1.92 s:
   one HLS segment; 3.84 s: two). Sampled every 500 ms: `getCurrentLiveLatency()` (wall clock
   minus the capture time of what plays, since the manifest's timeline is the capture clock),
   the playback rate, and the time spent stalled (`waiting` events until `playing`). Counted:
   the requests the page made to the node, by kind, per second. dash.js is not part of this
   project's install yet: `--dashjs` names its `dash.all.min.js` (npm `dashjs`, 5.x).

c. End (`--part end`). The same page plays for 10 s; then the host ends the space. Measured:
   how long until dash.js stops (the element's `ended` event), whether it played all it had,
   and its errors; with the manifest reloaded by dash.js itself (the run's last chunk carries
   an MPD expiry event) and with the page also calling `refreshManifest()` at once (what the
   listener page can do on the space's "ended" event).

b. Edges (`--part edges`). `--listeners` (200) clients ask for each new segment the moment the
   manifest says it may be asked for (its first chunk is due), through an edge, for `--segments`
   (4) segments in a row, while a reference client takes the same segments from the origin.
   For every chunk and listener: (time the listener had it) − (time the reference had it from
   the origin), i.e. what the edge adds; and the origin's segment requests per segment
   (`causerie_dash_requests_total`). Kinds: `varnish` (as `causerie edge-config` writes it);
   `nginx` (as written: segments passed through, streamed, uncached); `nginx-lock` (segments
   cached with nginx's cache lock, as for HLS parts: what nginx ticket 237 costs).

    .venv/bin/python -m bench.dash [--part player,end,edges] [--dashjs PATH] [--seconds 60]
                                   [--lengths 1.92,3.84] [--kinds varnish,nginx,nginx-lock]
                                   [--listeners 200] [--segments 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    HOST,
    REPO,
    Causerie,
    _wait_live,
    command_line,
    free_port,
    median,
    percentile,
    print_table,
    raise_fd_limit,
    stop_process,
    write_result,
)
from causerie.edge.config import (
    EdgeOptions,
    Origin,
    nginx_command,
    render,
    varnishd_command,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
]
DEFAULT_DASHJS = REPO / "src" / "causerie" / "web" / "static" / "vendor" / "dash.all.min.js"

# The node with another DASH segment length: a benchmark-only switch, not a product setting.
LAUNCHER = (
    "import os, sys; import causerie.api.dash as d; "
    "d.SEGMENT_SECONDS = float(os.environ['BENCH_DASH_SEGMENT_SECONDS']); "
    "from causerie.cli import main; sys.exit(main())"
)


@contextlib.contextmanager
def run_node(segment_seconds: float) -> Iterator[Causerie]:
    """`causerie demo` (this checkout's code) with DASH segments of `segment_seconds`."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="causerie-bench-") as tmp:
        data_dir = Path(tmp)
        env = {
            **os.environ,
            "BENCH_DASH_SEGMENT_SECONDS": str(segment_seconds),
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        }
        with (data_dir / "server.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, "demo", "--port", str(port),
                 "--data-dir", str(data_dir), "--log-level", "warning"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )  # fmt: skip
            try:
                base_url = f"http://{HOST}:{port}"
                space_id, path = _wait_live(base_url, process, 30)
                yield Causerie(process, base_url, port, space_id, path, data_dir)
            finally:
                stop_process(process)


# a. dash.js in Chromium

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>LL-DASH bench</title>
<audio id="audio" muted></audio>
<script src="/dash.all.min.js"></script>
<script>
  const audio = document.getElementById("audio");
  const player = dashjs.MediaPlayer().create();
  const state = {stalledMs: 0, stalls: 0, waitingSince: null, started: null, errors: [],
                 ended: null};
  audio.addEventListener("ended", () => { state.ended = performance.now(); });
  audio.addEventListener("waiting", () => {
    if (state.started !== null && state.waitingSince === null) {
      state.waitingSince = performance.now();
      state.stalls += 1;
    }
  });
  audio.addEventListener("playing", () => {
    if (state.started === null) state.started = performance.now();
    if (state.waitingSince !== null) {
      state.stalledMs += performance.now() - state.waitingSince;
      state.waitingSince = null;
    }
  });
  player.on(dashjs.MediaPlayer.events.ERROR,
            (e) => state.errors.push(`${e.error.code}: ${String(e.error.message).slice(0, 200)}`));
  player.initialize(audio, new URLSearchParams(location.search).get("mpd"), true);
  window.bench = {player, audio, state};
</script>
"""

_PLAYING = "() => window.bench && window.bench.state.started !== null"
_END_STATE = """() => {
  const {audio, state} = window.bench;
  const end = audio.buffered.length ? audio.buffered.end(audio.buffered.length - 1) : NaN;
  return {errors: state.errors, played_to_buffer_end: Math.abs(end - audio.currentTime) < 0.05};
}"""
_SAMPLE = """() => {
  const {player, audio, state} = window.bench;
  const stalled = state.stalledMs + (state.waitingSince === null ? 0
      : performance.now() - state.waitingSince);
  return {latency: player.getCurrentLiveLatency(), rate: audio.playbackRate,
          stalled_s: stalled / 1000, stalls: state.stalls, errors: state.errors.length};
}"""


@contextlib.contextmanager
def serve_page(dashjs: Path) -> Iterator[str]:
    """The player page and dash.js on their own origin (another port): the node's answers
    must allow cross-origin players."""
    files = {"/": PAGE.encode(), "/dash.all.min.js": dashjs.read_bytes()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            kind = (
                "text/html" if self.path.startswith("/?") or self.path == "/" else "text/javascript"
            )
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((HOST, free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _kind(url: str) -> str:
    if url.endswith(".mpd"):
        return "manifest"
    if url.endswith("/time"):
        return "time"
    if url.endswith("init.mp4"):
        return "init"
    if url.endswith(".m4s"):
        return "segment"
    return "other"


async def play(node: Causerie, page_url: str, seconds: float) -> dict[str, Any]:
    """One fresh Chromium playing the node's manifest for `seconds` after playback began."""
    from playwright.async_api import async_playwright

    mpd = f"{node.base_url}/dash/{node.space_id}/manifest.mpd"
    requests: list[tuple[float, str]] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.on(
                "request",
                lambda r: (
                    requests.append((time.monotonic(), r.url))
                    if r.url.startswith(node.base_url)
                    else None
                ),
            )
            await page.goto(f"{page_url}/?mpd={mpd}")
            opened = time.monotonic()
            await page.wait_for_function(_PLAYING, timeout=20_000, polling=50)
            started = time.monotonic()
            samples = []
            deadline = started
            while deadline < started + seconds:
                samples.append(await page.evaluate(_SAMPLE))
                deadline += 0.5
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            ended = time.monotonic()
        finally:
            await browser.close()
    window = [url for at, url in requests if started <= at <= ended]
    counts: dict[str, int] = {}
    for url in window:
        counts[_kind(url)] = counts.get(_kind(url), 0) + 1
    settled = [s["latency"] for s in samples[len(samples) // 2 :]]  # after catching up
    latency = [s["latency"] for s in samples]
    return {
        "open_to_playing_s": started - opened,
        "seconds": ended - started,
        "latency_p50": percentile(latency, 50),
        "latency_p99": percentile(latency, 99),
        "latency_second_half_p50": median(settled),
        "rates_seen": sorted({round(s["rate"], 3) for s in samples}),
        "stalls": samples[-1]["stalls"],
        "stalled_s": samples[-1]["stalled_s"],
        "errors": samples[-1]["errors"],
        "requests_per_s": len(window) / (ended - started),
        "requests_by_kind": counts,
        "requests_before_playing": len([1 for at, _ in requests if at < started]),
    }


def player_part(args: argparse.Namespace) -> list[dict[str, Any]]:
    dashjs = Path(args.dashjs)
    if not dashjs.exists():
        raise SystemExit(f"dash.js not found at {dashjs}: pass --dashjs PATH/dash.all.min.js")
    results = []
    with serve_page(dashjs) as page_url:
        for length in args.lengths:
            with run_node(length) as node:
                run = asyncio.run(play(node, page_url, args.seconds))
            results.append({"segment_seconds": length, **run})
    print()
    print_table(
        ["segment", "latency p50", "p99", "2nd half p50", "stalls", "stalled s",
         "requests/s", "segments/s", "errors"],
        [[r["segment_seconds"], r["latency_p50"], r["latency_p99"], r["latency_second_half_p50"],
          r["stalls"], r["stalled_s"], r["requests_per_s"],
          r["requests_by_kind"].get("segment", 0) / r["seconds"], r["errors"]]
         for r in results],
    )  # fmt: skip
    return results


async def end_run(node: Causerie, page_url: str, refresh: bool) -> dict[str, Any]:
    """Play 10 s, end the space, wait (up to 90 s) for dash.js to stop."""
    from playwright.async_api import async_playwright

    from causerie.cli import issue_account_token

    mpd = f"{node.base_url}/dash/{node.space_id}/manifest.mpd"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{page_url}/?mpd={mpd}")
            await page.wait_for_function(_PLAYING, timeout=20_000, polling=50)
            await asyncio.sleep(10)
            async with httpx.AsyncClient(base_url=node.base_url, timeout=10) as client:
                space = (await client.get(f"/api/spaces/{node.space_id}")).json()
                token = issue_account_token(node.data_dir, "Host", space["host"]["id"], days=1)
                ended = await client.post(
                    f"/api/spaces/{node.space_id}/end",
                    headers={"Authorization": f"Bearer {token}"},
                )
                ended.raise_for_status()
            at = time.monotonic()
            if refresh:
                await page.evaluate("() => window.bench.player.refreshManifest()")
            stopped = None
            with contextlib.suppress(Exception):
                await page.wait_for_function(
                    "() => window.bench.state.ended !== null", timeout=90_000, polling=100
                )
                stopped = time.monotonic() - at
            state = await page.evaluate(_END_STATE)
        finally:
            await browser.close()
    return {"refresh": refresh, "stopped_after_s": stopped, **state}


def end_part(args: argparse.Namespace) -> list[dict[str, Any]]:
    dashjs = Path(args.dashjs)
    if not dashjs.exists():
        raise SystemExit(f"dash.js not found at {dashjs}: pass --dashjs PATH/dash.all.min.js")
    results = []
    with serve_page(dashjs) as page_url:
        for refresh in (False, True):
            with run_node(3.84) as node:
                results.append(asyncio.run(end_run(node, page_url, refresh)))
    print()
    print_table(
        ["manifest reloaded", "ended after (s)", "played all it had", "errors"],
        [["at once (page)" if r["refresh"] else "by dash.js (the last chunk's event)",
          r["stopped_after_s"], r["played_to_buffer_end"], len(r["errors"])] for r in results],
    )  # fmt: skip
    return results


# b. edges


@dataclass
class Chunked:
    """One segment response, chunk arrival times (monotonic) and bytes."""

    status: int = 0
    arrivals: list[float] | None = None
    size: int = 0


async def get_chunked(port: int, path: str) -> Chunked:
    """GET over a fresh connection; each chunk's arrival time (chunked transfer), or one
    arrival for a body with a length."""
    reader, writer = await asyncio.open_connection(HOST, port)
    result = Chunked(arrivals=[])
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        result.status = int(head.split()[1])
        chunked = re.search(r"(?im)^transfer-encoding:\s*chunked", head) is not None
        if not chunked:
            length = re.search(r"(?im)^content-length:\s*(\d+)", head)
            data = await reader.readexactly(int(length[1])) if length else await reader.read()
            result.arrivals.append(time.monotonic())
            result.size = len(data)
            return result
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                return result
            await reader.readexactly(size + 2)
            result.arrivals.append(time.monotonic())
            result.size += size
    finally:
        writer.close()


def segment_count(origin: Causerie) -> float:
    text = httpx.get(f"{origin.base_url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith('causerie_dash_requests_total{kind="segment"'):
            total += float(line.rsplit(" ", 1)[1])
    return total


@contextlib.contextmanager
def run_edge(kind: str, origin: Causerie, listeners: int) -> Iterator[int]:
    """An edge of `kind` in front of the origin, as `causerie edge-config` writes it; for
    `nginx-lock`, with DASH segments cached under nginx's cache lock instead."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        folder = Path(tmp)
        options = EdgeOptions(
            origins=(Origin.parse(origin.base_url),),
            listen=f"{HOST}:{port}",
            workers="1",
            open_files=65536,
            storage="malloc,256m",
            listeners=listeners,
            live_max_size="256m",
            api_max_size="256m",
        )
        if kind == "varnish":
            config = folder / "edge.vcl"
            config.write_text(render("varnish", options))
            command = varnishd_command(
                config, options.listen, folder / "varnish", storage=options.storage,
                listeners=listeners, foreground=True, jail_none=os.geteuid() == 0,
            )  # fmt: skip
        else:
            config = folder / "nginx.conf"
            text = render("nginx", options)
            if os.geteuid() == 0:
                text = f"user {os.environ.get('USER', 'root')};\n" + text
            if kind == "nginx-lock":
                # What HLS parts get: cached, concurrent misses wait on the cache lock.
                text, found = re.subn(
                    r"proxy_cache off; # dash-segments\n(\s*)proxy_buffering off;",
                    r"proxy_cache causerie_live; proxy_cache_lock_timeout 10s;\n\1"
                    r"proxy_buffering on;",
                    text,
                )
                assert found == 1
            config.write_text(text)
            command = nginx_command(config, folder, foreground=True)
        with (folder / "out.log").open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
            try:
                deadline = time.monotonic() + 30
                while True:
                    if process.poll() is not None:
                        raise RuntimeError(f"{kind} exited: {(folder / 'out.log').read_text()}")
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).is_success:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{kind} did not start")
                    time.sleep(0.1)
                yield port
            finally:
                stop_process(process)


async def crowd(origin: Causerie, edge_port: int, listeners: int, segments: int) -> dict[str, Any]:
    """Everyone asks for each of the next `segments` segments when it becomes available."""
    async with httpx.AsyncClient(timeout=10) as client:
        mpd = (await client.get(f"{origin.base_url}/dash/{origin.space_id}/manifest.mpd")).text
    start = float(re.search(r'<Period id="[^"]+" start="PT([0-9.]+)S"', mpd)[1])
    run = re.search(r'<Period id="([^"]+)"', mpd)[1]
    template = re.search(r"<SegmentTemplate [^>]*>", mpd)[0]
    duration = int(re.search(r'duration="(\d+)"', template)[1]) / 48000
    first = int(re.search(r'startNumber="(\d+)"', template)[1])
    offset = float(re.search(r'availabilityTimeOffset="([0-9.]+)"', template)[1])
    now = time.time()
    # The next segment to become available, and the ones after it.
    next_number = first + int((now - start + offset - duration) // duration) + 1
    delays: list[float] = []
    first_chunk: list[float] = []
    incomplete = errors = 0
    before = segment_count(origin)
    for number in range(next_number, next_number + segments):
        due = start + (number - first + 1) * duration - offset
        await asyncio.sleep(max(0.0, due - time.time()))
        path = f"/dash/{origin.space_id}/{run}/{number}.m4s"
        reference = asyncio.create_task(get_chunked(origin.port, path))
        results = await asyncio.gather(
            reference, *(get_chunked(edge_port, path) for _ in range(listeners)),
            return_exceptions=True,
        )  # fmt: skip
        ref = results[0]
        if isinstance(ref, BaseException) or ref.status != 200:
            raise RuntimeError(f"the origin did not serve segment {number}: {ref}")
        for result in results[1:]:
            if isinstance(result, BaseException) or result.status != 200:
                errors += 1
                continue
            if result.size != ref.size or len(result.arrivals) == 0:
                incomplete += 1
                continue
            # Chunk boundaries may differ through an edge: compare by bytes received, i.e.
            # when the listener had everything the reference had at each of its chunks.
            # Here: first chunk and last byte, the two a player waits for.
            first_chunk.append(result.arrivals[0] - ref.arrivals[0])
            delays.append(result.arrivals[-1] - ref.arrivals[-1])
    origin_requests = segment_count(origin) - before - segments  # minus the reference's
    return {
        "segments": segments,
        "listeners": listeners,
        "origin_requests_per_segment": origin_requests / segments,
        "first_chunk_delay_p50": percentile(first_chunk, 50),
        "first_chunk_delay_p99": percentile(first_chunk, 99),
        "last_byte_delay_p50": percentile(delays, 50),
        "last_byte_delay_p99": percentile(delays, 99),
        "incomplete": incomplete,
        "errors": errors,
    }


def edges_part(args: argparse.Namespace) -> list[dict[str, Any]]:
    raise_fd_limit()
    results = []
    with run_node(3.84) as origin:
        for kind in args.kinds:
            with run_edge(kind, origin, args.listeners) as port:
                run = asyncio.run(crowd(origin, port, args.listeners, args.segments))
            results.append({"kind": kind, **run})
    print()
    print_table(
        ["edge", "listeners", "origin req/segment", "1st chunk +p50", "p99",
         "last byte +p50", "p99", "incomplete", "errors"],
        [[r["kind"], r["listeners"], r["origin_requests_per_segment"],
          r["first_chunk_delay_p50"], r["first_chunk_delay_p99"], r["last_byte_delay_p50"],
          r["last_byte_delay_p99"], r["incomplete"], r["errors"]] for r in results],
    )  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="player,end,edges")
    parser.add_argument("--dashjs", default=str(DEFAULT_DASHJS))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--lengths", default="1.92,3.84")
    parser.add_argument("--kinds", default="varnish,nginx,nginx-lock")
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--segments", type=int, default=4)
    args = parser.parse_args()
    args.lengths = [float(x) for x in args.lengths.split(",")]
    args.kinds = args.kinds.split(",")
    parts = args.part.split(",")
    result: dict[str, Any] = {}
    if "player" in parts:
        result["player"] = player_part(args)
    if "end" in parts:
        result["end"] = end_part(args)
    if "edges" in parts:
        result["edges"] = edges_part(args)
    result["command"] = command_line("dash")
    path = write_result("dash", result)
    print(f"\nwrote {path.relative_to(REPO)}")
    print(f"reproduce: {result['command']}")


if __name__ == "__main__":
    main()
