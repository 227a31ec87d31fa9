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
   cached with nginx's cache lock, as for HLS parts: what nginx ticket 237 costs); `ats` and
   `ats:BYTES` (Apache Traffic Server with read-while-writer, cache fragments of 1 MiB or
   BYTES: not written by `causerie edge-config`).

    .venv/bin/python -m bench.dash [--part player,end,edges] [--dashjs PATH] [--seconds 60]
                                   [--lengths 1.92,3.84] [--runs 1] [--players 1]
                                   [--via origin|varnish|nginx] [--kinds varnish,nginx,nginx-lock]
                                   [--listeners 200] [--segments 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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


async def play(
    node: Causerie, base_url: str, page_url: str, seconds: float, players: int = 1
) -> dict[str, Any]:
    """`players` fresh pages in one Chromium playing the manifest at `base_url` (the node, or
    an edge in front of it) for `seconds` after playback began. Requests are those of the
    first page; stalls and errors those of all."""
    from playwright.async_api import async_playwright

    mpd = f"{base_url}/dash/{node.space_id}/manifest.mpd"
    requests: list[tuple[float, str]] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pages = [await browser.new_page() for _ in range(players)]
            pages[0].on(
                "request",
                lambda r: (
                    requests.append((time.monotonic(), r.url))
                    if r.url.startswith(base_url)
                    else None
                ),
            )
            opened = time.monotonic()
            for page in pages:
                await page.goto(f"{page_url}/?mpd={mpd}")
            for page in pages:
                await page.wait_for_function(_PLAYING, timeout=20_000, polling=50)
            started = time.monotonic()
            origin_before = segment_count(node)
            samples = []
            deadline = started
            while deadline < started + seconds:
                samples.append(await pages[0].evaluate(_SAMPLE))
                deadline += 0.5
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            ended = time.monotonic()
            origin_segments = segment_count(node) - origin_before
            finals = [await page.evaluate(_SAMPLE) for page in pages]
        finally:
            await browser.close()
    window = [url for at, url in requests if started <= at <= ended]
    counts: dict[str, int] = {}
    for url in window:
        counts[_kind(url)] = counts.get(_kind(url), 0) + 1
    settled = [s["latency"] for s in samples[len(samples) // 2 :]]  # after catching up
    latency = [s["latency"] for s in samples]
    return {
        "players": players,
        "open_to_playing_s": started - opened,
        "seconds": ended - started,
        "latency_p50": percentile(latency, 50),
        "latency_p99": percentile(latency, 99),
        "latency_second_half_p50": median(settled),
        "rates_seen": sorted({round(s["rate"], 3) for s in samples}),
        "stalls": sum(f["stalls"] for f in finals),
        "stalled_s": sum(f["stalled_s"] for f in finals),
        "errors": sum(f["errors"] for f in finals),
        "requests_per_s": len(window) / (ended - started),
        "requests_by_kind": counts,
        "requests_before_playing": len([1 for at, _ in requests if at < started]),
        "origin_segment_requests_per_s": origin_segments / (ended - started),
    }


def player_part(args: argparse.Namespace) -> list[dict[str, Any]]:
    dashjs = Path(args.dashjs)
    if not dashjs.exists():
        raise SystemExit(f"dash.js not found at {dashjs}: pass --dashjs PATH/dash.all.min.js")
    results = []
    with serve_page(dashjs) as page_url:
        for _ in range(args.runs):
            for length in args.lengths:
                with run_node(length) as node, contextlib.ExitStack() as stack:
                    base = node.base_url
                    if args.via != "origin":
                        port = stack.enter_context(run_edge(args.via, node, 100))
                        base = f"http://{HOST}:{port}"
                    run = asyncio.run(play(node, base, page_url, args.seconds, args.players))
                results.append({"segment_seconds": length, "via": args.via, **run})
    print()
    print_table(
        ["segment", "via", "players", "latency p50", "p99", "2nd half p50", "stalls",
         "stalled s", "requests/s", "segments/s", "origin seg/s", "errors"],
        [[r["segment_seconds"], r["via"], r["players"], r["latency_p50"], r["latency_p99"],
          r["latency_second_half_p50"], r["stalls"], r["stalled_s"], r["requests_per_s"],
          r["requests_by_kind"].get("segment", 0) / r["seconds"],
          r["origin_segment_requests_per_s"], r["errors"]]
         for r in results],
    )  # fmt: skip
    return results


async def end_run(node: Causerie, base_url: str, page_url: str, refresh: bool) -> dict[str, Any]:
    """Play 10 s (from `base_url`: the node or an edge), end the space, wait (up to 90 s) for
    dash.js to stop."""
    from playwright.async_api import async_playwright

    from causerie.cli import issue_account_token

    mpd = f"{base_url}/dash/{node.space_id}/manifest.mpd"
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
        for _ in range(args.runs):
            for refresh in (False, True):
                with run_node(3.84) as node, contextlib.ExitStack() as stack:
                    base = node.base_url
                    if args.via != "origin":
                        port = stack.enter_context(run_edge(args.via, node, 100))
                        base = f"http://{HOST}:{port}"
                    run = asyncio.run(end_run(node, base, page_url, refresh))
                results.append({"via": args.via, **run})
    print()
    print_table(
        ["via", "manifest reloaded", "ended after (s)", "played all it had", "errors"],
        [[r["via"], "at once (page)" if r["refresh"] else "by dash.js (the last chunk's event)",
          r["stopped_after_s"], r["played_to_buffer_end"], len(r["errors"])] for r in results],
    )  # fmt: skip
    return results


# b. edges


@dataclass
class Received:
    """One segment response: after each read from the socket, the time (monotonic) and the
    body bytes received so far (chunked transfer decoded)."""

    status: int = 0
    progress: list[tuple[float, int]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.progress[-1][1] if self.progress else 0

    def reached(self, size: int) -> float | None:
        """When the body had `size` bytes."""
        return next((at for at, total in self.progress if total >= size), None)


async def get_segment(port: int, path: str) -> Received:
    """GET over a fresh connection, noting how the body arrived, read by read (whatever an
    edge does with the chunk boundaries, this is when a player could have used the bytes)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    result = Received()
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        result.status = int(head.split()[1])
        chunked = re.search(r"(?im)^transfer-encoding:\s*chunked", head) is not None
        buffer, total, remaining, done = b"", 0, 0, False
        while not done:
            data = await reader.read(65536)
            if not data:
                break
            if not chunked:
                total += len(data)
                result.progress.append((time.monotonic(), total))
                continue
            buffer += data
            while True:  # RFC 9112 §7.1: size CRLF data CRLF ... 0 CRLF CRLF
                if remaining:
                    taken = min(remaining, len(buffer))
                    total, remaining, buffer = total + taken, remaining - taken, buffer[taken:]
                    if remaining:
                        break
                    buffer = buffer[2:] if len(buffer) >= 2 else buffer  # the chunk's CRLF
                line_end = buffer.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(buffer[:line_end].split(b";")[0], 16)
                buffer = buffer[line_end + 2 :]
                if size == 0:
                    done = True
                    break
                remaining = size
            result.progress.append((time.monotonic(), total))
        return result
    finally:
        writer.close()


def segment_count(origin: Causerie) -> float:
    text = httpx.get(f"{origin.base_url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith('causerie_dash_requests_total{kind="segment"'):
            total += float(line.rsplit(" ", 1)[1])
    return total


# Apache Traffic Server (Debian `trafficserver`, 9.2) as a reverse proxy with read-while-writer:
# not written by `causerie edge-config`, only measured here beside Varnish and nginx.
ATS_RECORDS = """
CONFIG proxy.config.http.server_ports STRING {port}
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.url_remap.remap_required INT 1
CONFIG proxy.config.cache.enable_read_while_writer INT 1
CONFIG proxy.config.http.background_fill_active_timeout INT 0
CONFIG proxy.config.http.background_fill_completed_threshold FLOAT 0.000000
CONFIG proxy.config.http.cache.max_open_read_retries INT 100
CONFIG proxy.config.http.cache.open_read_retry_time INT 10
CONFIG proxy.config.cache.target_fragment_size INT {fragment}
CONFIG proxy.config.log.logging_enabled INT 0
"""


def ats_command(folder: Path, origin: Causerie, port: int, fragment: int) -> list[str]:
    """A runroot for traffic_server under `folder` (configuration copied from Debian's, with
    read-while-writer on and `fragment`-byte cache fragments: readers of an object still
    being written get it a fragment at a time, 1 MiB by default)."""
    etc = folder / "etc"
    shutil.copytree("/etc/trafficserver", etc)
    for name in ("run", "log", "cache", "var"):
        (folder / name).mkdir()
    records = etc / "records.config"
    text = re.sub(r"(?m)^CONFIG proxy.config.http.server_ports .*$", "", records.read_text())
    records.write_text(text + ATS_RECORDS.format(port=port, fragment=fragment))
    (etc / "remap.config").write_text(f"map http://{HOST}:{port}/ {origin.base_url}/\n")
    (etc / "storage.config").write_text(f"{folder / 'cache'} 256M\n")
    runroot = folder / "runroot.yaml"
    runroot.write_text(
        "".join(
            f"{key}: {value}\n"
            for key, value in {
                "prefix": folder, "exec_prefix": folder, "bindir": "/usr/bin",
                "sbindir": "/usr/sbin", "sysconfdir": etc, "datadir": folder / "cache",
                "includedir": "/usr/include", "libdir": "/usr/lib/trafficserver",
                "libexecdir": "/usr/lib/trafficserver/modules", "localstatedir": folder / "var",
                "runtimedir": folder / "run", "logdir": folder / "log",
                "cachedir": folder / "cache",
            }.items()
        )
    )  # fmt: skip
    return ["traffic_server", f"--run-root={runroot}"]


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
        if kind.startswith("ats"):
            fragment = int(kind.partition(":")[2] or 1048576)
            command = ats_command(folder, origin, port, fragment)
        elif kind == "varnish":
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
        reference = asyncio.create_task(get_segment(origin.port, path))
        results = await asyncio.gather(
            reference, *(get_segment(edge_port, path) for _ in range(listeners)),
            return_exceptions=True,
        )  # fmt: skip
        ref = results[0]
        if isinstance(ref, BaseException) or ref.status != 200:
            raise RuntimeError(f"the origin did not serve segment {number}: {ref}")
        for result in results[1:]:
            if isinstance(result, BaseException) or result.status != 200:
                errors += 1
                continue
            if result.size != ref.size:
                incomplete += 1
                continue
            # Each time the reference (straight from the origin) got bytes: how much later
            # this listener had as many.
            first_chunk.append(result.reached(ref.progress[0][1]) - ref.progress[0][0])
            delays += [result.reached(size) - at for at, size in ref.progress]
    origin_requests = segment_count(origin) - before - segments  # minus the reference's
    return {
        "segments": segments,
        "listeners": listeners,
        "origin_requests_per_segment": origin_requests / segments,
        "first_chunk_delay_p50": percentile(first_chunk, 50),
        "first_chunk_delay_p99": percentile(first_chunk, 99),
        "bytes_delay_p50": percentile(delays, 50),
        "bytes_delay_p99": percentile(delays, 99),
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
         "every chunk +p50", "p99", "incomplete", "errors"],
        [[r["kind"], r["listeners"], r["origin_requests_per_segment"],
          r["first_chunk_delay_p50"], r["first_chunk_delay_p99"], r["bytes_delay_p50"],
          r["bytes_delay_p99"], r["incomplete"], r["errors"]] for r in results],
    )  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="player,end,edges")
    parser.add_argument("--dashjs", default=str(DEFAULT_DASHJS))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--lengths", default="1.92,3.84")
    parser.add_argument("--runs", type=int, default=1, help="player runs per segment length")
    parser.add_argument("--players", type=int, default=1, help="dash.js pages at once")
    parser.add_argument("--via", default="origin", help="origin, varnish or nginx")
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
