"""How many simulated LL-HLS listeners one causerie process keeps on time, next to nginx.

A simulated listener does what hls.js does, over one keep-alive HTTP/1.1 connection:

- against causerie (blocking reload): GET the playlist with _HLS_msn/_HLS_part for the next
  part (the origin answers once it exists), then GET the part;
- against nginx (the reference; it cannot block): re-request the plain playlist every
  `--poll-ms` (default PART-TARGET / 2, hls.js's reload interval for an unchanged playlist)
  until the next part is listed, then GET the part.

The nginx reference serves the same bytes from disk: a feeder process follows the causerie
origin and writes each part, then the playlist (without CAN-BLOCK-RELOAD), as files.

A part is on time if it was received before the next part is due: its ready time + one part
duration (213 ms). Its ready time is the wall time of its last sample (from PROGRAM-DATE-TIME)
plus the origin's part-ready lag measured without load at the start of the run (for causerie:
when a lone blocking reload returns; for nginx: when the feeder has written the playlist). So a
media pipeline or feeder made late by the load counts against the server, as listeners hear it.
A level is kept on time if >= 99 % of the parts due in the window were on time.

Cores: the servers (causerie, nginx, the feeder) are pinned to --server-cpus, the load
generator processes (and this one) to --client-cpus. Step the listeners up, first for causerie,
then for nginx from causerie's largest level, until on-time drops below 99 %.

    .venv/bin/python -m bench.listeners [--levels 100,200,...] [--window 20] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing as mp
import os
import random
import resource
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import numpy as np
import uvloop

from bench._common import (
    HOST,
    Causerie,
    children,
    command_line,
    cpu_seconds,
    free_port,
    median,
    pin,
    print_table,
    raise_fd_limit,
    run_causerie,
    run_queue_seconds,
    stop_process,
    write_result,
)
from bench._hls import PartEvent, directory_of, follow_live, parse_playlist
from bench._http import Connection, HttpError

ON_TIME_GOAL = 0.99
DEFAULT_LEVELS = "100,200,400,800,1200,1600,2400,3200,4800,6400,9600"
BASELINE_SECONDS = 4.0

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
    folder.mkdir(parents=True, exist_ok=True)
    _status, body = await conn.get(playlist_path)
    map_uri = parse_playlist(body.decode()).map_uri
    _status, init = await conn.get(directory_of(playlist_path) + map_uri)
    (folder / map_uri).parent.mkdir(parents=True, exist_ok=True)
    _write(folder / map_uri, init)
    parts: dict[tuple[int, int], bytes] = {}
    written: set[int] = set()
    log = log_path.open("a", buffering=1)

    def on_part(event: PartEvent) -> None:
        part = event.part
        parts[part.msn, part.index] = event.data
        _write(folder / part.uri, event.data)
        playlist = parse_playlist(event.playlist)
        for msn, uri in playlist.complete.items():  # whole segments, for completeness
            if msn not in written and (msn, 0) in parts:
                written.add(msn)
                chunks = [parts[key] for key in sorted(parts) if key[0] == msn]
                _write(folder / uri, b"".join(chunks))
        _write(target, event.playlist.replace("CAN-BLOCK-RELOAD=YES,", "").encode())
        done = time.time()
        end = part.first_sample + part.duration
        log.write(f"{part.msn} {part.index} {end:.6f} {event.listed:.6f} {done:.6f}\n")

    await follow_live(conn, playlist_path, until, on_part)
    log.close()


def feeder_main(port: int, playlist_path: str, www: str, log_path: str, until: float) -> None:
    """Process entry: feed files until `until` (wall time)."""
    uvloop.run(_feed(port, playlist_path, Path(www), Path(log_path), until))


@dataclass
class FeedLine:
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
def run_nginx(folder: Path, www: Path, cpus: set[int] | None):
    """nginx with 1 worker serving `www` on a free port, without root paths."""
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, www=www, host=HOST, port=port))
    process = subprocess.Popen(
        ["nginx", "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pin(cpus),
    )
    try:
        deadline = time.monotonic() + 10
        while not children(process.pid):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(folder / 'error.log').read_text()}")
            time.sleep(0.05)
        yield process, port
    finally:
        stop_process(process)


# ---- load generator -------------------------------------------------------------------------


@dataclass
class Timing:
    """What the listeners of one level need to know to judge parts."""

    mode: str  # "blocking" (causerie) or "polling" (nginx)
    port: int
    playlist_path: str
    start: float  # wall time the first listener connects
    ramp: float  # listeners connect evenly over this many seconds
    window_start: float
    window_end: float
    stop: float
    part_duration: float
    parts_per_segment: int
    anchor_seq: int  # msn * parts_per_segment + index of a part whose end is anchor_end
    anchor_end: float
    ready_lag: float  # part ready time = its end + ready_lag
    poll_interval: float


@dataclass
class Tally:
    """Counts of one load-generator process."""

    listeners: int = 0
    expected: int = 0
    on_time: int = 0
    missing: int = 0
    requests: int = 0
    errors: int = 0
    cpu_seconds: float = 0.0
    delays: list[float] = field(default_factory=list)


class Listener:
    """One simulated hls.js listener on one keep-alive connection."""

    def __init__(self, timing: Timing, tally: Tally) -> None:
        self.t = timing
        self.tally = tally
        self.conn = Connection(HOST, timing.port)
        self.received: dict[int, float] = {}
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

    async def sync(self) -> None:
        """Start from the newest part of a plain playlist."""
        _status, body = await self.get(self.path)
        newest = parse_playlist(body.decode()).parts[-1]
        self.run = newest.uri.rsplit("/", 1)[0].encode()
        self.msn, self.index = newest.msn, newest.index

    def next_listed(self, body: bytes) -> tuple[int, int] | None:
        """The part after the last one fetched, if the playlist lists it (a cheap search)."""
        if b"/%d.%d.m4s" % (self.msn, self.index + 1) in body:
            return self.msn, self.index + 1
        if b"/%d.0.m4s" % (self.msn + 1) in body:
            return self.msn + 1, 0
        return None

    async def fetch(self, msn: int, index: int) -> None:
        status, _data = await self.get(self.base + b"%s/%d.%d.m4s" % (self.run, msn, index))
        if status == 200:
            self.received[msn * self.t.parts_per_segment + index] = time.time()
        self.msn, self.index = msn, index

    async def step_blocking(self) -> None:
        query = b"%s?_HLS_msn=%d&_HLS_part=%d" % (self.path, self.msn, self.index + 1)
        status, body = await self.get(query)
        if status != 200:
            await asyncio.sleep(0.05)
            return
        listed = self.next_listed(body)
        if listed is None:
            await self.sync()  # fell out of the window
        else:
            await self.fetch(*listed)

    async def step_polling(self) -> None:
        _status, body = await self.get(self.path)
        listed = self.next_listed(body)
        while listed is not None:  # fetch every listed part we have not got yet
            await self.fetch(*listed)
            listed = self.next_listed(body)

    async def run_until_stop(self, delay: float) -> None:
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

    def judge(self, first_seq: int, last_seq: int) -> None:
        """Count the parts due in the window: on time, late or missing."""
        t = self.t
        tally = self.tally
        for seq in range(first_seq, last_seq + 1):
            ready = t.anchor_end + (seq - t.anchor_seq) * t.part_duration + t.ready_lag
            tally.expected += 1
            received = self.received.get(seq)
            if received is None:
                tally.missing += 1
                continue
            delay = received - ready
            tally.delays.append(delay)
            if delay <= t.part_duration:
                tally.on_time += 1


def window_parts(t: Timing) -> tuple[int, int]:
    """First and last part sequence numbers whose ready time falls in the window."""
    first_ready = t.anchor_end + t.ready_lag

    def seq_at(when: float) -> float:
        return t.anchor_seq + (when - first_ready) / t.part_duration

    first = int(np.ceil(seq_at(t.window_start)))
    last = int(np.ceil(seq_at(t.window_end))) - 1
    return first, last


async def _generate(timing: Timing, count: int, offset: int, workers: int) -> Tally:
    tally = Tally(listeners=count)
    listeners = [Listener(timing, tally) for _ in range(count)]
    now = time.time()
    tasks = []
    total = count * workers  # about: only used to spread the connections
    for n, listener in enumerate(listeners):
        # Listeners of all processes connect evenly over the ramp, interleaved.
        when = timing.start + timing.ramp * (n * workers + offset) / max(total, 1)
        tasks.append(asyncio.create_task(listener.run_until_stop(max(0.0, when - now))))
    await asyncio.sleep(max(0.0, timing.window_start - time.time()))
    cpu_start = _own_cpu()
    await asyncio.sleep(max(0.0, timing.window_end - time.time()))
    tally.cpu_seconds = _own_cpu() - cpu_start
    await asyncio.gather(*tasks)
    first, last = window_parts(timing)
    for listener in listeners:
        listener.judge(first, last)
    return tally


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_main(
    timing: Timing, count: int, offset: int, workers: int, cpus: set[int] | None, out: Pipe
) -> None:
    """Process entry: run `count` listeners, send back a Tally (delays as a numpy array)."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_fd_limit()
    gc.disable()  # a bounded run: no collector pauses in the middle of a burst
    tally = uvloop.run(_generate(timing, count, offset, workers))
    delays = np.asarray(tally.delays, dtype=np.float64)
    tally.delays = []
    out.send((asdict(tally), delays))
    out.close()


# ---- one level ------------------------------------------------------------------------------


@dataclass
class Level:
    """The outcome of one level for one server."""

    server: str
    listeners: int
    on_time: float
    expected: int
    missing: int
    delay_p50: float
    delay_p99: float
    requests_per_s: float
    server_cpu: float  # fraction of one core
    server_wait: float  # fraction of the time the server was runnable but waited for a CPU
    client_cpu: float  # fraction of one core, all load-generator processes together
    client_cpu_max: float  # the busiest load-generator process
    errors: int
    feeder_lag_p99: float | None = None

    @property
    def kept(self) -> bool:
        return self.on_time >= ON_TIME_GOAL


def run_level(
    server: str,
    timing: Timing,
    listeners: int,
    workers: int,
    client_cpus: set[int] | None,
    server_pids: list[int],
    feed_log: Path,
) -> Level:
    """Run `listeners` simulated listeners through the window; judge the parts."""
    ctx = mp.get_context("fork")
    procs = []
    pipes = []
    for w in range(workers):
        count = listeners // workers + (1 if w < listeners % workers else 0)
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=worker_main, args=(timing, count, w, workers, client_cpus, sender)
        )
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
    tallies: list[dict[str, Any]] = []
    delays: list[np.ndarray] = []
    for proc, pipe in zip(procs, pipes, strict=True):
        if pipe.poll(timing.stop - time.time() + 60):
            tally, worker_delays = pipe.recv()
            tallies.append(tally)
            delays.append(worker_delays)
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    if len(tallies) < workers:
        raise RuntimeError("a load-generator process did not report")
    window = timing.window_end - timing.window_start
    expected = sum(t["expected"] for t in tallies)
    all_delays = np.concatenate(delays) if delays else np.zeros(0)
    missing = sum(t["missing"] for t in tallies)
    # Missing parts count as infinitely late in the percentiles.
    padded = np.concatenate([all_delays, np.full(missing, np.inf)])
    feed = [
        line.written - line.end
        for line in read_feed_log(feed_log)
        if timing.window_start <= line.written < timing.window_end
    ]
    return Level(
        server=server,
        listeners=listeners,
        on_time=sum(t["on_time"] for t in tallies) / expected if expected else 0.0,
        expected=expected,
        missing=missing,
        delay_p50=float(np.percentile(padded, 50)) if padded.size else float("nan"),
        delay_p99=float(np.percentile(padded, 99)) if padded.size else float("nan"),
        requests_per_s=sum(t["requests"] for t in tallies) / window,
        server_cpu=server_cpu / window,
        server_wait=server_wait / window,
        client_cpu=sum(t["cpu_seconds"] for t in tallies) / window,
        client_cpu_max=max(t["cpu_seconds"] for t in tallies) / window,
        errors=sum(t["errors"] for t in tallies),
        feeder_lag_p99=float(np.percentile(feed, 99)) if feed else None,
    )


# ---- the whole run --------------------------------------------------------------------------


def parse_cpus(text: str) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


@dataclass
class Baseline:
    anchor_seq: int
    anchor_end: float
    causerie_lag: float
    nginx_lag: float
    parts_per_segment: int
    part_duration: float


def baseline(feed_log: Path, playlist: str) -> Baseline:
    """The part clock and the no-load ready lags, from the feeder's log."""
    parsed = parse_playlist(playlist)
    per_segment = max(p.index for p in parsed.parts) + 1
    duration = parsed.parts[0].duration
    lines = read_feed_log(feed_log)[2:]  # the first ones may have been listed before we came
    if len(lines) < 5:
        raise RuntimeError("the feeder logged too few parts")
    seq0 = lines[0].msn * per_segment + lines[0].index
    # PROGRAM-DATE-TIME has millisecond precision: the median of many is a better anchor.
    end0 = median([x.end - (x.msn * per_segment + x.index - seq0) * duration for x in lines])
    return Baseline(
        anchor_seq=seq0,
        anchor_end=end0,
        causerie_lag=median([x.listed - x.end for x in lines]),
        nginx_lag=median([x.written - x.end for x in lines]),
        parts_per_segment=per_segment,
        part_duration=duration,
    )


def step_up(
    server: str,
    levels: list[int],
    make_timing: Any,
    args: argparse.Namespace,
    pids: list[int],
    feed_log: Path,
    deadline: float,
) -> list[Level]:
    """Run levels in order until one is not kept on time (or time runs out)."""
    results = []
    for listeners in levels:
        needed = args.warmup + args.window + max(1.0, listeners / 1000) + 3
        if time.time() + needed > deadline:
            print(f"  {server}: stopping before {listeners}: --max-seconds reached", flush=True)
            break
        level = run_level(
            server,
            make_timing(listeners),
            listeners,
            args.workers,
            parse_cpus(args.client_cpus),
            pids,
            feed_log,
        )
        results.append(level)
        _progress(level)
        if not level.kept:
            break
    return results


def _progress(level: Level) -> None:
    print(
        f"  {level.server:8} {level.listeners:6} listeners: on time {level.on_time:7.2%}, "
        f"p99 delay {level.delay_p99 * 1000:7.1f} ms, {level.requests_per_s:7.0f} req/s, "
        f"server CPU {level.server_cpu:5.0%} (waited for a CPU {level.server_wait:4.0%}), "
        f"load generator CPU {level.client_cpu:5.0%}",
        flush=True,
    )


def best(levels: list[Level]) -> Level | None:
    """The largest level kept on time."""
    kept = [level for level in levels if level.kept]
    return max(kept, key=lambda level: level.listeners) if kept else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default=DEFAULT_LEVELS, help="listener counts, ascending")
    parser.add_argument("--window", type=float, default=20.0, help="seconds judged per level")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds after the ramp")
    parser.add_argument("--workers", type=int, default=1, help="load-generator processes")
    parser.add_argument("--server-cpus", default="0", help="CPUs of the servers ('' = any)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of the load generator")
    parser.add_argument("--poll-ms", type=float, default=0.0, help="nginx poll interval")
    parser.add_argument("--servers", default="causerie,nginx")
    parser.add_argument("--max-seconds", type=float, default=600, help="bound on the whole run")
    args = parser.parse_args()

    started = time.time()
    deadline = started + args.max_seconds
    levels = [int(n) for n in args.levels.split(",")]
    server_cpus = parse_cpus(args.server_cpus)
    client_cpus = parse_cpus(args.client_cpus)
    servers = args.servers.split(",")
    raise_fd_limit()
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    results: list[Level] = []
    with tempfile.TemporaryDirectory(prefix="causerie-listeners-") as tmp, run_causerie(
        server_cpus
    ) as origin:
        folder = Path(tmp)
        folder.chmod(0o755)  # nginx's worker runs as another user when started as root
        www = folder / "www"
        feed_log = folder / "feed.log"
        feed_log.touch()
        feeder = mp.get_context("fork").Process(
            target=_pinned_feeder,
            args=(origin, str(www), str(feed_log), deadline + 30, server_cpus),
        )
        feeder.start()
        try:
            with run_nginx(folder, www, server_cpus) as (nginx, nginx_port):
                time.sleep(BASELINE_SECONDS)
                import httpx

                playlist = httpx.get(origin.base_url + origin.playlist_path).text
                base = baseline(feed_log, playlist)
                poll = args.poll_ms / 1000 or base.part_duration / 2
                print(
                    f"part {base.part_duration * 1000:.1f} ms; no-load part-ready lag after the "
                    f"last sample: causerie {base.causerie_lag * 1000:.1f} ms, nginx files "
                    f"{base.nginx_lag * 1000:.1f} ms; nginx listeners poll every "
                    f"{poll * 1000:.0f} ms",
                    flush=True,
                )
                nginx_pids = [nginx.pid, *children(nginx.pid)]

                def timing_for(mode: str, port: int, lag: float) -> Any:
                    def make(listeners: int) -> Timing:
                        start = time.time() + 0.3
                        ramp = max(1.0, listeners / 1000)
                        window_start = start + ramp + args.warmup
                        return Timing(
                            mode=mode,
                            port=port,
                            playlist_path=origin.playlist_path,
                            start=start,
                            ramp=ramp,
                            window_start=window_start,
                            window_end=window_start + args.window,
                            stop=window_start + args.window + base.part_duration + 0.1,
                            part_duration=base.part_duration,
                            parts_per_segment=base.parts_per_segment,
                            anchor_seq=base.anchor_seq,
                            anchor_end=base.anchor_end,
                            ready_lag=lag,
                            poll_interval=poll,
                        )

                    return make

                if "causerie" in servers:
                    make = timing_for("blocking", origin.port, base.causerie_lag)
                    results += step_up(
                        "causerie", levels, make, args, [origin.pid], feed_log, deadline
                    )
                if "nginx" in servers:
                    # The reference starts from the largest level causerie kept.
                    top = best(results)
                    start_at = levels.index(top.listeners) if top else 0
                    make = timing_for("polling", nginx_port, base.nginx_lag)
                    results += step_up(
                        "nginx", levels[start_at:], make, args, nginx_pids, feed_log, deadline
                    )
        finally:
            feeder.terminate()
            feeder.join(5)
    report(results, args, base, poll, time.time() - started)


def _pinned_feeder(
    origin: Causerie, www: str, log: str, until: float, cpus: set[int] | None
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    feeder_main(origin.port, origin.playlist_path, www, log, until)


def report(
    results: list[Level], args: argparse.Namespace, base: Baseline, poll: float, took: float
) -> None:
    print()
    print_table(
        [
            "server",
            "listeners",
            "on time %",
            "p50 ms",
            "p99 ms",
            "req/s",
            "server CPU %",
            "loadgen CPU %",
            "kept",
        ],
        [
            [
                r.server,
                r.listeners,
                f"{r.on_time * 100:.2f}",
                f"{r.delay_p50 * 1000:.1f}",
                f"{r.delay_p99 * 1000:.1f}",
                f"{r.requests_per_s:.0f}",
                f"{r.server_cpu * 100:.0f}",
                f"{r.client_cpu * 100:.0f}",
                "yes" if r.kept else "no",
            ]
            for r in results
        ],
    )
    summary: dict[str, Any] = {}
    for server in ("causerie", "nginx"):
        ran = [r for r in results if r.server == server]
        top = best(ran)
        failed = [r for r in ran if not r.kept]
        summary[server] = {
            "kept_listeners": top.listeners if top else 0,
            "requests_per_s": top.requests_per_s if top else None,
            "server_cpu": top.server_cpu if top else None,
            "listeners_per_core_by_cpu": top.listeners / top.server_cpu
            if top and top.server_cpu > 0
            else None,
            "first_failed_level": failed[0].listeners if failed else None,
            "client_bound": bool(failed and failed[0].client_cpu_max >= 0.9),
        }
    c, n = summary["causerie"], summary["nginx"]
    ratio = c["kept_listeners"] / n["kept_listeners"] if n["kept_listeners"] else None
    print()
    for server, s in summary.items():
        if s["requests_per_s"] is None:
            print(f"{server}: no level kept on time")
            continue
        bound = ""
        if s["first_failed_level"] is None:
            bound = " (never failed: a lower bound)"
        elif s["client_bound"]:
            bound = " (the load generator was saturated when it failed: a lower bound)"
        print(
            f"{server}: {s['kept_listeners']} listeners kept on time{bound}; "
            f"{s['requests_per_s']:.0f} req/s at {s['server_cpu']:.0%} of a core "
            f"(≈ {s['listeners_per_core_by_cpu']:.0f} listeners per core by CPU)"
        )
    if ratio is not None:
        print(f"causerie / nginx (listeners kept on time, 1 process vs 1 worker): {ratio:.2f}")
    if c["listeners_per_core_by_cpu"] and n["listeners_per_core_by_cpu"]:
        by_cpu = c["listeners_per_core_by_cpu"] / n["listeners_per_core_by_cpu"]
        print(f"causerie / nginx (listeners per core, by server CPU): {by_cpu:.2f}")
    cores = (
        f"servers (causerie, nginx, feeder) on CPUs {args.server_cpus or 'any'}, "
        f"{args.workers} load-generator process(es) on CPUs {args.client_cpus or 'any'}"
    )
    print(
        f"cores: {cores}; nginx is polled every {poll * 1000:.0f} ms (it cannot block), "
        "causerie is asked with blocking reload"
    )
    result = {
        "summary": summary,
        "ratio_kept_listeners": ratio,
        "levels": [asdict(r) | {"kept": r.kept} for r in results],
        "baseline": asdict(base),
        "nginx_poll_interval_s": poll,
        "cores": cores,
        "seconds": took,
        "command": command_line("listeners"),
    }
    path = write_result("listeners", result)
    print(f"\nwrote {path.relative_to(path.parents[2])}")
    print(f"reproduce: {result['command']}")


if __name__ == "__main__":
    main()
