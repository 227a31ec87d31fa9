"""How many simulated LL-HLS listeners one causerie process keeps on time, next to nginx.

A simulated listener does what hls.js does, over one keep-alive HTTP/1.1 connection:

- against causerie (blocking reload): GET the playlist with _HLS_msn/_HLS_part for the next
  part (the origin answers once it exists), then GET the part;
- against nginx (the reference; it cannot block): re-request the plain playlist every
  `--poll-ms` (default PART-TARGET / 2, which is also hls.js's retry interval for a playlist
  that did not change) until the next part is listed, then GET the part.

The nginx reference serves the same bytes from disk: a feeder process follows the causerie
origin (one blocking client) and writes each part, then the playlist (without
CAN-BLOCK-RELOAD), as files; nginx runs one worker.

A part is on time if it was received before the next part is due: its ready time + one part
duration (213 ms). Its ready time is nominal, on the media clock: the wall time of its end
(from PROGRAM-DATE-TIME) + the origin's part-ready lag measured without load at the start
(causerie: a lone blocking reload returns ~60 ms after the part's end; nginx: the feeder has
written the files a few ms later). So a media pipeline (or feeder) that the load makes late
counts against the server, as listeners would hear it. "Served" judges the same parts against
the time each really appeared (causerie: the first client that got a playlist listing it;
nginx: the feeder wrote it), i.e. the serving alone; "ready late" is how late they appeared.
A level is kept if >= 99 % of the parts due in the window (15 s by default; `--window 20`) are
on time; a failed try is tried again if other processes kept the server or the load generator
waiting for a CPU (a single stall of theirs fails a 99 % criterion).

Cores: the servers (causerie, nginx, the feeder) run on --server-cpus, the load-generator
processes and this one on --client-cpus. Levels step up for causerie until one is not kept, then
for nginx from causerie's largest kept level (at least 200), doubling, until one is not kept or
the load generator is saturated (then nginx's figure is a lower bound).

    .venv/bin/python -m bench.listeners [--levels 100,150,...] [--window 20] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import multiprocessing as mp
import os
import random
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvloop
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import run_nginx as harness_nginx
from tests.harness.ports import HOST, free_port
from tests.harness.processes import children

from bench._common import (
    UVLOOP_LAUNCHER,
    command_line,
    cpu_seconds,
    median,
    pin,
    print_table,
    raise_fd_limit,
    run_causerie,
    run_queue_seconds,
    write_result,
)
from bench._hls import PartEvent, directory_of, follow_live, parse_playlist
from bench._http import Connection, HttpError

ON_TIME_GOAL = 0.99
DEFAULT_LEVELS = "100,200,400,600,800,1200,1600,2400,3200"
DISTURBED = 0.08  # a try during which the server or the load generator waited for a CPU longer
CLIENT_BOUND = 0.75  # a load-generator process this busy (of one core) delays its own timings
MAX_LISTENERS = 12_800  # file descriptors: the hard limit here is 20 000 per process
BASELINE_SECONDS = 4.0
SAMPLE_RATE = 48_000

# ---- feeder: copies the live stream from the causerie origin to files for nginx -------------


def _write(path: Path, data: bytes) -> None:
    """Replace a file atomically, so nginx never serves half of it."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def _feed(port: int, playlist_path: str, www: Path, log_path: Path, until: float) -> None:
    conn = Connection(HOST, port)
    target = www / playlist_path.lstrip("/")
    folder = target.parent
    _status, body = await conn.get(playlist_path)
    map_uri = parse_playlist(body.decode()).map_uri
    _status, init = await conn.get(directory_of(playlist_path) + map_uri)
    (folder / map_uri).parent.mkdir(parents=True, exist_ok=True)
    _write(folder / map_uri, init)
    parts: dict[tuple[int, int], bytes] = {}
    segments_written: set[int] = set()
    log = log_path.open("a", buffering=1)

    def on_part(event: PartEvent) -> None:
        part = event.part
        parts[part.msn, part.index] = event.data
        _write(folder / part.uri, event.data)
        for msn, uri in parse_playlist(event.playlist).complete.items():
            if msn not in segments_written and (msn, 0) in parts:  # whole segments too
                segments_written.add(msn)
                _write(folder / uri, b"".join(parts[k] for k in sorted(parts) if k[0] == msn))
        _write(target, event.playlist.replace("CAN-BLOCK-RELOAD=YES,", "").encode())
        written = time.time()
        end = part.first_sample + part.duration
        log.write(f"{part.msn} {part.index} {end:.6f} {event.listed:.6f} {written:.6f}\n")

    await follow_live(conn, playlist_path, until, on_part)
    log.close()


def feeder_main(
    origin: CauserieProcess, www: str, log: str, until: float, cpus: set[int] | None
) -> None:
    """Process entry: feed files until `until` (wall time)."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    uvloop.run(_feed(origin.port, origin.playlist_path, Path(www), Path(log), until))


@dataclass
class FeedLine:
    """One part as the feeder saw it: its end (audio clock), when listed, when written."""

    msn: int
    index: int
    end: float
    listed: float
    written: float


def read_feed_log(path: Path) -> list[FeedLine]:
    lines = []
    for text in path.read_text().splitlines():
        msn, index, end, listed, written = text.split()
        lines.append(FeedLine(int(msn), int(index), float(end), float(listed), float(written)))
    return lines


# ---- nginx ----------------------------------------------------------------------------------

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
worker_rlimit_nofile 20000;
events {{ worker_connections 16000; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body_temp;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
    types {{ application/vnd.apple.mpegurl m3u8; audio/mp4 m4s mp4; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server {{
        listen {host}:{port} backlog=4096;
        root {www};
        location ~ \\.m3u8$ {{ add_header Cache-Control "no-cache"; }}
    }}
}}
"""


@contextlib.contextmanager
def run_nginx(
    folder: Path, www: Path, cpus: set[int] | None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """nginx with 1 worker serving `www` on a free port, without root paths."""
    port = free_port()
    text = NGINX_CONF.format(dir=folder, www=www, host=HOST, port=port)
    with harness_nginx(folder, text, preexec=pin(cpus)) as process:
        yield process, port


# ---- nginx's throughput for the same request mix, with wrk ---------------------------------

WRK_SCRIPT = """\
local paths = {{"{playlist}", "{playlist}", "{part}"}}
local n = 0
request = function()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end
"""


def wrk_throughput(
    port: int, playlist_path: str, www: Path, seconds: float, cpus: set[int] | None, pids: list[int]
) -> dict[str, float]:
    """Requests/s nginx serves for the polling mix (2 playlists : 1 part), as fast as it can.

    wrk (C, one thread, 200 connections) on the load generator's CPUs: the rate a faster client
    than ours reaches, and the CPU it costs nginx, for the reference's figure per core.
    """
    text = (www / playlist_path.lstrip("/")).read_text()
    part = parse_playlist(text).parts[-1].uri
    script = www.parent / "mix.lua"
    script.write_text(
        WRK_SCRIPT.format(playlist=playlist_path, part=directory_of(playlist_path) + part)
    )
    cpu_start = sum(cpu_seconds(pid) for pid in pids)
    command = ["wrk", "-t1", "-c200", f"-d{seconds:.0f}s", "-s", str(script)]
    out = subprocess.run(
        [*command, f"http://{HOST}:{port}/"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        preexec_fn=pin(cpus),
    ).stdout
    cpu = (sum(cpu_seconds(pid) for pid in pids) - cpu_start) / seconds
    rate = next(float(line.split()[1]) for line in out.splitlines() if "Requests/sec" in line)
    non_2xx = sum(int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line)
    return {"requests_per_s": rate, "server_cpu": cpu, "non_2xx": non_2xx}


# ---- load generator -------------------------------------------------------------------------


@dataclass
class Timing:
    """What the listeners of one level do, and when."""

    mode: str  # "blocking" (causerie) or "polling" (nginx)
    port: int
    playlist_path: str
    start: float  # wall time the first listener connects
    ramp: float  # listeners connect evenly over this many seconds
    window_start: float
    window_end: float
    stop: float
    parts_per_segment: int
    first_seq: int  # the parts judged: seq = msn * parts_per_segment + index
    last_seq: int
    poll_interval: float


@dataclass
class Tally:
    """Counts of one load-generator process over the window."""

    requests: int = 0
    errors: int = 0
    cpu_seconds: float = 0.0
    wait_seconds: float = 0.0


class Listener:
    """One simulated hls.js listener on one keep-alive connection."""

    def __init__(self, timing: Timing, tally: Tally) -> None:
        self.t = timing
        self.tally = tally
        self.conn = Connection(HOST, timing.port)
        self.received: dict[int, float] = {}  # part seq -> its bytes were all in
        self.listed: dict[int, float] = {}  # part seq -> a blocking reload listing it returned
        self.path = timing.playlist_path.encode()
        self.base = directory_of(timing.playlist_path).encode()
        self.run = b""
        self.msn = 0
        self.index = 0

    async def get(self, path: bytes) -> tuple[int, bytes]:
        status, body = await self.conn.get(path)
        if self.t.window_start <= time.time() < self.t.window_end:
            self.tally.requests += 1
        if status != 200:
            self.tally.errors += 1
        return status, body

    def seq(self, msn: int, index: int) -> int:
        return msn * self.t.parts_per_segment + index

    async def sync(self) -> None:
        """Start from the newest part of a plain playlist."""
        _status, body = await self.get(self.path)
        newest = parse_playlist(body.decode()).parts[-1]
        self.run = newest.uri.rsplit("/", 1)[0].encode()
        self.msn, self.index = newest.msn, newest.index

    def next_listed(self, body: bytes) -> tuple[int, int] | None:
        """The part after the last one fetched, if the playlist lists it (a cheap search).

        Only EXT-X-PART tags count: the EXT-X-PRELOAD-HINT at the end names a part that does
        not exist yet.
        """
        end = body.rfind(b"#EXT-X-PRELOAD-HINT")
        end = len(body) if end < 0 else end
        if body.find(b"/%d.%d.m4s" % (self.msn, self.index + 1), 0, end) >= 0:
            return self.msn, self.index + 1
        if body.find(b"/%d.0.m4s" % (self.msn + 1), 0, end) >= 0:
            return self.msn + 1, 0
        return None

    async def fetch(self, msn: int, index: int) -> bool:
        """GET a part; True if it came."""
        status, _data = await self.get(self.base + b"%s/%d.%d.m4s" % (self.run, msn, index))
        if status != 200:
            return False
        self.received[self.seq(msn, index)] = time.time()
        self.msn, self.index = msn, index
        return True

    async def step_blocking(self) -> None:
        query = b"%s?_HLS_msn=%d&_HLS_part=%d" % (self.path, self.msn, self.index + 1)
        status, body = await self.get(query)
        if status != 200:
            await asyncio.sleep(0.05)
            return
        listed = self.next_listed(body)
        if listed is None:
            await self.sync()  # fell out of the playlist window
            return
        self.listed[self.seq(*listed)] = time.time()
        await self.fetch(*listed)

    async def step_polling(self) -> None:
        _status, body = await self.get(self.path)
        listed = self.next_listed(body)
        while listed is not None and await self.fetch(*listed):  # every part not got yet
            listed = self.next_listed(body)

    async def follow(self, delay: float) -> None:
        await asyncio.sleep(delay)
        t = self.t
        next_poll = time.time() + random.uniform(0, t.poll_interval)
        while time.time() < t.stop:
            try:
                if not self.run:
                    await self.sync()
                elif t.mode == "blocking":
                    await self.step_blocking()
                else:
                    await asyncio.sleep(max(0.0, next_poll - time.time()))
                    next_poll = max(next_poll + t.poll_interval, time.time())
                    await self.step_polling()
            except (HttpError, TimeoutError, OSError, IndexError, ValueError):
                self.tally.errors += 1
                await asyncio.sleep(0.1)
        self.conn.close()


async def _generate(
    timing: Timing, count: int, offset: int, workers: int
) -> tuple[Tally, np.ndarray, np.ndarray]:
    tally = Tally()
    listeners = [Listener(timing, tally) for _ in range(count)]
    now = time.time()
    spread = max(count * workers, 1)
    tasks = []
    for n, listener in enumerate(listeners):
        # The listeners of all processes connect evenly over the ramp, interleaved.
        when = timing.start + timing.ramp * (n * workers + offset) / spread
        tasks.append(asyncio.create_task(listener.follow(max(0.0, when - now))))
    await asyncio.sleep(max(0.0, timing.window_start - time.time()))
    cpu_start, wait_start = _own_cpu(), run_queue_seconds(os.getpid())
    await asyncio.sleep(max(0.0, timing.window_end - time.time()))
    tally.cpu_seconds = _own_cpu() - cpu_start
    tally.wait_seconds = run_queue_seconds(os.getpid()) - wait_start
    await asyncio.gather(*tasks)
    seqs = range(timing.first_seq, timing.last_seq + 1)
    received = np.array([[x.received.get(s, np.nan) for s in seqs] for x in listeners])
    first_listed = np.array([min(x.listed.get(s, np.inf) for x in listeners) for s in seqs])
    return tally, received.reshape(count, len(seqs)), first_listed


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_main(
    timing: Timing, count: int, offset: int, workers: int, cpus: set[int] | None, out: Pipe
) -> None:
    """Process entry: run `count` listeners; send back the tally and the receive times."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_fd_limit()
    gc.disable()  # a bounded run: no collector pauses in the middle of a burst
    tally, received, first_listed = uvloop.run(_generate(timing, count, offset, workers))
    out.send((asdict(tally), received, first_listed))
    out.close()


# ---- one level ------------------------------------------------------------------------------


@dataclass
class Baseline:
    """The part clock and the no-load part-ready lags, from the feeder's first parts."""

    anchor_seq: int
    anchor_end: float  # wall time of the end of part anchor_seq (audio clock)
    causerie_lag: float  # median: a lone blocking reload returns, after the part's end
    nginx_lag: float  # median: the feeder has written the playlist, after the part's end
    parts_per_segment: int
    part_duration: float

    def end_of(self, seq: int | np.ndarray) -> Any:
        return self.anchor_end + (seq - self.anchor_seq) * self.part_duration


def _anchor(lines: list[FeedLine], per_segment: int, duration: float) -> tuple[int, float]:
    """A part and its end, from many: PROGRAM-DATE-TIME has millisecond precision."""
    seq0 = lines[0].msn * per_segment + lines[0].index
    end0 = median([x.end - (x.msn * per_segment + x.index - seq0) * duration for x in lines])
    return seq0, end0


def settle(feed_log: Path, base: Baseline, timeout: float = 20.0) -> Baseline:
    """Wait until the origin is back on time (after a level that overloaded it), re-anchor.

    An origin that fell more than a second behind skips audio, which moves the wall time of
    every later part: the part clock is taken again from the newest parts.
    """
    deadline = time.time() + timeout
    while True:
        lines = read_feed_log(feed_log)
        newest = lines[-1]
        current = time.time() - newest.written < 2 * base.part_duration
        if current and newest.listed - newest.end < base.causerie_lag + 0.1:
            break
        if time.time() > deadline:
            print("  (the origin is still late; going on)", flush=True)
            break
        time.sleep(0.2)
    seq, end = _anchor(lines[-10:], base.parts_per_segment, base.part_duration)
    return replace(base, anchor_seq=seq, anchor_end=end)


def measure_baseline(feed_log: Path, playlist: str) -> Baseline:
    parsed = parse_playlist(playlist)
    per_segment = max(p.index for p in parsed.parts) + 1
    duration = round(parsed.parts[0].duration * SAMPLE_RATE) / SAMPLE_RATE  # listed to 10 µs
    lines = read_feed_log(feed_log)[2:]  # the first ones may have been listed before we came
    if len(lines) < 5:
        raise RuntimeError("the feeder logged too few parts")
    seq0, end0 = _anchor(lines, per_segment, duration)
    return Baseline(
        anchor_seq=seq0,
        anchor_end=end0,
        causerie_lag=median([x.listed - x.end for x in lines]),
        nginx_lag=median([x.written - x.end for x in lines]),
        parts_per_segment=per_segment,
        part_duration=duration,
    )


@dataclass
class Level:
    """The outcome of one try of one level for one server."""

    server: str
    listeners: int
    attempt: int
    on_time: float  # received <= nominal ready time + part duration
    on_time_served: float  # the same against the time the part really appeared
    parts: int  # listener-parts judged
    missing: int
    delay_p50: float  # received - nominal ready time, seconds
    delay_p99: float
    ready_late_p99: float  # the time the part really appeared - its nominal ready time
    requests_per_s: float
    server_cpu: float  # fraction of one core
    server_wait: float  # fraction of the window the server was runnable but waited for a CPU
    client_cpu: float  # fraction of one core, all load-generator processes together
    client_cpu_max: float  # the busiest load-generator process
    client_wait: float
    errors: int

    @property
    def kept(self) -> bool:
        return self.on_time >= ON_TIME_GOAL

    @property
    def disturbed(self) -> bool:
        """Whether other processes took the CPU away long enough to explain a failure."""
        return max(self.server_wait, self.client_wait) > DISTURBED

    @property
    def client_bound(self) -> bool:
        """Whether the load generator, not the server, was the limit."""
        return self.client_cpu_max >= CLIENT_BOUND


def _p(values: np.ndarray, q: float) -> float:
    """A percentile that is infinite (not NaN) when it falls among missing parts."""
    values = np.where(np.isnan(values), np.inf, values)
    return float(np.percentile(values, q, method="higher")) if values.size else math.nan


def run_level(
    server: str,
    timing: Timing,
    listeners: int,
    attempt: int,
    args: argparse.Namespace,
    server_pids: list[int],
    feed_log: Path,
    base: Baseline,
) -> Level:
    """Run `listeners` simulated listeners through the window and judge their parts."""
    ctx = mp.get_context("fork")
    workers = min(args.workers, listeners)
    procs, pipes = [], []
    for w in range(workers):
        count = listeners // workers + (1 if w < listeners % workers else 0)
        receiver, sender = ctx.Pipe(duplex=False)
        cpus = parse_cpus(args.client_cpus)
        proc = ctx.Process(target=worker_main, args=(timing, count, w, workers, cpus, sender))
        proc.start()
        sender.close()
        procs.append(proc)
        pipes.append(receiver)
    time.sleep(max(0.0, timing.window_start - time.time()))
    cpu_start = sum(cpu_seconds(pid) for pid in server_pids)
    wait_start = sum(run_queue_seconds(pid) for pid in server_pids)
    time.sleep(max(0.0, timing.window_end - time.time()))
    server_cpu = sum(cpu_seconds(pid) for pid in server_pids) - cpu_start
    server_wait = sum(run_queue_seconds(pid) for pid in server_pids) - wait_start
    reports = []
    for proc, pipe in zip(procs, pipes, strict=True):
        if pipe.poll(max(0.0, timing.stop - time.time()) + 60):
            reports.append(pipe.recv())
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    if len(reports) < workers:
        raise RuntimeError("a load-generator process did not report")
    tallies = [tally for tally, _, _ in reports]
    received = np.vstack([r for _, r, _ in reports])
    seqs = np.arange(timing.first_seq, timing.last_seq + 1)
    feed = {x.msn * base.parts_per_segment + x.index: x for x in read_feed_log(feed_log)}
    # Each part's end on the audio clock, from its PROGRAM-DATE-TIME as the feeder saw it.
    ends = np.array([feed[s].end if s in feed else base.end_of(s) for s in seqs])
    if timing.mode == "blocking":
        lag = base.causerie_lag
        first_listed = np.min(np.vstack([f for _, _, f in reports]), axis=0)
        fed = np.array([feed[s].listed if s in feed else np.inf for s in seqs])
        appeared = np.minimum(first_listed, fed)
    else:
        lag = base.nginx_lag
        appeared = np.array([feed[s].written if s in feed else np.inf for s in seqs])
    due = ends + lag  # nominal ready time: the part's end + the origin's no-load lag
    delays = received - due
    served = received - np.where(np.isinf(appeared), due, appeared)
    window = timing.window_end - timing.window_start
    return Level(
        server=server,
        listeners=listeners,
        attempt=attempt,
        on_time=float(np.sum(delays <= base.part_duration)) / delays.size,
        on_time_served=float(np.sum(served <= base.part_duration)) / delays.size,
        parts=int(delays.size),
        missing=int(np.sum(np.isnan(received))),
        delay_p50=_p(delays, 50),
        delay_p99=_p(delays, 99),
        ready_late_p99=_p(appeared - due, 99),
        requests_per_s=sum(t["requests"] for t in tallies) / window,
        server_cpu=server_cpu / window,
        server_wait=server_wait / window,
        client_cpu=sum(t["cpu_seconds"] for t in tallies) / window,
        client_cpu_max=max(t["cpu_seconds"] for t in tallies) / window,
        client_wait=sum(t["wait_seconds"] for t in tallies) / window,
        errors=sum(t["errors"] for t in tallies),
    )


def ramp_seconds(listeners: int) -> float:
    """Listeners connect evenly over this many seconds."""
    return max(0.5, listeners / 2000)


def make_timing(
    mode: str,
    port: int,
    path: str,
    listeners: int,
    lag: float,
    poll: float,
    base: Baseline,
    args: argparse.Namespace,
) -> Timing:
    """When a level of `listeners` connects, is judged, stops; which parts are judged."""
    start = time.time() + 0.3
    ramp = ramp_seconds(listeners)
    window_start = start + ramp + args.warmup
    window_end = window_start + args.window

    def seq_ready_at(when: float) -> int:  # the first part whose nominal ready time >= when
        return base.anchor_seq + math.ceil((when - lag - base.anchor_end) / base.part_duration)

    return Timing(
        mode=mode,
        port=port,
        playlist_path=path,
        start=start,
        ramp=ramp,
        window_start=window_start,
        window_end=window_end,
        stop=window_end + base.part_duration + 1.5,  # a part made late still counts
        parts_per_segment=base.parts_per_segment,
        first_seq=seq_ready_at(window_start),
        last_seq=seq_ready_at(window_end) - 1,
        poll_interval=poll,
    )


# ---- the whole run --------------------------------------------------------------------------


def parse_cpus(text: str) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


def step_up(
    server: str,
    levels: list[int],
    args: argparse.Namespace,
    deadline: float,
    judge: Callable[[str, int, int], Level],
) -> list[Level]:
    """Run levels in order until one is not kept on time, or the load generator is saturated.

    A failed try is tried again (up to `--tries` in all) if it was disturbed: on a shared
    machine, one stall of another process's making fails a 99 % criterion.
    """
    results: list[Level] = []
    for listeners in levels:
        for attempt in range(1, args.tries + 1):
            needed = ramp_seconds(listeners) + args.warmup + args.window + 3
            if time.time() + needed > deadline:
                print(f"  {server}: stopped before {listeners}: --max-seconds reached", flush=True)
                return results
            level = judge(server, listeners, attempt)
            results.append(level)
            _progress(level)
            if level.kept or not level.disturbed or level.client_bound:
                break
        if not results[-1].kept or results[-1].client_bound:
            break
    return results


def _progress(level: Level) -> None:
    print(
        f"  {level.server:8} {level.listeners:5} listeners, try {level.attempt}: "
        f"on time {level.on_time:7.2%} (served {level.on_time_served:7.2%}), "
        f"p99 {level.delay_p99 * 1000:5.0f} ms after ready, "
        f"{level.requests_per_s:6.0f} req/s, server CPU {level.server_cpu:4.0%} "
        f"(+{level.server_wait:3.0%} waiting for a CPU), load generator CPU "
        f"{level.client_cpu:4.0%} (+{level.client_wait:3.0%})",
        flush=True,
    )


def best(levels: list[Level]) -> Level | None:
    """The try of the largest level kept on time."""
    kept = [level for level in levels if level.kept]
    return max(kept, key=lambda level: level.listeners) if kept else None


def nginx_levels(text: str, causerie_best: Level | None, first: int) -> list[int]:
    """The reference's levels: as given, or from causerie's largest kept level, doubling."""
    if text:
        return [int(n) for n in text.split(",")]
    level = max(causerie_best.listeners if causerie_best else first, 200)
    steps = []
    while level <= MAX_LISTENERS:
        steps.append(level)
        level *= 2
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default=DEFAULT_LEVELS, help="causerie's listener counts")
    parser.add_argument(
        "--nginx-levels",
        default="",
        help="nginx's listener counts (default: from causerie's largest kept level, doubling)",
    )
    parser.add_argument("--window", type=float, default=15.0, help="seconds judged per level")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds after the ramp")
    parser.add_argument(
        "--tries", type=int, default=3, help="tries of a level whose failures were disturbed"
    )
    parser.add_argument("--workers", type=int, default=1, help="load-generator processes")
    parser.add_argument("--server-cpus", default="0", help="CPUs of the servers ('' = any)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of the load generator")
    parser.add_argument("--poll-ms", type=float, default=0.0, help="nginx poll interval")
    parser.add_argument("--servers", default="causerie,nginx")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness for everything this starts (negative: ahead of other people's processes;"
        " needs root)",
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="experiment: run causerie's CLI under uvloop (it runs asyncio's own loop today)",
    )
    parser.add_argument(
        "--wrk-seconds", type=float, default=8.0, help="nginx's wrk throughput run (0 = none)"
    )
    parser.add_argument("--max-seconds", type=float, default=210, help="bound on the whole run")
    args = parser.parse_args()

    started = time.time()
    deadline = started + args.max_seconds
    levels = [int(n) for n in args.levels.split(",")]
    server_cpus = parse_cpus(args.server_cpus)
    client_cpus = parse_cpus(args.client_cpus)
    servers = args.servers.split(",")
    raise_fd_limit()
    if args.nice:
        os.nice(args.nice)  # inherited by every process started from here
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    results: list[Level] = []
    wrk: dict[str, float] | None = None
    with (
        tempfile.TemporaryDirectory(prefix="causerie-listeners-") as tmp,
        run_causerie(server_cpus, launcher=UVLOOP_LAUNCHER if args.uvloop else None) as origin,
    ):
        folder = Path(tmp)
        folder.chmod(0o755)  # nginx's worker runs as another user when started as root
        www = folder / "www"
        feed_log = folder / "feed.log"
        feed_log.touch()
        feeder = mp.get_context("fork").Process(
            target=feeder_main, args=(origin, str(www), str(feed_log), deadline + 30, server_cpus)
        )
        feeder.start()
        try:
            with run_nginx(folder, www, server_cpus) as (nginx, nginx_port):
                time.sleep(BASELINE_SECONDS)
                playlist = httpx.get(origin.url + origin.playlist_path).text
                base = measure_baseline(feed_log, playlist)
                poll = args.poll_ms / 1000 or base.part_duration / 2
                print(
                    f"part {base.part_duration * 1000:.1f} ms; no-load part-ready lag after its "
                    f"end: causerie {base.causerie_lag * 1000:.1f} ms, nginx's files "
                    f"{base.nginx_lag * 1000:.1f} ms; nginx listeners poll every "
                    f"{poll * 1000:.0f} ms",
                    flush=True,
                )
                pids = {"causerie": [origin.pid], "nginx": [nginx.pid, *children(nginx.pid)]}
                print(
                    f"causerie: pid {origin.pid}, port {origin.port}; nginx: pids "
                    f"{pids['nginx']}, port {nginx_port}",
                    flush=True,
                )

                def judge(server: str, listeners: int, attempt: int) -> Level:
                    now = settle(feed_log, base)
                    blocking = server == "causerie"
                    timing = make_timing(
                        "blocking" if blocking else "polling",
                        origin.port if blocking else nginx_port,
                        origin.playlist_path,
                        listeners,
                        base.causerie_lag if blocking else base.nginx_lag,
                        poll,
                        now,
                        args,
                    )
                    return run_level(
                        server, timing, listeners, attempt, args, pids[server], feed_log, now
                    )

                if "causerie" in servers:
                    results += step_up("causerie", levels, args, deadline, judge)
                if "nginx" in servers:
                    steps = nginx_levels(args.nginx_levels, best(results), levels[0])
                    results += step_up("nginx", steps, args, deadline, judge)
                if "nginx" in servers and args.wrk_seconds > 0:
                    wrk = wrk_throughput(
                        nginx_port,
                        origin.playlist_path,
                        www,
                        args.wrk_seconds,
                        client_cpus,
                        pids["nginx"],
                    )
                    print(
                        f"  nginx with wrk, same mix: {wrk['requests_per_s']:.0f} req/s at "
                        f"{wrk['server_cpu']:.0%} of a core",
                        flush=True,
                    )
        finally:
            feeder.terminate()
            feeder.join(5)
    report(results, args, base, poll, wrk, time.time() - started)


def summarize(levels: list[Level]) -> dict[str, Any]:
    """The largest level kept, what it cost, and whether the load generator was the limit."""
    top = best(levels)
    last = levels[-1] if levels else None
    return {
        "kept_listeners": top.listeners if top else 0,
        "requests_per_s": top.requests_per_s if top else None,
        "server_cpu": top.server_cpu if top else None,
        "server_wait": top.server_wait if top else None,
        "listeners_per_core_by_cpu": top.listeners / top.server_cpu
        if top and top.server_cpu > 0
        else None,
        "first_failed_level": last.listeners if last and not last.kept else None,
        "client_bound": bool(last and last.client_bound),
        "tries_failed": len([level for level in levels if not level.kept]),
    }


def _verdict(level: Level) -> str:
    if level.kept:
        return "yes"
    if level.client_bound:
        return "no (loadgen)"
    return "no (disturbed)" if level.disturbed else "no"


def report(
    results: list[Level],
    args: argparse.Namespace,
    base: Baseline,
    poll: float,
    wrk: dict[str, float] | None,
    took: float,
) -> None:
    print()
    print_table(
        ["server", "listeners", "try", "on time %", "(served %)", "p50 ms", "p99 ms",
         "ready late p99 ms", "req/s", "server CPU %", "+wait %", "loadgen CPU %", "+wait %",
         "kept"],
        [
            [
                r.server,
                r.listeners,
                r.attempt,
                f"{r.on_time * 100:.2f}",
                f"({r.on_time_served * 100:.2f})",
                f"{r.delay_p50 * 1000:.0f}",
                f"{r.delay_p99 * 1000:.0f}",
                f"{r.ready_late_p99 * 1000:.0f}",
                f"{r.requests_per_s:.0f}",
                f"{r.server_cpu * 100:.0f}",
                f"{r.server_wait * 100:.0f}",
                f"{r.client_cpu * 100:.0f}",
                f"{r.client_wait * 100:.0f}",
                _verdict(r),
            ]
            for r in results
        ],
    )  # fmt: skip
    summary = {
        server: summarize([r for r in results if r.server == server])
        for server in ("causerie", "nginx")
    }
    print()
    for server, s in summary.items():
        who = "causerie (1 process)" if server == "causerie" else "nginx (1 worker)"
        if s["requests_per_s"] is None:
            print(f"{who}: no level kept on time")
            continue
        at_least = ""
        if s["client_bound"]:
            at_least = "≥ "
            why = f"; our load generator saturated at {s['first_failed_level'] or 'the last'}"
        elif s["first_failed_level"] is None:
            at_least = "≥ "
            why = "; never failed"
        else:
            why = f"; failed at {s['first_failed_level']}"
        print(
            f"{who}: {at_least}{s['kept_listeners']} listeners kept on time{why}; "
            f"{s['requests_per_s']:.0f} req/s at {s['server_cpu']:.0%} of a core "
            f"→ ≈ {s['listeners_per_core_by_cpu']:.0f} listeners per core"
        )
    c, n = summary["causerie"], summary["nginx"]
    ratios: dict[str, float | None] = {"kept": None, "per_core_by_cpu": None, "per_core_wrk": None}
    if c["kept_listeners"] and n["kept_listeners"]:
        ratios["kept"] = c["kept_listeners"] / n["kept_listeners"]
        ratios["per_core_by_cpu"] = c["listeners_per_core_by_cpu"] / n["listeners_per_core_by_cpu"]
    if wrk:
        per_listener = 1 / poll + 1 / base.part_duration  # requests/s of one polling listener
        worth = wrk["requests_per_s"] / per_listener
        wrk |= {"listeners_worth": worth, "per_core": worth / max(wrk["server_cpu"], 1e-9)}
        print(
            f"nginx with wrk (a C client) on the same request mix: {wrk['requests_per_s']:.0f} "
            f"req/s at {wrk['server_cpu']:.0%} of a core = {worth:.0f} polling listeners' worth "
            f"→ ≈ {wrk['per_core']:.0f} per core"
        )
        if c["listeners_per_core_by_cpu"]:
            ratios["per_core_wrk"] = c["listeners_per_core_by_cpu"] / wrk["per_core"]
    shown = [
        f"{label} {value:.2f}"
        for label, value in (
            ("listeners kept on time", ratios["kept"]),
            ("per core by server CPU", ratios["per_core_by_cpu"]),
            ("per core vs nginx under wrk", ratios["per_core_wrk"]),
        )
        if value is not None
    ]
    if shown:
        print("causerie / nginx: " + "; ".join(shown))
    if n["client_bound"] or n["first_failed_level"] is None:
        print(
            "  (nginx's on-time figure is a lower bound, so is the first ratio's denominator: "
            "the per-core ratios are the telling ones)"
        )
    cores = (
        f"causerie, nginx and the feeder on CPU(s) {args.server_cpus or 'any'}; "
        f"{args.workers} load-generator process(es), wrk and the driver on CPU(s) "
        f"{args.client_cpus or 'any'}; other people's processes anywhere (see +wait)"
        + (f"; ours at nice {args.nice}" if args.nice else "")
    )
    print(f"cores: {cores}")
    print(
        f"clients: causerie with blocking reload; nginx (cannot block) polled every "
        f"{poll * 1000:.0f} ms, so it serves ~{(1 + base.part_duration / poll):.1f}x more "
        "requests per part"
    )
    result = {
        "summary": summary,
        "ratios": ratios,
        "nginx_wrk": wrk,
        "levels": [asdict(r) | {"kept": r.kept} for r in results],
        "baseline": asdict(base),
        "nginx_poll_interval_s": poll,
        "cores": cores,
        "seconds": took,
        "command": command_line("listeners"),
    }
    path = write_result("listeners", result)
    print(f"\nwrote {path.relative_to(path.parents[2])} ({took:.0f} s)")
    print(f"reproduce: {result['command']}")


if __name__ == "__main__":
    main()
