"""Origin requests with 1 k, 5 k and 10 k simulated listeners through two edges.

One `causerie demo` origin, two edges of one kind (`--kinds`; configured by
`causerie.edge.config` as `causerie edge-config` writes them) in front of it, listeners split
evenly over the two. Origin requests are counted at the origin (its /metrics, answers 200),
read before and after the `--window`.

**LL-DASH and the live events** (`--delivery dash`, the default; Varnish). The target: one
origin request per segment and one per window of events, per edge, whatever the audience.

- `--full` (200) **full listeners** are the listener page (bench/_dash.py): each segment asked
  for when its first chunk is due and read as it streams, and each 15 s window of events read
  while it is open, the next asked for when it closes;
- the other N - 200 are **stampede listeners**: on their own two keep-alive connections, they
  ask for every `--segment-stride`-th segment (4: one every 15.4 s, the same segments for all)
  the moment it is due, and for every window of events the moment the one before closes, as
  every real listener does; with HEAD, so that two cores can offer the bursts of 10 000: an
  edge looks a HEAD up as it does a GET (the cache, then the waiting list on the object being
  fetched: what decides whether a request reaches the origin) and sends the headers only.

Each edge thus gets, every 4 segments and every window, the burst N real listeners make. The
counters are read at moments at least 0.4 s from any expected origin request (a segment's
first chunk, a window's start), and the expected ones in between are counted from the
manifest and the window clock: origin requests per segment per edge and per window per edge,
flat at 1.00 if the edges collapse every burst. `--window` 32 s (8 segments, 2 windows).

**LL-HLS** (`--delivery hls`; Varnish and nginx). 10 000 real LL-HLS listeners make ~94 000
requests/s (a blocking playlist reload and a part every 213 ms each): more than this 2-core
machine can generate in Python *and* serve through two edges. What decides the origin's load is
not the listeners' request rate but how many requests for a *new* object (the blocking reload
that announces a part, then the part) reach an edge at once, and whether the edge collapses them
into one origin request. So the simulation keeps that number at full size and thins the rest:

- `--full` (200) **full listeners** follow every part exactly as hls.js does (the listener of
  `bench.edges`: `GET index.m3u8?_HLS_msn=M&_HLS_part=P` for the next part, then the part), so
  that every part is asked for, as with any real audience;
- the other N - 200 are **stampede listeners**: the same two requests, on their own keep-alive
  connection, but only for every `--stride`-th part (20: parts whose sequence number is a
  multiple of 20, the same parts for all of them). For those parts each edge receives N/2
  blocking reloads that wait for the part to exist, then N/2 GETs of the part at once: the
  full audience, arriving as it would. Between two such parts a stampede listener sleeps; it
  sends its next blocking reload about 150 ms before the part is due, when the part before
  it already exists (as hls.js asks for the next part right after getting the previous one),
  on the media clock (PROGRAM-DATE-TIME + the ~60 ms part-ready lag), so no drift builds up.

The edges thus see, every `--stride` parts (4.3 s), the same simultaneous burst of new-object
requests that N real listeners make for every part, and the origin sees whatever leaks through.
If the origin's requests/s stay flat from 1 k to 10 k, the edge collapsed the full burst; anything
that leaks (e.g. nginx's cache-lock counter wrapping past ~1 023 waiters) shows up as origin
requests growing with N. Also shown: the requests the edges served per second (the thinned
load), the stampede parts' delivery (part received - part ready at the origin, from a direct
blocking client), and CPU (origin, edges, load generators).

    .venv/bin/python -m bench.origin [--delivery dash|hls] [--kinds varnish[,nginx]]
        [--levels 1000,5000,10000] [--segment-stride 4] [--stride 20] [--full 200]
        [--window 32 (hls: 12)] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path

import httpx
import numpy as np
import uvloop
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge
from tests.harness.ports import HOST

from bench import _dash, edges
from bench._common import (
    command_line,
    cpu_seconds,
    load_average,
    print_table,
    raise_fd_limit,
    run_causerie,
    run_queue_seconds,
    write_result,
)
from bench._hls import parse_playlist
from bench._http import Connection, HttpError

PART = edges.PART_SECONDS
LEAD = 0.15  # a stampede listener asks for its part this long before it is ready
READY_LAG = 0.06  # a part is ready at the origin this long after its last sample (bench.latency)


@dataclass
class Plan:
    """What every listener process needs to know."""

    playlist_path: str
    parts_per_segment: int
    stride: int
    full: int
    timing: edges.Timing


class Stampede:
    """A listener that fetches only the parts whose sequence number is a multiple of `stride`,
    each with the blocking reload that announces it, like hls.js does for every part."""

    __slots__ = ("anchor", "base", "conn", "keys", "path", "plan", "run", "tally", "times")

    def __init__(self, port: int, plan: Plan, tally: edges.Tally) -> None:
        self.plan = plan
        self.tally = tally
        self.conn = Connection(HOST, port)
        self.path = plan.playlist_path.encode()
        self.base = self.path.rsplit(b"/", 1)[0] + b"/"
        self.run = b""
        self.keys: list[int] = []
        self.times: list[float] = []
        self.anchor = (0, 0.0)  # a part's sequence number, the wall time it was ready

    async def get(self, path: bytes) -> tuple[int, bytes]:
        status, body = await self.conn.get(path)
        timing = self.plan.timing
        if timing.window_start <= time.time() < timing.window_end:
            self.tally.requests += 1
        if status != 200:
            self.tally.errors += 1
        return status, body

    async def sync(self) -> int:
        """The sequence number of the newest part, from a plain playlist request; anchors the
        part clock on the media clock (PROGRAM-DATE-TIME), so that lateness never accumulates."""
        _status, body = await self.get(self.path)
        newest = parse_playlist(body.decode()).parts[-1]
        self.run = newest.uri.rsplit("/", 1)[0].encode()
        seq = newest.msn * self.plan.parts_per_segment + newest.index
        self.anchor = (seq, newest.first_sample + newest.duration + READY_LAG)
        return seq

    async def follow(self, delay: float) -> None:
        plan = self.plan
        pps, stride = plan.parts_per_segment, plan.stride
        await asyncio.sleep(delay)
        seq = -1
        while time.time() < plan.timing.stop:
            try:
                if seq < 0:
                    seq = await self.sync()
                target = (seq // stride + 1) * stride
                due = self.anchor[1] + (target - self.anchor[0]) * PART - LEAD
                await asyncio.sleep(max(0.0, due - time.time()))
                msn, index = divmod(target, pps)
                query = b"%s?_HLS_msn=%d&_HLS_part=%d" % (self.path, msn, index)
                status, body = await self.get(query)
                end = body.rfind(b"#EXT-X-PRELOAD-HINT")
                name = b"/%d.%d.m4s" % (msn, index)
                if status != 200 or body.find(name, 0, end if end >= 0 else len(body)) < 0:
                    self.tally.resyncs += 1
                    seq = -1
                    continue
                status, _data = await self.get(self.base + self.run + name)
                if status != 200:
                    seq = -1
                    continue
                seq = target
                self.keys.append(msn * edges.KEY_SHIFT + index)
                self.times.append(time.time())
            except (HttpError, TimeoutError, OSError, IndexError, ValueError):
                self.tally.errors += 1
                seq = -1
                await asyncio.sleep(0.1)
        self.conn.close()


async def _generate(
    plan: Plan, ports: list[int], count: int, offset: int, total: int
) -> tuple[edges.Tally, np.ndarray]:
    timing = plan.timing
    tally = edges.Tally()
    stampedes: list[Stampede] = []
    tasks = []
    now = time.time()
    for n in range(count):
        global_n = offset + n
        port = ports[global_n % len(ports)]
        when = timing.start + timing.ramp * global_n / max(total, 1)
        delay = max(0.0, when - now)
        if global_n < plan.full:
            tasks.append(asyncio.create_task(edges.Listener(port, timing, tally).follow(delay)))
        else:
            listener = Stampede(port, plan, tally)
            stampedes.append(listener)
            tasks.append(asyncio.create_task(listener.follow(delay)))
    await asyncio.sleep(max(0.0, timing.window_start - time.time()))
    cpu, wait = time.process_time(), run_queue_seconds(os.getpid())
    await asyncio.sleep(max(0.0, timing.window_end - time.time()))
    tally.cpu_seconds = time.process_time() - cpu
    tally.wait_seconds = run_queue_seconds(os.getpid()) - wait
    async with asyncio.timeout(timing.stop - time.time() + 15):
        await asyncio.gather(*tasks)
    keys = np.concatenate(
        [np.asarray(x.keys, dtype=np.float64) for x in stampedes] or [np.zeros(0)]
    )
    times = np.concatenate(
        [np.asarray(x.times, dtype=np.float64) for x in stampedes] or [np.zeros(0)]
    )
    return tally, np.stack([keys, times])


def worker_main(
    plan: Plan,
    ports: list[int],
    count: int,
    offset: int,
    total: int,
    cpus: set[int] | None,
    out: Pipe,
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_fd_limit()
    out.send(uvloop.run(_generate(plan, ports, count, offset, total)))
    out.close()


@dataclass
class Level:
    kind: str
    listeners: int
    window: float
    stride: int
    origin_requests_per_s: float = 0.0
    origin_parts_per_s: float = 0.0
    origin_playlists_per_s: float = 0.0
    parts_made_per_s: float = 0.0
    origin_parts_per_part_per_edge: float = 0.0
    served_per_s: float = 0.0
    stampede_parts: int = 0
    stampede_got: float = 0.0  # share of (stampede listener, stampede part) pairs received
    delay_p50_ms: float = math.nan
    delay_p99_ms: float = math.nan
    errors: int = 0
    resyncs: int = 0
    edge_cpu: float = 0.0
    origin_cpu: float = 0.0
    generator_cpu_max: float = 0.0
    generator_wait: float = 0.0
    notes: list[str] = field(default_factory=list)


def _newest_seq(origin: CauserieProcess, pps: int) -> int:
    text = httpx.get(origin.url + origin.playlist_path, timeout=5).text
    newest = parse_playlist(text).parts[-1]
    return newest.msn * pps + newest.index


def run_level(
    kind: str,
    origin: CauserieProcess,
    edge_list: list[RunningEdge],
    listeners: int,
    pps: int,
    args: argparse.Namespace,
) -> Level:
    ramp = max(1.0, listeners / args.connect_rate)
    start = time.time() + 0.5
    window_start = start + ramp + args.settle
    timing = edges.Timing(
        playlist_path=origin.playlist_path,
        start=start,
        ramp=ramp,
        window_start=window_start,
        window_end=window_start + args.window,
        stop=window_start + args.window + 1.5,
    )
    plan = Plan(origin.playlist_path, pps, args.stride, min(args.full, listeners), timing)
    ctx = mp.get_context("fork")
    ports = [e.port for e in edge_list]
    procs, pipes = [], []
    offset = 0
    for w in range(args.workers):
        count = listeners // args.workers + (1 if w < listeners % args.workers else 0)
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=worker_main,
            args=(plan, ports, count, offset, listeners, args.client_cpus, sender),
            daemon=True,
        )
        proc.start()
        sender.close()
        procs.append(proc)
        pipes.append(receiver)
        offset += count
    ref_receiver, ref_sender = ctx.Pipe(duplex=False)
    reference = ctx.Process(
        target=edges.reference_main,
        args=(origin.port, timing, args.client_cpus, ref_sender),
        daemon=True,
    )
    reference.start()
    ref_sender.close()
    try:
        edge_pids = [pid for e in edge_list for pid in e.pids()]
        time.sleep(max(0.0, timing.window_start - time.time()))
        parts0, playlists0 = edges._counters(origin)
        seq0 = _newest_seq(origin, pps)
        edge_cpu0, origin_cpu0 = edges._cpu(edge_pids), cpu_seconds(origin.pid)
        time.sleep(max(0.0, timing.window_end - time.time()))
        parts1, playlists1 = edges._counters(origin)
        seq1 = _newest_seq(origin, pps)
        edge_cpu = (edges._cpu(edge_pids) - edge_cpu0) / args.window
        origin_cpu = (cpu_seconds(origin.pid) - origin_cpu0) / args.window
        results = [pipe.recv() for pipe in pipes]
        ready: dict[int, float] = ref_receiver.recv()
    finally:
        for proc in [*procs, reference]:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    level = Level(kind, listeners, args.window, args.stride)
    level.origin_parts_per_s = (parts1 - parts0) / args.window
    level.origin_playlists_per_s = (playlists1 - playlists0) / args.window
    level.origin_requests_per_s = level.origin_parts_per_s + level.origin_playlists_per_s
    level.parts_made_per_s = (seq1 - seq0) / args.window
    if seq1 > seq0:
        level.origin_parts_per_part_per_edge = (parts1 - parts0) / (seq1 - seq0) / len(edge_list)
    tallies = [t for t, _ in results]
    level.served_per_s = sum(t.requests for t in tallies) / args.window
    level.errors = sum(t.errors for t in tallies)
    level.resyncs = sum(t.resyncs for t in tallies)
    level.generator_cpu_max = max(t.cpu_seconds for t in tallies) / args.window
    level.generator_wait = max(t.wait_seconds for t in tallies) / args.window
    level.edge_cpu, level.origin_cpu = edge_cpu, origin_cpu
    # Delivery of the stampede parts that became ready in the window.
    judged = {
        key: at
        for key, at in ready.items()
        if timing.window_start <= at < timing.window_end - 1.0
        and ((key >> 4) * pps + (key & 15)) % args.stride == 0
    }
    level.stampede_parts = len(judged)
    table = np.concatenate([t for _, t in results], axis=1)
    keys, times = table[0].astype(np.int64), table[1]
    keep = np.isin(keys, np.fromiter(judged, dtype=np.int64, count=len(judged)))
    delays = times[keep] - np.array([judged[k] for k in keys[keep]])
    expected = len(judged) * (listeners - plan.full)
    if expected:
        level.stampede_got = len(delays) / expected
    if len(delays):
        level.delay_p50_ms = float(np.percentile(delays, 50) * 1000)
        level.delay_p99_ms = float(np.percentile(delays, 99) * 1000)
    if level.generator_cpu_max > edges.SATURATED:
        level.notes.append("load generator saturated")
    return level


# ---- LL-DASH and the live events -----------------------------------------------------------

DASH_SAMPLE_GAP = (0.4, 0.6)
"""Seconds kept between a counter reading and an expected origin request (segment, window)."""


@dataclass
class DashPlan:
    """What every LL-DASH listener process needs to know."""

    manifest: _dash.Manifest
    segment_stride: int
    full: int
    window: _dash.Window
    start: float
    ramp: float


class DashStampede:
    """A listener that asks for every `segment_stride`-th segment when it is due, and for every
    window of live events when the one before it closes, as every real listener does; with HEAD,
    on its two keep-alive connections: the edge looks each up (the cache, the waiting list on
    the object being fetched) as it does a player's GET, then sends the headers only."""

    __slots__ = ("answered", "asked", "events", "media", "plan", "tally")

    def __init__(self, port: int, plan: DashPlan, tally: _dash.Tally) -> None:
        self.plan = plan
        self.tally = tally
        self.media = _dash.StreamConnection(HOST, port)
        self.events = _dash.StreamConnection(HOST, port)
        self.asked = self.answered = 0

    async def _head(self, conn: _dash.StreamConnection, path: bytes, feed: bool) -> None:
        window = self.plan.window
        try:
            status, _times, _size = await conn.request(path, head=True)
        except _dash.ERRORS:
            self.tally.errors += 1
            return
        if window.holds(time.time()):
            self.asked += 1
            self.answered += status == 200
            if feed:
                self.tally.feed_requests += 1
            else:
                self.tally.segment_requests += 1
        if status != 200:
            self.tally.errors += 1

    async def segments(self) -> None:
        manifest, stride = self.plan.manifest, self.plan.segment_stride
        while time.time() < self.plan.window.stop:
            number = manifest.number_at(time.time()) + 1
            number += -number % stride
            await asyncio.sleep(max(0.0, manifest.due(number) - time.time()))
            await self._head(self.media, manifest.segment_path(number), feed=False)

    async def feed(self) -> None:
        space_id = self.plan.manifest.space_id
        while time.time() < self.plan.window.stop:
            number = _dash.feed_window_at(time.time()) + 1
            closes = number * _dash.FEED_SECONDS + _dash.FEED_GRACE  # the one before it closes
            await asyncio.sleep(max(0.0, closes - time.time()))
            await self._head(self.events, _dash.window_path(space_id, number), feed=True)

    async def run(self, delay: float) -> None:
        await asyncio.sleep(delay)
        stop = self.plan.window.stop
        await asyncio.gather(_dash.run_until(stop, self.segments), _dash.run_until(stop, self.feed))
        self.media.close()
        self.events.close()


async def _dash_generate(
    plan: DashPlan, ports: list[int], count: int, offset: int, total: int
) -> tuple[_dash.Tally, int, int]:
    window = plan.window
    tally = _dash.Tally()
    stampedes: list[DashStampede] = []
    tasks = []
    for n in range(count):
        global_n = offset + n
        port = ports[global_n % len(ports)]
        delay = max(0.0, plan.start + plan.ramp * global_n / max(total, 1) - time.time())
        if global_n < plan.full:
            listener = _dash.Listener(HOST, port, plan.manifest, window, tally, feed=True)
            tasks.append(asyncio.create_task(listener.run(delay)))
        else:
            stampede = DashStampede(port, plan, tally)
            stampedes.append(stampede)
            tasks.append(asyncio.create_task(stampede.run(delay)))
    await asyncio.sleep(max(0.0, window.start - time.time()))
    cpu, wait = time.process_time(), run_queue_seconds(os.getpid())
    await asyncio.sleep(max(0.0, window.end - time.time()))
    tally.cpu_seconds = time.process_time() - cpu
    tally.wait_seconds = run_queue_seconds(os.getpid()) - wait
    async with asyncio.timeout(window.stop - time.time() + 15):
        await asyncio.gather(*tasks)
    return tally, sum(x.asked for x in stampedes), sum(x.answered for x in stampedes)


def dash_worker_main(
    plan: DashPlan,
    ports: list[int],
    count: int,
    offset: int,
    total: int,
    cpus: set[int] | None,
    out: Pipe,
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_fd_limit()
    out.send(uvloop.run(_dash_generate(plan, ports, count, offset, total)))
    out.close()


@dataclass
class DashLevel:
    kind: str
    listeners: int
    interval: float  # seconds between the two readings of the origin's counters
    origin_requests_per_s: float = 0.0  # segments + windows
    origin_segments: int = 0
    origin_windows: int = 0
    segments_due: int = 0  # segments that became due in the interval
    windows_due: int = 0  # windows of events asked for in the interval (the one before closed)
    segments_per_segment_per_edge: float = math.nan
    windows_per_window_per_edge: float = math.nan
    served_per_s: float = 0.0
    stampede_answered: float = 0.0  # share of the stampede requests in the interval answered 200
    errors: int = 0
    edge_cpu: float = 0.0
    origin_cpu: float = 0.0
    generator_cpu_max: float = 0.0
    generator_wait: float = 0.0
    notes: list[str] = field(default_factory=list)


def _dash_counters(origin: CauserieProcess) -> tuple[float, float]:
    """(segments, event windows) the origin answered 200 so far."""
    text = httpx.get(f"{origin.url}/metrics", timeout=5).text
    segment = 'causerie_dash_requests_total{kind="segment",status="200"} '
    window = 'causerie_feed_requests_total{kind="window",status="200"} '
    found = dict.fromkeys((segment, window), 0.0)
    for line in text.splitlines():
        for prefix in found:
            if line.startswith(prefix):
                found[prefix] = float(line[len(prefix) :])
    return found[segment], found[window]


def _origin_asks(manifest: _dash.Manifest, after: float, until: float) -> tuple[list, list]:
    """When an edge's first request for each segment and each window reaches the origin:
    a segment when its first chunk exists (the origin holds the request until then: ~50 ms
    after it is due), a window when the one before it closes."""
    segments = [
        manifest.due(n) + 0.05
        for n in range(manifest.number_at(after) - 1, manifest.number_at(until) + 2)
    ]
    first, last = _dash.feed_window_at(after) - 1, _dash.feed_window_at(until) + 2
    windows = [w * _dash.FEED_SECONDS + _dash.FEED_GRACE + 0.05 for w in range(first, last)]
    return segments, windows


def quiet_instant(manifest: _dash.Manifest, after: float) -> float:
    """The first moment from `after` on far from any expected origin request, so that a counter
    reading never splits one (which would make a per-edge ratio read 0.9 or 1.1)."""
    segments, windows = _origin_asks(manifest, after, after + 5)
    at = after
    while any(abs(at - x) < DASH_SAMPLE_GAP[0] for x in segments) or any(
        abs(at - x) < DASH_SAMPLE_GAP[1] for x in windows
    ):
        at += 0.05
    return at


def dash_run_level(
    kind: str,
    origin: CauserieProcess,
    edge_list: list[RunningEdge],
    manifest: _dash.Manifest,
    listeners: int,
    args: argparse.Namespace,
) -> DashLevel:
    ramp = max(1.0, listeners / args.connect_rate)
    start = time.time() + 0.5
    first = quiet_instant(manifest, start + ramp + args.settle)
    last = quiet_instant(manifest, first + args.window)
    window = _dash.Window(first, last, last + 1.0)
    plan = DashPlan(manifest, args.segment_stride, min(args.full, listeners), window, start, ramp)
    ctx = mp.get_context("fork")
    ports = [e.port for e in edge_list]
    procs, pipes = [], []
    offset = 0
    for w in range(args.workers):
        count = listeners // args.workers + (1 if w < listeners % args.workers else 0)
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=dash_worker_main,
            args=(plan, ports, count, offset, listeners, args.client_cpus, sender),
            daemon=True,
        )
        proc.start()
        sender.close()
        procs.append(proc)
        pipes.append(receiver)
        offset += count
    try:
        edge_pids = [pid for e in edge_list for pid in e.pids()]
        time.sleep(max(0.0, window.start - time.time()))
        segments0, windows0 = _dash_counters(origin)
        edge_cpu0, origin_cpu0 = edges._cpu(edge_pids), cpu_seconds(origin.pid)
        read0 = time.time()
        time.sleep(max(0.0, window.end - time.time()))
        segments1, windows1 = _dash_counters(origin)
        read1 = time.time()
        interval = read1 - read0
        edge_cpu = (edges._cpu(edge_pids) - edge_cpu0) / interval
        origin_cpu = (cpu_seconds(origin.pid) - origin_cpu0) / interval
        results = [pipe.recv() for pipe in pipes]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    level = DashLevel(kind, listeners, interval, edge_cpu=edge_cpu, origin_cpu=origin_cpu)
    segments, windows = _origin_asks(manifest, read0, read1)
    level.segments_due = sum(1 for at in segments if read0 <= at < read1)
    level.windows_due = sum(1 for at in windows if read0 <= at < read1)
    level.origin_segments = round(segments1 - segments0)
    level.origin_windows = round(windows1 - windows0)
    level.origin_requests_per_s = (level.origin_segments + level.origin_windows) / interval
    if level.segments_due:
        level.segments_per_segment_per_edge = (
            level.origin_segments / level.segments_due / len(edge_list)
        )
    if level.windows_due:
        level.windows_per_window_per_edge = (
            level.origin_windows / level.windows_due / len(edge_list)
        )
    tallies = [r[0] for r in results]
    asked, answered = sum(r[1] for r in results), sum(r[2] for r in results)
    level.stampede_answered = answered / asked if asked else math.nan
    level.served_per_s = sum(t.segment_requests + t.feed_requests for t in tallies) / interval
    level.errors = sum(t.errors for t in tallies)
    level.generator_cpu_max = max(t.cpu_seconds for t in tallies) / args.window
    level.generator_wait = max(t.wait_seconds for t in tallies) / args.window
    if level.generator_cpu_max > edges.SATURATED:
        level.notes.append("load generator saturated")
    return level


def dash_report(
    results: list[DashLevel], args: argparse.Namespace, load_before: str, elapsed: float
) -> None:
    print()
    print_table(
        ["edge", "listeners", "interval s", "origin req/s", "segments (due)", "windows (due)",
         "seg/seg/edge", "win/win/edge", "edges served req/s", "stampede 200", "edges CPU",
         "origin CPU", "gen CPU", "gen wait", "errors", "notes"],
        [
            [x.kind, x.listeners, x.interval, x.origin_requests_per_s,
             f"{x.origin_segments} ({x.segments_due})", f"{x.origin_windows} ({x.windows_due})",
             x.segments_per_segment_per_edge, x.windows_per_window_per_edge, x.served_per_s,
             f"{x.stampede_answered:.1%}", x.edge_cpu, x.origin_cpu,
             f"{x.generator_cpu_max:.0%}", f"{x.generator_wait:.0%}", x.errors,
             "; ".join(x.notes)]
            for x in results
        ],
    )  # fmt: skip
    print()
    flat: dict[str, dict[str, float]] = {}
    for kind in args.kinds:
        mine = [x for x in results if x.kind == kind]
        if not mine:
            continue
        ratios = {
            "segments": [x.segments_per_segment_per_edge for x in mine],
            "windows": [x.windows_per_window_per_edge for x in mine],
        }
        flat[kind] = {}
        for what, values in ratios.items():
            # The target: one origin request per object per edge, whatever the audience.
            worst = max(abs(v - 1) for v in values)
            flat[kind][what] = worst
            verdict = "flat: one per edge (within 10 %)" if worst <= 0.10 else "NOT one per edge"
            print(
                f"{kind}: origin requests per {what[:-1]} per edge "
                f"{' -> '.join(f'{v:.2f}' for v in values)} over "
                f"{', '.join(str(x.listeners) for x in mine)} listeners: {verdict}"
            )
    print(
        f"\nsimulated: {args.full} full listeners (every segment, streamed; every window of "
        f"events) + the rest asking, with HEAD, for every {args.segment_stride}th segment when "
        "it is due and every window when the one before closes (the full bursts an edge gets); "
        "2 edges, listeners split evenly. Origin requests = 200 answers at the origin, read at "
        "moments away from any expected request."
    )
    print(f"load average before {load_before}, after {load_average()}; {elapsed:.0f} s")
    path = write_result(
        "origin",
        {
            "command": command_line("origin"),
            "delivery": "dash",
            "levels": [asdict(x) for x in results],
            "largest_deviation_from_one_per_edge": flat,
        },
    )
    print(f"\n{command_line('origin')}\n(figures in {path.relative_to(Path.cwd())})")


# ---- main -----------------------------------------------------------------------------------


def parse_cpus(text: str | None) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


def parts_per_segment(origin: CauserieProcess) -> int:
    """Parts in a complete segment of the live playlist (waits for one, up to 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(origin.url + origin.playlist_path, timeout=5).text
        playlist = parse_playlist(text)
        counts = [sum(1 for p in playlist.parts if p.msn == msn) for msn in playlist.complete]
        if counts or time.monotonic() > deadline:
            return max(counts)
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--delivery", choices=["dash", "hls"], default="dash", help="what the listeners follow"
    )
    parser.add_argument(
        "--kinds", type=lambda s: s.split(","), help="edges: varnish (dash), varnish,nginx (hls)"
    )
    parser.add_argument(
        "--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 5000, 10000]
    )
    parser.add_argument("--stride", type=int, default=20, help="hls stampede: every Nth part")
    parser.add_argument(
        "--segment-stride", type=int, default=4, help="dash stampede: every Nth segment"
    )
    parser.add_argument("--full", type=int, default=200, help="listeners that fetch everything")
    parser.add_argument("--window", type=float, help="seconds measured (hls 12, dash 32)")
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connect-rate", type=float, default=2500.0, help="listeners/s")
    parser.add_argument("--server-cpus", type=parse_cpus)
    parser.add_argument("--client-cpus", type=parse_cpus)
    args = parser.parse_args()
    dash = args.delivery == "dash"
    if args.kinds is None:
        args.kinds = ["varnish"] if dash else ["varnish", "nginx"]
    if args.window is None:
        args.window = 32.0 if dash else 12.0
    # Two connections per LL-DASH listener (segments, events), one per LL-HLS listener.
    if max(args.levels) * (2 if dash else 1) > 19_000 * args.workers:
        parser.error("more connections than file descriptors allow; raise --workers")
    raise_fd_limit()
    started = time.monotonic()
    load_before = load_average()
    results: list[Level] = []
    dash_results: list[DashLevel] = []
    with (
        run_causerie(cpus=args.server_cpus) as origin,
        tempfile.TemporaryDirectory(prefix="causerie-origin-") as tmp,
    ):
        pps = parts_per_segment(origin)
        manifest = _dash.fetch_manifest(origin.url, origin.space_id)
        print(f"origin pid {origin.pid}, {pps} parts per segment", flush=True)
        for kind in args.kinds:
            with contextlib.ExitStack() as stack:
                edge_list = [
                    stack.enter_context(
                        edges.run_edge(
                            kind,
                            origin,
                            Path(tmp) / f"{kind}-{n}",
                            listeners=math.ceil(max(args.levels) / 2),
                            cpus=args.server_cpus,
                        )
                    )
                    for n in range(2)
                ]
                for listeners in args.levels:
                    if dash:
                        dash_level = dash_run_level(
                            kind, origin, edge_list, manifest, listeners, args
                        )
                        dash_results.append(dash_level)
                        _dash_progress(dash_level)
                    else:
                        level = run_level(kind, origin, edge_list, listeners, pps, args)
                        results.append(level)
                        _progress(level)
                    time.sleep(1.0)
    if dash:
        dash_report(dash_results, args, load_before, time.monotonic() - started)
    else:
        report(results, args, load_before, time.monotonic() - started)


def _dash_progress(level: DashLevel) -> None:
    print(
        f"  {level.kind:8} {level.listeners:6} listeners: origin {level.origin_segments} "
        f"segments ({level.segments_due} due: {level.segments_per_segment_per_edge:.2f} per "
        f"edge), {level.origin_windows} event windows ({level.windows_due} due: "
        f"{level.windows_per_window_per_edge:.2f} per edge) in {level.interval:.1f} s; edges "
        f"served {level.served_per_s:.0f} req/s, stampede answered "
        f"{level.stampede_answered:.0%}, generator {level.generator_cpu_max:.0%} (waited "
        f"{level.generator_wait:.0%})",
        flush=True,
    )


def _progress(level: Level) -> None:
    print(
        f"  {level.kind:8} {level.listeners:6} listeners: origin {level.origin_parts_per_s:.1f}"
        f" parts/s + {level.origin_playlists_per_s:.1f} playlists/s "
        f"({level.origin_parts_per_part_per_edge:.2f} per part per edge), edges "
        f"served {level.served_per_s:.0f} req/s, stampede parts got "
        f"{level.stampede_got:.0%} p99 {level.delay_p99_ms:.0f} ms, generator "
        f"{level.generator_cpu_max:.0%} (waited {level.generator_wait:.0%})",
        flush=True,
    )


def report(
    results: list[Level], args: argparse.Namespace, load_before: str, elapsed: float
) -> None:
    print()
    print_table(
        ["edge", "listeners", "origin req/s", "parts/s", "playlists/s", "per part per edge",
         "edges served req/s", "stampede got", "delay p50/p99 ms", "edges CPU", "origin CPU",
         "gen CPU", "gen wait", "errors", "notes"],
        [
            [x.kind, x.listeners, x.origin_requests_per_s, x.origin_parts_per_s,
             x.origin_playlists_per_s, x.origin_parts_per_part_per_edge, x.served_per_s,
             f"{x.stampede_got:.1%}", f"{x.delay_p50_ms:.0f}/{x.delay_p99_ms:.0f}", x.edge_cpu,
             x.origin_cpu, f"{x.generator_cpu_max:.0%}", f"{x.generator_wait:.0%}", x.errors,
             "; ".join(x.notes)]
            for x in results
        ],
    )  # fmt: skip
    flat: dict[str, float] = {}
    print()
    for kind in args.kinds:
        mine = [x for x in results if x.kind == kind]
        if not mine:
            continue
        rates = [x.origin_requests_per_s for x in mine]
        # What must not happen: the origin's load growing with the audience. A level whose
        # listeners fell behind (edges or load generator overloaded) fetches fewer parts in
        # the window than were made, which lowers the rate without saying anything about it.
        growth = max(rates) / rates[0] - 1 if rates[0] else float("nan")
        flat[kind] = growth
        verdict = "flat (no growth > 10 %)" if growth <= 0.10 else "NOT flat: grows"
        print(
            f"{kind}: origin requests/s {' -> '.join(f'{r:.1f}' for r in rates)} over "
            f"{', '.join(str(x.listeners) for x in mine)} listeners: largest growth over the "
            f"first level {growth:+.1%}, {verdict}"
        )
        for x in mine:
            if x.origin_parts_per_part_per_edge < 0.95:
                print(
                    f"  {x.listeners}: {x.origin_parts_per_part_per_edge:.2f} part requests per "
                    "part made per edge: listeners fell behind (fewer parts fetched in the window)"
                )
    print(
        f"\nsimulated: {args.full} full listeners (every part) + the rest fetching every "
        f"{args.stride}th part, all at once (the full burst an edge gets for a new part); "
        "2 edges, listeners split evenly. Origin requests = 200 answers at the origin."
    )
    print(f"load average before {load_before}, after {load_average()}; {elapsed:.0f} s")
    path = write_result(
        "origin",
        {
            "command": command_line("origin"),
            "levels": [asdict(x) for x in results],
            "growth": flat,
        },
    )
    print(f"\n{command_line('origin')}\n(figures in {path.relative_to(Path.cwd())})")


if __name__ == "__main__":
    main()
