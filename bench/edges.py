"""Caching edges in front of one origin: origin load and part delivery delay, nginx vs Varnish.

One `causerie demo` origin; in front of it two edges of one kind (two nginx, or two Varnish,
configured by `causerie.edge.config` exactly as `causerie edge-config` writes them); simulated
LL-HLS listeners split evenly across the two edges. Each listener does what hls.js does with
blocking reload, over one keep-alive HTTP/1.1 connection: GET
`index.m3u8?_HLS_msn=M&_HLS_part=P` for the part after the last one it has, then GET the part.
The load generator is cheap (a bare asyncio Protocol on uvloop, one coroutine per listener) and
runs in `--workers` processes.

A reference client follows the origin directly (blocking reload, no edge): the moment its
blocking reload returns is when the part was ready at the origin. For every part that became
ready inside the measuring window, and every listener:

    delay = (time the listener had all of the part's bytes) - (time it was ready at the origin)

i.e. what the edge (and the load generator's own event loop) adds to part delivery. A part is
*on time* if it arrived before the next one was ready (one part duration, 213 ms). Origin
requests/s come from the origin's Prometheus counters (`causerie_hls_requests_total`), read
before and after the window directly from the origin.

Kinds: `varnish`; `nginx` (the generated configuration: a part's cache-lock waiters re-check
after 100 ms, a blocking playlist's after 300 ms); `nginx-500ms` (the same with nginx's default
lock timeout, 5 s, so that waiters are woken by its fixed 500 ms timer); `nginx:M:P` (lock
timeouts of M ms for parts and P ms for playlists).

    .venv/bin/python -m bench.edges [--kinds varnish,nginx,nginx-500ms] [--levels 1000,2000,5000]
                                    [--window 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path

import httpx
import numpy as np
import uvloop
from tests.harness import edges as harness_edges
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge, edge_options
from tests.harness.ports import HOST

from bench._common import (
    command_line,
    cpu_seconds,
    pin,
    print_table,
    raise_fd_limit,
    run_causerie,
    run_queue_seconds,
    write_result,
)
from bench._hls import parse_playlist
from bench._http import Connection, HttpError

PART_SECONDS = 0.21333
KEY_SHIFT = 16  # a part's key: msn * 16 + index (fewer than 16 parts per segment)
DISTURBED = 0.10  # a try in which a load generator waited for a CPU longer than this is redone
SATURATED = 0.85  # a load-generator process busier than this (of one core) delays its timings
KINDS = {
    "varnish": ("varnish", {}),
    "nginx": ("nginx", {}),
    "nginx-500ms": ("nginx", {"media_lock_timeout_ms": 5000, "playlist_lock_timeout_ms": 5000}),
}


def kind_settings(kind: str) -> tuple[str, dict[str, int]]:
    """(program, EdgeOptions changes) for a kind; `nginx:M:P` sets nginx's two lock timeouts
    (parts M ms, playlists P ms)."""
    if kind in KINDS:
        return KINDS[kind]
    name, _, timeouts = kind.partition(":")
    media, _, playlist = timeouts.partition(":")
    if name != "nginx" or not media.isdigit() or not playlist.isdigit():
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)} or nginx:M:P")
    return "nginx", {"media_lock_timeout_ms": int(media), "playlist_lock_timeout_ms": int(playlist)}


# ---- the edges ---------------------------------------------------------------------------


@contextlib.contextmanager
def run_edge(
    kind: str,
    origin: CauserieProcess,
    folder: Path,
    listeners: int,
    cpus: set[int] | None,
    varnish_params: tuple[str, ...] = (),
    relay_workers: int = 1,
) -> Iterator[RunningEdge]:
    """One edge of `kind` in front of `origin`, on a free port; stopped at the end. `relay`:
    `causerie relay` with `relay_workers` processes."""
    if kind == "relay":
        with harness_edges.run_relay(
            origin.url, folder, workers=relay_workers, preexec=pin(cpus), timeout=60
        ) as relay:
            yield relay
        return
    program, tuning = kind_settings(kind)
    options = edge_options(
        [origin.url],
        listeners,
        storage="malloc,256m",
        live_max_size="512m",
        api_max_size="64m",
        command="bench.edges",
        **tuning,
    )
    with harness_edges.run_edge(
        program,
        options,
        folder,
        varnish_params=varnish_params,
        preexec=pin(cpus),
        timeout=60,
    ) as edge:
        yield edge


# ---- the listeners -------------------------------------------------------------------------


@dataclass
class Timing:
    playlist_path: str
    start: float  # wall time the first listener connects
    ramp: float  # listeners connect evenly over this many seconds
    window_start: float
    window_end: float
    stop: float


@dataclass
class Tally:
    requests: int = 0  # in the window
    errors: int = 0
    resyncs: int = 0
    cpu_seconds: float = 0.0
    wait_seconds: float = 0.0


class Listener:
    """One simulated hls.js listener (blocking reload) on one keep-alive connection."""

    __slots__ = ("base", "conn", "index", "keys", "msn", "path", "run", "tally", "times", "timing")

    def __init__(self, port: int, timing: Timing, tally: Tally) -> None:
        self.timing = timing
        self.tally = tally
        self.conn = Connection(HOST, port)
        self.path = timing.playlist_path.encode()
        self.base = self.path.rsplit(b"/", 1)[0] + b"/"
        self.run = b""
        self.msn = self.index = 0
        self.keys: list[int] = []
        self.times: list[float] = []

    async def get(self, path: bytes) -> tuple[int, bytes]:
        status, body = await self.conn.get(path)
        if self.timing.window_start <= time.time() < self.timing.window_end:
            self.tally.requests += 1
        if status != 200:
            self.tally.errors += 1
        return status, body

    async def sync(self) -> None:
        _status, body = await self.get(self.path)
        newest = parse_playlist(body.decode()).parts[-1]
        self.run = newest.uri.rsplit("/", 1)[0].encode()
        self.msn, self.index = newest.msn, newest.index

    def next_listed(self, body: bytes) -> tuple[int, int] | None:
        end = body.rfind(b"#EXT-X-PRELOAD-HINT")
        end = len(body) if end < 0 else end
        if body.find(b"/%d.%d.m4s" % (self.msn, self.index + 1), 0, end) >= 0:
            return self.msn, self.index + 1
        if body.find(b"/%d.0.m4s" % (self.msn + 1), 0, end) >= 0:
            return self.msn + 1, 0
        return None

    async def step(self) -> None:
        status, body = await self.get(
            b"%s?_HLS_msn=%d&_HLS_part=%d" % (self.path, self.msn, self.index + 1)
        )
        if status != 200:
            await asyncio.sleep(0.05)
            return
        listed = self.next_listed(body)
        if listed is None:  # fell out of the playlist window: start again from the live edge
            self.tally.resyncs += 1
            await self.sync()
            return
        msn, index = listed
        status, _data = await self.get(b"%s%s/%d.%d.m4s" % (self.base, self.run, msn, index))
        if status != 200:
            await asyncio.sleep(0.05)
            return
        self.keys.append(msn * KEY_SHIFT + index)
        self.times.append(time.time())
        self.msn, self.index = msn, index

    async def follow(self, delay: float) -> None:
        await asyncio.sleep(delay)
        while time.time() < self.timing.stop:
            try:
                if not self.run:
                    await self.sync()
                else:
                    await self.step()
            except (HttpError, TimeoutError, OSError, IndexError, ValueError):
                self.tally.errors += 1
                await asyncio.sleep(0.1)
        self.conn.close()


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _generate(
    timing: Timing, ports: list[int], count: int, offset: int, total: int
) -> tuple[Tally, np.ndarray]:
    tally = Tally()
    listeners = []
    tasks = []
    now = time.time()
    for n in range(count):
        global_n = offset + n  # interleaved over processes and edges
        listener = Listener(ports[global_n % len(ports)], timing, tally)
        listeners.append(listener)
        when = timing.start + timing.ramp * global_n / max(total, 1)
        tasks.append(asyncio.create_task(listener.follow(max(0.0, when - now))))
    await asyncio.sleep(max(0.0, timing.window_start - time.time()))
    cpu, wait = _own_cpu(), run_queue_seconds(os.getpid())
    await asyncio.sleep(max(0.0, timing.window_end - time.time()))
    tally.cpu_seconds = _own_cpu() - cpu
    tally.wait_seconds = run_queue_seconds(os.getpid()) - wait
    async with asyncio.timeout(timing.stop - time.time() + 15):
        await asyncio.gather(*tasks)
    # Per listener: its row number, the part keys it got, when.
    rows = np.concatenate(
        [np.full(len(x.keys), n + offset, dtype=np.int32) for n, x in enumerate(listeners)]
        or [np.zeros(0, dtype=np.int32)]
    )
    keys = np.concatenate(
        [np.asarray(x.keys, dtype=np.int64) for x in listeners] or [np.zeros(0, np.int64)]
    )
    times = np.concatenate(
        [np.asarray(x.times, dtype=np.float64) for x in listeners] or [np.zeros(0)]
    )
    return tally, np.stack([rows.astype(np.float64), keys.astype(np.float64), times])


def worker_main(
    timing: Timing,
    ports: list[int],
    count: int,
    offset: int,
    total: int,
    cpus: set[int] | None,
    out: Pipe,
) -> None:
    """Process entry: `count` listeners; sends back the tally and (row, key, time) triples."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_fd_limit()
    tally, table = uvloop.run(_generate(timing, ports, count, offset, total))
    out.send((tally, table))
    out.close()


async def _reference(port: int, timing: Timing) -> dict[int, float]:
    """When each part became ready at the origin: its blocking reload returned (no edge)."""
    conn = Connection(HOST, port)
    path = timing.playlist_path.encode()
    ready: dict[int, float] = {}
    _status, body = await conn.get(path)
    newest = parse_playlist(body.decode()).parts[-1]
    msn, index = newest.msn, newest.index
    while time.time() < timing.stop:
        try:
            status, body = await conn.get(b"%s?_HLS_msn=%d&_HLS_part=%d" % (path, msn, index + 1))
        except (HttpError, TimeoutError, OSError):
            await asyncio.sleep(0.05)
            continue
        now = time.time()
        if status != 200:
            await asyncio.sleep(0.05)
            continue
        end = body.rfind(b"#EXT-X-PRELOAD-HINT")
        end = len(body) if end < 0 else end
        if body.find(b"/%d.%d.m4s" % (msn, index + 1), 0, end) >= 0:
            index += 1
        elif body.find(b"/%d.0.m4s" % (msn + 1), 0, end) >= 0:
            msn, index = msn + 1, 0
        else:
            newest = parse_playlist(body.decode()).parts[-1]
            msn, index = newest.msn, newest.index
            continue
        ready[msn * KEY_SHIFT + index] = now
    conn.close()
    return ready


def reference_main(port: int, timing: Timing, cpus: set[int] | None, out: Pipe) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    out.send(uvloop.run(_reference(port, timing)))
    out.close()


# ---- one level -----------------------------------------------------------------------------


@dataclass
class Level:
    kind: str
    listeners: int
    window: float
    origin_parts_per_s: float = 0.0
    origin_playlists_per_s: float = 0.0
    origin_parts_per_part_per_edge: float = 0.0
    served_per_s: float = 0.0
    delay_p50_ms: float = math.nan
    delay_p99_ms: float = math.nan
    on_time: float = 0.0
    missing: float = 0.0
    errors: int = 0
    resyncs: int = 0
    edge_cpu: float = 0.0  # both edges together, in cores
    origin_cpu: float = 0.0
    generator_cpu_max: float = 0.0  # the busiest load-generator process, of one core
    generator_wait: float = 0.0  # its time waiting for a CPU, fraction of the window
    parts_in_window: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def saturated(self) -> bool:
        return self.generator_cpu_max > SATURATED


def _cpu(pids: list[int]) -> float:
    """CPU seconds of processes that may have exited meanwhile (varnishd's short-lived ones)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def _counters(origin: CauserieProcess) -> tuple[float, float]:
    text = httpx.get(f"{origin.url}/metrics", timeout=5).text
    found = {"part": 0.0, "playlist": 0.0}
    for line in text.splitlines():
        for kind in found:
            if line.startswith(f'causerie_hls_requests_total{{kind="{kind}",status="200"}} '):
                found[kind] = float(line.rsplit(" ", 1)[1])
    return found["part"], found["playlist"]


def run_level(
    kind: str,
    origin: CauserieProcess,
    edges: list[RunningEdge],
    listeners: int,
    args: argparse.Namespace,
) -> Level:
    ramp = max(1.0, listeners / 2000)
    start = time.time() + 0.5
    window_start = start + ramp + args.settle
    timing = Timing(
        playlist_path=origin.playlist_path,
        start=start,
        ramp=ramp,
        window_start=window_start,
        window_end=window_start + args.window,
        stop=window_start + args.window + 2.0,
    )
    ctx = mp.get_context("fork")
    ports = [e.port for e in edges]
    workers = max(1, min(args.workers, listeners))
    procs, pipes = [], []
    offset = 0
    for w in range(workers):
        count = listeners // workers + (1 if w < listeners % workers else 0)
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=worker_main,
            args=(timing, ports, count, offset, listeners, args.client_cpus, sender),
            daemon=True,
        )
        proc.start()
        sender.close()
        procs.append(proc)
        pipes.append(receiver)
        offset += count
    ref_receiver, ref_sender = ctx.Pipe(duplex=False)
    reference = ctx.Process(
        target=reference_main,
        args=(origin.port, timing, args.client_cpus, ref_sender),
        daemon=True,
    )
    reference.start()
    ref_sender.close()

    try:
        return _measure_level(kind, origin, edges, listeners, args, timing, pipes, ref_receiver)
    finally:
        for proc in [*procs, reference]:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def _measure_level(
    kind: str,
    origin: CauserieProcess,
    edges: list[RunningEdge],
    listeners: int,
    args: argparse.Namespace,
    timing: Timing,
    pipes: list[Pipe],
    ref_receiver: Pipe,
) -> Level:
    edge_pids = [pid for e in edges for pid in e.pids()]
    time.sleep(max(0.0, timing.window_start - time.time()))
    parts0, playlists0 = _counters(origin)
    edge_cpu0 = _cpu(edge_pids)
    origin_cpu0 = cpu_seconds(origin.pid)
    time.sleep(max(0.0, timing.window_end - time.time()))
    parts1, playlists1 = _counters(origin)
    edge_cpu = (_cpu(edge_pids) - edge_cpu0) / args.window
    origin_cpu = (cpu_seconds(origin.pid) - origin_cpu0) / args.window

    results = [pipe.recv() for pipe in pipes]
    ready: dict[int, float] = ref_receiver.recv()

    level = Level(kind, listeners, args.window)
    level.origin_parts_per_s = (parts1 - parts0) / args.window
    level.origin_playlists_per_s = (playlists1 - playlists0) / args.window
    level.edge_cpu = edge_cpu
    level.origin_cpu = origin_cpu
    tallies = [t for t, _ in results]
    level.served_per_s = sum(t.requests for t in tallies) / args.window
    level.errors = sum(t.errors for t in tallies)
    level.resyncs = sum(t.resyncs for t in tallies)
    level.generator_cpu_max = max(t.cpu_seconds for t in tallies) / args.window
    level.generator_wait = max(t.wait_seconds for t in tallies) / args.window

    # The parts that became ready in the window (leaving one second to deliver the last).
    judged = {
        key: at for key, at in ready.items() if timing.window_start <= at < timing.window_end - 1.0
    }
    level.parts_in_window = len(judged)
    produced_in_window = sum(
        1 for at in ready.values() if timing.window_start <= at < timing.window_end
    )
    if produced_in_window:
        level.origin_parts_per_part_per_edge = (parts1 - parts0) / produced_in_window / len(edges)
    table = np.concatenate([t for _, t in results], axis=1)
    keys, times = table[1].astype(np.int64), table[2]
    keep = np.isin(keys, np.fromiter(judged, dtype=np.int64, count=len(judged)))
    ready_at = np.array([judged[k] for k in keys[keep]])
    delays = times[keep] - ready_at
    expected = len(judged) * listeners
    if expected and len(delays):
        # A part a listener never got counts as late (and as missing).
        level.missing = 1 - len(delays) / expected
        level.on_time = float(np.sum(delays <= PART_SECONDS)) / expected
        level.delay_p50_ms = float(np.percentile(delays, 50) * 1000)
        level.delay_p99_ms = float(np.percentile(delays, 99) * 1000)
    if level.saturated:
        level.notes.append("load generator saturated: delays include its own")
    return level


def _progress(level: Level, attempt: int) -> None:
    print(
        f"  {level.kind:12} {level.listeners:6} listeners (try {attempt}): origin "
        f"{level.origin_parts_per_s:.1f} parts/s ({level.origin_parts_per_part_per_edge:.2f} per "
        f"part per edge), delay p50 {level.delay_p50_ms:.0f} ms p99 {level.delay_p99_ms:.0f} ms, "
        f"on time {level.on_time:.1%}, generator {level.generator_cpu_max:.0%} "
        f"(waited {level.generator_wait:.0%})",
        flush=True,
    )


def measure(
    kind: str,
    origin: CauserieProcess,
    edges: list[RunningEdge],
    listeners: int,
    args: argparse.Namespace,
) -> Level:
    """Run a level; again (up to --tries) if other processes kept our load generator waiting
    for a CPU (its timings are then theirs); keep the least disturbed try."""
    tries: list[Level] = []
    for attempt in range(1, args.tries + 1):
        level = run_level(kind, origin, edges, listeners, args)
        _progress(level, attempt)
        tries.append(level)
        time.sleep(1.0)
        if level.generator_wait <= DISTURBED:
            break
    best = min(tries, key=lambda x: x.generator_wait)
    if best.generator_wait > DISTURBED:
        best.notes.append(f"disturbed: the load generator waited {best.generator_wait:.0%}")
    best.notes.append(f"{len(tries)} tries")
    return best


# ---- main ---------------------------------------------------------------------------------


def parse_cpus(text: str | None) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="varnish,nginx,nginx-500ms")
    parser.add_argument(
        "--levels", default="1000,2000,5000", help="listeners (both edges together)"
    )
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per level")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after the ramp")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--edges", type=int, default=2, help="edges of each kind")
    parser.add_argument("--tries", type=int, default=2, help="tries of a disturbed level")
    parser.add_argument(
        "--varnish-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra varnishd -p (repeatable), after the generated ones",
    )
    parser.add_argument("--server-cpus", help="pin the origin and the edges, e.g. 0")
    parser.add_argument("--client-cpus", help="pin the load generators, e.g. 1")
    args = parser.parse_args()
    args.server_cpus = parse_cpus(args.server_cpus)
    args.client_cpus = parse_cpus(args.client_cpus)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for kind in kinds:
        try:
            kind_settings(kind)
        except ValueError as exc:
            parser.error(str(exc))
    levels = [int(n) for n in args.levels.split(",")]
    if max(levels) > 19_000 * args.workers:
        parser.error("more listeners than file descriptors allow; raise --workers")
    raise_fd_limit()

    results: list[Level] = []
    with (
        run_causerie(cpus=args.server_cpus) as origin,
        tempfile.TemporaryDirectory(prefix="causerie-edges-") as tmp,
    ):
        print(f"origin pid {origin.pid}, space {origin.space_id}", flush=True)
        for kind in kinds:
            with contextlib.ExitStack() as stack:
                edges = [
                    stack.enter_context(
                        run_edge(
                            kind,
                            origin,
                            Path(tmp) / f"{kind}-{n}",
                            listeners=math.ceil(max(levels) / args.edges),
                            cpus=args.server_cpus,
                            varnish_params=tuple(args.varnish_param),
                        )
                    )
                    for n in range(args.edges)
                ]
                for listeners in levels:
                    level = measure(kind, origin, edges, listeners, args)
                    results.append(level)

    print()
    print_table(
        [
            "edge",
            "listeners",
            "origin parts/s",
            "per part per edge",
            "origin playlists/s",
            "served req/s",
            "delay p50 ms",
            "delay p99 ms",
            "on time",
            "missing",
            "errors",
            "edges CPU",
            "origin CPU",
            "gen CPU max",
            "gen wait",
            "notes",
        ],
        [
            [
                x.kind,
                x.listeners,
                x.origin_parts_per_s,
                x.origin_parts_per_part_per_edge,
                x.origin_playlists_per_s,
                x.served_per_s,
                x.delay_p50_ms,
                x.delay_p99_ms,
                f"{x.on_time:.1%}",
                f"{x.missing:.1%}",
                x.errors,
                x.edge_cpu,
                x.origin_cpu,
                f"{x.generator_cpu_max:.0%}" + (" (sat.)" if x.saturated else ""),
                f"{x.generator_wait:.0%}",
                "; ".join(x.notes),
            ]
            for x in results
        ],
    )
    print()
    print(
        f"{args.edges} edges of each kind in front of one origin; listeners split evenly; "
        f"{args.workers} load-generator processes; {os.cpu_count()} CPUs shared by everything."
    )
    print("delay = listener has the whole part - part ready at the origin (a direct client);")
    print(
        f"on time = delay <= one part ({PART_SECONDS * 1000:.0f} ms); parts never got count late."
    )
    path = write_result(
        "edges",
        {
            "command": command_line("edges"),
            "cpus": os.cpu_count(),
            "levels": [{**asdict(x), "saturated": x.saturated} for x in results],
        },
    )
    print(f"\n{command_line('edges')}\n(figures in {path.relative_to(Path.cwd())})")


if __name__ == "__main__":
    main()
