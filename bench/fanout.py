"""Listeners one caching edge keeps on time, per core, beside Icecast in the same run.

Every kind in `--kinds` is measured in turn, `--runs` (3) times, interleaved (run 1: every kind,
then run 2 …), so that a noisy machine disturbs them alike; one `causerie demo` origin serves
them all. Servers are pinned to `--server-cpus` (0), load generators (`--workers` processes of
raw asyncio sockets on uvloop) to `--client-cpus` (1).

**LL-DASH through Varnish** (`varnish-dash`; `varnish-dash+feed` with the live events too). One
Varnish edge configured by `causerie.edge.config` as `causerie edge-config` writes it (threads
sized for the largest level). **Through `causerie relay`** (`relay-dash`, `relay-dash+feed`):
the same listeners through one relay process (`--relay-workers`, 1), the event-driven edge
(src/causerie/edge/relay/). Simulated listener pages (bench/_dash.py) join over a ramp and
ask for each 3.84 s segment when its first chunk is due, on one keep-alive connection, reading
it as it streams and noting when each chunk (an `mdat`) was complete; with `+feed` they also
follow the 15 s windows of live events on a second connection (`/feed/{space}/{n}.ndjson`,
streamed while open), as the page does. A direct client of the origin is the reference: a chunk
is on time if a listener had it at most one chunk (213 ms) after the reference, i.e. before the
next one was due; a listener-segment is on time if every chunk of it was. A level is kept if
>= 99 % of the listener-segments whose chunks were all made in the `--dash-window` (16 s) were
on time. `--dash-levels` (500, 1000, 2000). `--parts-per-chunk 2` runs the node with parts,
hence chunks, of 427 ms (a benchmark-only switch); `--varnish-param NAME=VALUE` adds a varnishd
`-p` after the generated ones.

**LL-HLS through one edge** (`varnish`, `nginx`). The simulated hls.js listeners of
`bench.edges` (blocking playlist reload for the next part, then the part, one keep-alive
connection each) at `--levels` (250, 500, 1000); a part is on time if a listener had all of it
before the next part was ready at the origin (a direct blocking client); a level is kept at
>= 99 % of the listener-parts of the `--window` (8 s).

**Icecast (the reference).** icecast2 (Debian's 2.4, a generated config) with one mount fed by a
source process: ffmpeg encodes the project's demo audio (looped, `-re`) to MP3 at
`--icecast-bitrate` (64 kbit/s CBR: the bit rate of causerie's AAC) and the source PUTs it in
213 ms chunks (both servers push the same chunks per second per listener). Listeners: plain
`GET /stream.mp3` on raw sockets that only count bytes, opened at up to `--connect-rate`
(Icecast listens with a backlog of 5: 16 at once per process); the window starts once all have
their response headers. Every 250 ms each listener's byte count is sampled; a listener keeps up
if it never fell more than `--slack` (1 s) of audio behind what the source had sent. A level is
kept if >= 99 % kept up. `--icecast-levels` (1000, 2000, 5000).

**Per core.** The server's CPU time (all processes and threads: the edge's, or icecast2's) from
/proc over the window; listeners per core = listeners' worth of work delivered / CPU, where the
work is what was really delivered: LL-DASH chunks received / 4.69 per s (one listener's),
LL-HLS requests served / 9.4 per s, Icecast bytes received / the source's rate (counting heads
would flatter a server whose listeners fell behind). The origin and the Icecast source are not
counted (the same for 10 or 10 million listeners). Per run and kind: the median over the levels
kept on time (a server that falls behind writes several chunks per wake-up, which flatters its
CPU per chunk), over all levels if none was; the ratio to Icecast within each run, then the
median over runs.

    .venv/bin/python -m bench.fanout [--kinds varnish-dash,varnish-dash+feed,relay-dash,
        relay-dash+feed,icecast,varnish,nginx] [--relay-workers 1]
        [--runs 3] [--dash-levels 500,1000,2000] [--levels 250,500,1000]
        [--icecast-levels 1000,2000,5000] [--parts-per-chunk 1] [--varnish-param NAME=VALUE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing as mp
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import numpy as np
import uvloop
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge
from tests.harness.polling import wait_until
from tests.harness.ports import HOST, free_port
from tests.harness.processes import start_process, stop, tail

from bench import _dash, edges
from bench._common import (
    REPO,
    command_line,
    cpu_seconds,
    ensure_program,
    load_average,
    median,
    pin,
    print_table,
    raise_fd_limit,
    run_causerie,
    run_queue_seconds,
    write_result,
)

KEPT = 0.99
CHUNK_SECONDS = 0.21333  # one LL-HLS part
SAMPLE_SECONDS = 0.25
ASSET = REPO / "src" / "causerie" / "media" / "assets" / "demo-host.opus"
MOUNT = "/stream.mp3"
PASSWORD = "bench-source"

# ---- Icecast -----------------------------------------------------------------------------

ICECAST_XML = """\
<icecast>
  <location>loopback</location>
  <admin>bench@localhost</admin>
  <hostname>{host}</hostname>
  <limits>
    <clients>{clients}</clients>
    <sources>2</sources>
    <queue-size>524288</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect>
    <burst-size>65535</burst-size>
  </limits>
  <authentication>
    <source-password>{password}</source-password>
    <relay-password>{password}</relay-password>
    <admin-user>admin</admin-user>
    <admin-password>{password}</admin-password>
  </authentication>
  <listen-socket>
    <port>{port}</port>
    <bind-address>{host}</bind-address>
  </listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>{dir}</basedir>
    <logdir>{dir}/log</logdir>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
    <pidfile>{dir}/icecast.pid</pidfile>
  </paths>
  <logging>
    <accesslog>access.log</accesslog>
    <errorlog>error.log</errorlog>
    <loglevel>2</loglevel>
  </logging>
  <security>
    <chroot>0</chroot>
    {changeowner}
  </security>
</icecast>
"""


@contextlib.contextmanager
def run_icecast(folder: Path, clients: int, cpus: set[int] | None) -> Iterator[tuple[int, int]]:
    """icecast2 on a free port of 127.0.0.1; yields (pid, port)."""
    (folder / "log").mkdir(parents=True, exist_ok=True)
    # Icecast refuses to run as root: it then switches to nobody, who must write its logs.
    owner = ""
    if os.geteuid() == 0:
        owner = "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
        folder.parent.chmod(0o755)  # our temporary directory: nobody must get through it
        for path in (folder, folder / "log"):
            path.chmod(0o777)
    port = free_port()
    config = folder / "icecast.xml"
    config.write_text(
        ICECAST_XML.format(
            host=HOST,
            port=port,
            clients=clients,
            password=PASSWORD,
            dir=folder,
            changeowner=owner,
        )
    )
    out = folder / "out.log"
    process = start_process(["icecast2", "-c", str(config)], out, preexec=pin(cpus))
    try:

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"icecast2 did not start: {tail(out)}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                return True
            return False

        wait_until(listening, 10, lambda: f"icecast2 listening; {tail(out)}")
        time.sleep(0.5)  # it binds before it switches user and opens its logs
        if process.poll() is not None:
            raise RuntimeError(f"icecast2 did not start: {tail(out)}")
        yield process.pid, port
    finally:
        stop(process)


async def _source(port: int, until: float, sent: Any, bitrate: int) -> None:
    """ffmpeg -> MP3 at `bitrate` bit/s -> PUT to Icecast, in chunks of one part's duration."""
    ffmpeg = await asyncio.create_subprocess_exec(
        *["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1"],
        *["-i", str(ASSET), "-ac", "1", "-ar", "44100", "-c:a", "libmp3lame"],
        *["-b:a", str(bitrate), "-flush_packets", "1", "-f", "mp3", "pipe:1"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # "Broken pipe" when it is stopped
    )
    assert ffmpeg.stdout is not None
    reader, writer = await asyncio.open_connection(HOST, port)
    auth = base64.b64encode(f"source:{PASSWORD}".encode()).decode()
    writer.write(
        f"PUT {MOUNT} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Basic {auth}\r\n"
        "Content-Type: audio/mpeg\r\nIce-Public: 0\r\nIce-Name: bench\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if b" 100 " not in answer.split(b"\r\n", 1)[0] and b" 200 " not in answer[:20]:
        raise RuntimeError(f"icecast refused the source: {answer!r}")
    buffer = bytearray()

    async def pump() -> None:
        assert ffmpeg.stdout is not None
        while chunk := await ffmpeg.stdout.read(65536):
            buffer.extend(chunk)

    pumping = asyncio.create_task(pump())
    try:
        tick = time.monotonic()
        while time.time() < until:
            tick += CHUNK_SECONDS
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            if buffer:
                writer.write(bytes(buffer))
                sent.value += len(buffer)
                buffer.clear()
                await writer.drain()
    finally:
        pumping.cancel()
        ffmpeg.kill()
        await ffmpeg.wait()
        writer.close()


def source_main(port: int, until: float, cpus: set[int] | None, sent: Any, bitrate: int) -> None:
    """Process entry: the Icecast source; `sent` (a shared counter) counts the bytes sent."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    uvloop.run(_source(port, until, sent, bitrate))


class _Listener(asyncio.Protocol):
    """An Icecast listener that only counts the audio bytes it gets."""

    __slots__ = ("head", "received", "request")

    def __init__(self, request: bytes) -> None:
        self.head = True
        self.received = 0
        self.request = request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.head:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = False
            data = data[end + 4 :]
        self.received += len(data)


ANSWER_TIMEOUT = 20.0  # seconds a worker waits for Icecast to answer all its listeners
# Connections a worker opens at once: Icecast listens with a backlog of 5 (ICECAST_LISTEN_QUEUE)
# and accepts a few hundred a second; many more at once overflow the backlog, and the kernel
# leaves some half-open for a minute.
CONNECTING = 16


async def _icecast_listeners(
    port: int, count: int, rate: float, sent: Any, control: Pipe
) -> tuple[np.ndarray, np.ndarray, int, float, float]:
    """Open `count` listeners (at most `rate` per second), tell the parent, wait for the window
    it sends back, sample every listener's byte count in it: (samples x listeners bytes, failed
    connections, own CPU s, own wait s), and the source's byte count at each sample."""
    loop = asyncio.get_running_loop()
    request = f"GET {MOUNT} HTTP/1.0\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    listeners: list[_Listener] = []
    transports: list[asyncio.BaseTransport] = []
    failed = 0
    gate = asyncio.Semaphore(CONNECTING)
    start = time.time()

    async def connect(n: int) -> None:
        nonlocal failed
        await asyncio.sleep(max(0.0, start + n / rate - time.time()))
        async with gate:
            try:
                transport, protocol = await loop.create_connection(
                    lambda: _Listener(request), HOST, port
                )
            except OSError:
                failed += 1
                return
        listeners.append(protocol)
        transports.append(transport)

    await asyncio.gather(*(connect(n) for n in range(count)))
    # Connected is not served: Icecast accepts from its backlog a few hundred a second. Wait
    # until every listener has its response (bounded), so that the window sees them all.
    deadline = time.time() + ANSWER_TIMEOUT
    while any(x.head for x in listeners) and time.time() < deadline:
        await asyncio.sleep(0.1)
    answered = [not x.head for x in listeners]
    for transport, ok in zip(transports, answered, strict=True):
        if not ok:
            transport.close()
    listeners = [x for x, ok in zip(listeners, answered, strict=True) if ok]
    control.send(("answered", len(listeners), time.time()))
    window_start, window_end = await loop.run_in_executor(None, control.recv)
    await asyncio.sleep(max(0.0, window_start - time.time()))
    cpu0, wait0 = time.process_time(), run_queue_seconds(os.getpid())
    samples, source = [], []
    at = window_start
    while at <= window_end + 1e-6:
        await asyncio.sleep(max(0.0, at - time.time()))
        source.append(sent.value)
        # What arrived meanwhile waits in our sockets if this loop was late: read it first, so
        # that our own lateness is not counted as the server's.
        for _ in range(3):
            await asyncio.sleep(0)
        samples.append(np.fromiter((x.received for x in listeners), np.int64, len(listeners)))
        at += SAMPLE_SECONDS
    cpu = time.process_time() - cpu0
    wait = run_queue_seconds(os.getpid()) - wait0
    for transport in transports:
        transport.close()
    return np.stack(samples), np.asarray(source), failed, cpu, wait


def icecast_worker(
    port: int, count: int, rate: float, sent: Any, cpus: set[int] | None, control: Pipe
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_fd_limit()
    control.send(uvloop.run(_icecast_listeners(port, count, rate, sent, control)))
    control.close()


@dataclass
class IcecastLevel:
    listeners: int
    window: float
    connected: int = 0
    kept_up: float = 0.0  # share of the listeners that never fell behind by more than the slack
    deficit_p99_s: float = float("nan")  # worst lag of each listener, p99 over listeners, s
    behind_clock_p99_s: float = float("nan")  # the same against the nominal bit rate alone
    rate_p50_bytes: float = float("nan")  # bytes/s a listener received in the window (median)
    source_rate_bytes: float = float("nan")  # bytes/s the source sent in the window
    bytes_per_s: float = 0.0  # all listeners together received
    accepted_per_s: float = 0.0  # listeners connected per second while opening them
    server_cpu: float = 0.0  # icecast2, fraction of one core
    generator_cpu_max: float = 0.0
    generator_wait: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        return self.kept_up >= KEPT

    @property
    def per_core(self) -> float:
        """Listeners' worth of bytes sent (bytes received / the source's rate), per core."""
        if self.server_cpu <= 0 or not self.source_rate_bytes > 0:
            return float("nan")
        return self.bytes_per_s / self.source_rate_bytes / self.server_cpu


def icecast_level(
    port: int, pid: int, sent: Any, listeners: int, args: argparse.Namespace
) -> IcecastLevel:
    ctx = mp.get_context("fork")
    workers = max(1, min(args.workers, listeners))
    procs, pipes = [], []
    started = time.time()
    for w in range(workers):
        count = listeners // workers + (1 if w < listeners % workers else 0)
        here, there = ctx.Pipe()
        proc = ctx.Process(
            target=icecast_worker,
            args=(port, count, args.connect_rate / workers, sent, args.client_cpus, there),
            daemon=True,
        )
        proc.start()
        there.close()
        procs.append(proc)
        pipes.append(here)
    try:
        answered = [pipe.recv() for pipe in pipes]  # every listener answered (or given up)
        served = sum(a[1] for a in answered)
        accepted_per_s = served / max(1e-3, max(a[2] for a in answered) - started)
        window_start = time.time() + args.settle
        window_end = window_start + args.window
        for pipe in pipes:
            pipe.send((window_start, window_end))
        time.sleep(max(0.0, window_start - time.time()))
        cpu0 = cpu_seconds(pid)
        time.sleep(max(0.0, window_end - time.time()))
        cpu = (cpu_seconds(pid) - cpu0) / args.window
        results = [pipe.recv() for pipe in pipes]
    finally:
        for proc in procs:
            proc.join(timeout=20)
            if proc.is_alive():
                proc.kill()
    level = IcecastLevel(listeners, args.window, server_cpu=cpu, accepted_per_s=accepted_per_s)
    bytes_per_s = args.icecast_bitrate / 8
    table = np.concatenate([r[0] for r in results], axis=1)
    source = results[0][1]
    level.connected = table.shape[1]
    level.generator_cpu_max = max(r[3] for r in results) / args.window
    level.generator_wait = max(r[4] for r in results) / args.window
    got = table - table[0]  # bytes since the window started, per sample and listener
    fed = (source - source[0])[: len(got), None]  # bytes the source sent meanwhile
    elapsed = np.arange(table.shape[0])[:, None] * SAMPLE_SECONDS
    # How far behind each listener fell, in seconds of audio: behind what the source had sent
    # (the source's own pace is not the server's doing, as the LL-HLS delay counts from the
    # part's readiness at the origin), and behind real time at the nominal bit rate (shown).
    behind = (fed - got).max(axis=0) / bytes_per_s
    behind_clock = (elapsed * bytes_per_s - got).max(axis=0) / bytes_per_s
    level.kept_up = int(np.sum(behind <= args.slack)) / level.connected
    level.deficit_p99_s = float(np.percentile(behind, 99))
    level.behind_clock_p99_s = float(np.percentile(behind_clock, 99))
    level.rate_p50_bytes = float(np.median(got[-1])) / args.window
    level.bytes_per_s = float(got[-1].sum()) / args.window
    level.source_rate_bytes = float(fed[-1, 0]) / args.window
    if level.source_rate_bytes < 0.9 * bytes_per_s:
        level.notes.append(f"source sent only {level.source_rate_bytes:.0f} B/s")
    if level.connected < listeners:
        level.notes.append(
            f"{listeners - level.connected} not answered within {ANSWER_TIMEOUT:.0f} s"
        )
    return level


def icecast_side(args: argparse.Namespace, folder: Path) -> list[IcecastLevel]:
    """Icecast with its source, and every Icecast level."""
    results: list[IcecastLevel] = []
    with run_icecast(folder, max(args.icecast_levels) + 100, args.server_cpus) as (pid, port):
        until = time.time() + 3600
        ctx = mp.get_context("fork")
        sent = ctx.Value("q", 0, lock=False)  # one writer: the source
        source = ctx.Process(
            target=source_main,
            args=(port, until, args.server_cpus, sent, args.icecast_bitrate),
            daemon=True,
        )
        source.start()
        try:
            time.sleep(3.0)  # the mount exists once the source has connected
            for listeners in args.icecast_levels:
                level = icecast_level(port, pid, sent, listeners, args)
                results.append(level)
                print(
                    f"  icecast {listeners:6} listeners: kept up {level.kept_up:.1%}, worst lag "
                    f"p99 {level.deficit_p99_s:.2f} s ({level.behind_clock_p99_s:.2f} s behind "
                    f"the clock), {level.rate_p50_bytes:.0f} B/s, accepted "
                    f"{level.accepted_per_s:.0f}/s, "
                    f"icecast CPU {level.server_cpu:.3f}, generator "
                    f"{level.generator_cpu_max:.0%} (waited {level.generator_wait:.0%})",
                    flush=True,
                )
                time.sleep(1.0)
        finally:
            source.kill()
            source.join(timeout=5)
    return results


# ---- LL-DASH through Varnish or the relay -------------------------------------------------

DASH_KINDS = {
    "varnish-dash": False,
    "varnish-dash+feed": True,
    "relay-dash": False,
    "relay-dash+feed": True,
}
"""LL-DASH listeners through Varnish or `causerie relay`: segments only, or segments and the
live events."""


@dataclass
class DashLevel:
    kind: str
    listeners: int
    window: float
    segments: int = 0  # segments judged
    on_time: float = 0.0  # share of (listener, segment): every chunk before the next was due
    chunks_on_time: float = 0.0
    missing: float = 0.0
    delay_p50_ms: float = float("nan")
    delay_p99_ms: float = float("nan")
    chunks_per_s: float = 0.0  # chunks all listeners received per second in the window
    listeners_worth: float = 0.0  # chunks_per_s / the chunk rate of one listener
    served_per_s: float = 0.0  # requests (segments and event windows) the edge served
    edge_cpu: float = 0.0
    origin_cpu: float = 0.0
    generator_cpu_max: float = 0.0
    generator_wait: float = 0.0
    errors: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def per_core(self) -> float:
        """Listeners' worth of chunks delivered per core of the edge."""
        return self.listeners_worth / self.edge_cpu if self.edge_cpu > 0 else float("nan")


async def _dash_listeners(
    port: int,
    manifest: _dash.Manifest,
    window: _dash.Window,
    feed: bool,
    delays: list[float],
    first_row: int,
) -> tuple[_dash.Tally, np.ndarray]:
    tally = _dash.Tally()
    listeners = [_dash.Listener(HOST, port, manifest, window, tally, feed) for _ in delays]
    tasks = [asyncio.create_task(x.run(d)) for x, d in zip(listeners, delays, strict=True)]
    await asyncio.sleep(max(0.0, window.start - time.time()))
    cpu0, wait0 = time.process_time(), run_queue_seconds(os.getpid())
    await asyncio.sleep(max(0.0, window.end - time.time()))
    tally.cpu_seconds = time.process_time() - cpu0
    tally.wait_seconds = run_queue_seconds(os.getpid()) - wait0
    async with asyncio.timeout(window.stop - time.time() + 15):
        await asyncio.gather(*tasks)
    return tally, _dash.chunk_table(listeners, first_row)


def dash_worker(
    port: int,
    manifest: _dash.Manifest,
    window: _dash.Window,
    feed: bool,
    delays: list[float],
    first_row: int,
    cpus: set[int] | None,
    out: Pipe,
) -> None:
    """Process entry: listeners starting after `delays`; sends back (tally, chunk table)."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_fd_limit()
    out.send(uvloop.run(_dash_listeners(port, manifest, window, feed, delays, first_row)))
    out.close()


def dash_reference_main(
    port: int, manifest: _dash.Manifest, stop: float, cpus: set[int] | None, out: Pipe
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    out.send(uvloop.run(_dash.reference(port, HOST, manifest, stop)))
    out.close()


def dash_level(
    kind: str,
    origin: CauserieProcess,
    edge: RunningEdge,
    manifest: _dash.Manifest,
    listeners: int,
    args: argparse.Namespace,
) -> DashLevel:
    """`listeners` LL-DASH listeners through `edge`, joining over a ramp; judged over the
    `--dash-window` against a reference that reads the same segments from the origin."""
    ramp = max(1.0, listeners / args.dash_connect_rate)
    start = time.time() + 0.5
    window_start = start + ramp + args.settle
    window = _dash.Window(
        window_start, window_start + args.dash_window, window_start + args.dash_window + 1.0
    )
    ctx = mp.get_context("fork")
    workers = max(1, min(args.workers, listeners))
    procs, pipes = [], []
    first_row = 0
    for w in range(workers):
        count = listeners // workers + (1 if w < listeners % workers else 0)
        # Joins interleaved over the workers, evenly over the ramp.
        delays = [start - time.time() + ramp * (first_row + n) / listeners for n in range(count)]
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=dash_worker,
            args=(edge.port, manifest, window, DASH_KINDS[kind], delays, first_row,
                  args.client_cpus, sender),
            daemon=True,
        )  # fmt: skip
        proc.start()
        sender.close()
        procs.append(proc)
        pipes.append(receiver)
        first_row += count
    ref_receiver, ref_sender = ctx.Pipe(duplex=False)
    reference = ctx.Process(
        target=dash_reference_main,
        args=(origin.port, manifest, window.stop, args.client_cpus, ref_sender),
        daemon=True,
    )
    reference.start()
    ref_sender.close()
    try:
        pids = edge.pids()
        time.sleep(max(0.0, window.start - time.time()))
        edge_cpu0, origin_cpu0 = edges._cpu(pids), cpu_seconds(origin.pid)
        time.sleep(max(0.0, window.end - time.time()))
        edge_cpu = (edges._cpu(pids) - edge_cpu0) / args.dash_window
        origin_cpu = (cpu_seconds(origin.pid) - origin_cpu0) / args.dash_window
        results = [pipe.recv() for pipe in pipes]
        ready: dict[int, list[float]] = ref_receiver.recv()
    finally:
        for proc in [*procs, reference]:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    level = DashLevel(kind, listeners, args.dash_window, edge_cpu=edge_cpu, origin_cpu=origin_cpu)
    tallies = [t for t, _ in results]
    table = np.concatenate([t for _, t in results], axis=1)
    judged = _dash.judge(table, ready, listeners, window, manifest.chunk_seconds)
    level.segments = judged.segments
    level.on_time, level.chunks_on_time = judged.on_time, judged.chunks_on_time
    level.missing = judged.missing
    level.delay_p50_ms, level.delay_p99_ms = judged.delay_p50_ms, judged.delay_p99_ms
    level.chunks_per_s = sum(t.chunks for t in tallies) / args.dash_window
    level.listeners_worth = level.chunks_per_s * manifest.chunk_seconds
    level.served_per_s = (
        sum(t.segment_requests + t.feed_requests for t in tallies) / args.dash_window
    )
    level.errors = sum(t.errors for t in tallies)
    level.generator_cpu_max = max(t.cpu_seconds for t in tallies) / args.dash_window
    level.generator_wait = max(t.wait_seconds for t in tallies) / args.dash_window
    if level.generator_cpu_max > edges.SATURATED:
        level.notes.append("load generator saturated")
    return level


# ---- runs -----------------------------------------------------------------------------------


def parse_cpus(text: str) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


HLS_KINDS = ("varnish", "nginx")
NODE_LAUNCHER = (
    "import os, sys; from causerie.api import dash; from causerie.media import pipeline; "
    "n = int(os.environ['BENCH_PARTS_PER_CHUNK']); "
    "seconds = float(os.environ['BENCH_SEGMENT_SECONDS']); "
    "defaults = pipeline.LivePipeline.__init__.__kwdefaults__; "
    "defaults['frames_per_part'] = 10 * n; defaults['parts_per_segment'] = 18 // n; "
    "dash.SEGMENT_SECONDS = seconds; dash.AHEAD_SECONDS = seconds + 0.16; "
    "from causerie.cli import main; sys.exit(main())"
)
"""The node with parts (hence LL-DASH chunks) of n x 213 ms, HLS segments of 3.84 s, and LL-DASH
segments of another length: benchmark-only switches, not settings."""


@dataclass
class Row:
    """One level of one kind in one run, for the tables."""

    run: int
    kind: str
    listeners: int
    on_time: float
    delay_p99_ms: float
    server_cpu: float
    per_core: float
    generator_cpu: float
    generator_wait: float
    notes: str
    detail: dict[str, Any]


def _row(run: int, level: edges.Level | DashLevel | IcecastLevel) -> Row:
    if isinstance(level, IcecastLevel):
        return Row(run, "icecast", level.listeners, level.kept_up, level.deficit_p99_s * 1000,
                   level.server_cpu, level.per_core, level.generator_cpu_max,
                   level.generator_wait, "; ".join(level.notes),
                   {**asdict(level), "per_core": level.per_core})  # fmt: skip
    if isinstance(level, DashLevel):
        notes = [f"chunks on time {level.chunks_on_time:.1%}", *level.notes]
        if level.errors:
            notes.append(f"{level.errors} errors")
        return Row(run, level.kind, level.listeners, level.on_time, level.delay_p99_ms,
                   level.edge_cpu, level.per_core, level.generator_cpu_max, level.generator_wait,
                   "; ".join(notes), {**asdict(level), "per_core": level.per_core})  # fmt: skip
    return Row(run, level.kind, level.listeners, level.on_time, level.delay_p99_ms,
               level.edge_cpu, _hls_per_core(level), level.generator_cpu_max,
               level.generator_wait, "; ".join(level.notes),
               {**asdict(level), "per_core": _hls_per_core(level)})  # fmt: skip


def run_kind(
    kind: str,
    run: int,
    origin: CauserieProcess,
    manifest: _dash.Manifest,
    args: argparse.Namespace,
    tmp: Path,
) -> list[Row]:
    """Every level of one kind, on a fresh edge (or Icecast)."""
    rows = []
    folder = tmp / f"{kind}-{run}"
    if kind == "icecast":
        return [_row(run, x) for x in icecast_side(args, folder)]
    dash = kind in DASH_KINDS
    levels = args.dash_levels if dash else args.levels
    # The edge sized as `causerie edge-config --listeners N` sizes it for the largest level.
    program = kind.partition("-")[0] if dash else kind
    with edges.run_edge(
        program,
        origin,
        folder,
        listeners=max(levels),
        cpus=args.server_cpus,
        varnish_params=tuple(args.varnish_param),
        relay_workers=args.relay_workers,
    ) as edge:
        for listeners in levels:
            if dash:
                level: edges.Level | DashLevel = dash_level(
                    kind, origin, edge, manifest, listeners, args
                )
            else:
                level = edges.measure(kind, origin, [edge], listeners, args)
            row = _row(run, level)
            rows.append(row)
            print(
                f"  run {run} {kind:18} {listeners:6}: on time {row.on_time:.1%}, p99 "
                f"{row.delay_p99_ms:.0f} ms, edge CPU {row.server_cpu:.3f}, per core "
                f"{row.per_core:.0f}, generator {row.generator_cpu:.0%} (waited "
                f"{row.generator_wait:.0%}) {row.notes}",
                flush=True,
            )
            time.sleep(1.0)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kinds",
        type=lambda s: s.split(","),
        default=[
            "varnish-dash",
            "varnish-dash+feed",
            "relay-dash",
            "relay-dash+feed",
            "icecast",
            "varnish",
            "nginx",
        ],
        help="varnish-dash, varnish-dash+feed, relay-dash, relay-dash+feed, varnish, nginx, "
        "icecast (in this order per run)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs, each over every kind")
    parser.add_argument("--levels", type=parse_ints, default=[250, 500, 1000])
    parser.add_argument("--dash-levels", type=parse_ints, default=[500, 1000, 2000])
    parser.add_argument("--icecast-levels", type=parse_ints, default=[1000, 2000, 5000])
    parser.add_argument("--window", type=float, default=8.0, help="LL-HLS and Icecast, s")
    parser.add_argument("--dash-window", type=float, default=16.0, help="LL-DASH, s")
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tries", type=int, default=1, help="tries of a disturbed LL-HLS level")
    parser.add_argument("--connect-rate", type=float, default=2000.0, help="Icecast listeners/s")
    parser.add_argument("--dash-connect-rate", type=float, default=2000.0, help="listeners/s")
    parser.add_argument("--slack", type=float, default=1.0, help="Icecast: seconds of audio")
    parser.add_argument("--icecast-bitrate", type=int, default=64_000, help="bit/s")
    parser.add_argument(
        "--parts-per-chunk", type=int, default=1, help="LL-DASH chunk = this many 213 ms parts"
    )
    parser.add_argument(
        "--segment-seconds", type=float, default=3.84, help="LL-DASH segment (3.84 x n)"
    )
    parser.add_argument(
        "--varnish-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra varnishd -p (repeatable), after the generated ones",
    )
    parser.add_argument(
        "--relay-workers", type=int, default=1, help="causerie relay processes (--workers)"
    )
    parser.add_argument("--server-cpus", type=parse_cpus, default={0})
    parser.add_argument("--client-cpus", type=parse_cpus, default={1})
    args = parser.parse_args()
    unknown = set(args.kinds) - {*DASH_KINDS, *HLS_KINDS, "icecast"}
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    if args.parts_per_chunk < 1 or 18 % args.parts_per_chunk:
        parser.error("--parts-per-chunk divides 18 (the parts of a 3.84 s segment)")
    if args.segment_seconds / 3.84 != round(args.segment_seconds / 3.84):
        parser.error("--segment-seconds is a multiple of 3.84")
    switched = args.parts_per_chunk != 1 or args.segment_seconds != 3.84
    if switched and set(args.kinds) & set(HLS_KINDS):
        parser.error("--parts-per-chunk changes the LL-HLS parts too: LL-DASH kinds only")
    # icecast2 drops its parent-death signal when it switches to `nobody`: make SIGTERM unwind
    # the `with` blocks, so that it is stopped with the rest.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if "icecast" in args.kinds:
        ensure_program("icecast2", "icecast2")
    raise_fd_limit()
    started = time.monotonic()
    rows: list[Row] = []
    loads: list[str] = []
    launcher = NODE_LAUNCHER if switched else None
    if launcher:
        os.environ["BENCH_PARTS_PER_CHUNK"] = str(args.parts_per_chunk)
        os.environ["BENCH_SEGMENT_SECONDS"] = str(args.segment_seconds)
    with (
        tempfile.TemporaryDirectory(prefix="causerie-fanout-") as tmp_name,
        run_causerie(cpus=args.server_cpus, launcher=launcher) as origin,
    ):
        manifest = _dash.fetch_manifest(origin.url, origin.space_id)
        print(
            f"origin pid {origin.pid}, space {origin.space_id}, DASH chunk "
            f"{manifest.chunk_seconds * 1000:.0f} ms, segment {manifest.segment_seconds} s",
            flush=True,
        )
        for run in range(1, args.runs + 1):
            loads.append(load_average())
            print(f"run {run}: load average {loads[-1]}", flush=True)
            for kind in args.kinds:
                rows += run_kind(kind, run, origin, manifest, args, Path(tmp_name))
        loads.append(load_average())
    report(rows, args, loads, time.monotonic() - started, manifest.chunk_seconds)


REQUESTS_PER_LISTENER = 2 / edges.PART_SECONDS  # a blocking reload and a part per part


def _hls_per_core(level: edges.Level) -> float:
    """Listeners' worth of work one core of the edge does: requests it served per second / 9.4
    (one listener's), per core of its CPU. Listeners who fell behind ask less: counting their
    heads instead would flatter an overloaded edge."""
    served = level.served_per_s / REQUESTS_PER_LISTENER
    return served / level.edge_cpu if level.edge_cpu > 0 else float("nan")


def _kept(rows: list[Row]) -> int:
    """The most listeners kept on time (>= 99 %) among these levels; 0 if none was."""
    return max((x.listeners for x in rows if x.on_time >= KEPT), default=0)


def report(
    rows: list[Row], args: argparse.Namespace, loads: list[str], elapsed: float, chunk: float
) -> None:
    print()
    print_table(
        ["run", "server", "listeners", "on time", "delay/lag p99", "server CPU", "per core",
         "gen CPU", "gen wait", "notes"],
        [[x.run, x.kind, x.listeners, f"{x.on_time:.1%}", f"{x.delay_p99_ms:.0f} ms",
          x.server_cpu, x.per_core, f"{x.generator_cpu:.0%}", f"{x.generator_wait:.0%}", x.notes]
         for x in rows],
    )  # fmt: skip
    # Per run and kind: listeners per core = the median over the levels kept on time (a server
    # that fell behind writes several chunks per wake-up, which flatters its CPU per chunk);
    # over all its levels, marked "*", if none was kept. The ratio to Icecast is taken within
    # the run (the same machine state), then the median over runs.
    per_run: dict[str, dict[int, float]] = {}
    flagged: dict[str, dict[int, bool]] = {}
    kept: dict[str, list[int]] = {}
    for kind in args.kinds:
        for run in range(1, args.runs + 1):
            mine = [x for x in rows if x.kind == kind and x.run == run]
            if not mine:
                continue
            counted = [x for x in mine if x.on_time >= KEPT] or mine
            per_run.setdefault(kind, {})[run] = median([x.per_core for x in counted])
            flagged.setdefault(kind, {})[run] = counted is mine
            kept.setdefault(kind, []).append(_kept(mine))
    ice = per_run.get("icecast", {})
    summary: dict[str, dict[str, Any]] = {}
    table = []
    for kind, runs in per_run.items():
        ratios = {r: runs[r] / ice[r] for r in runs if r in ice and ice[r] > 0}
        summary[kind] = {
            "per_core_by_run": runs,
            "not_kept_runs": [r for r, flag in flagged[kind].items() if flag],
            "per_core_median": median(list(runs.values())),
            "ratio_by_run": ratios,
            "ratio_median": median(list(ratios.values())),
            "kept_by_run": kept[kind],
        }
        mark = {r: "*" if flagged[kind][r] else "" for r in runs}
        table.append(
            [kind, " / ".join(str(k) for k in kept[kind]), median(list(runs.values())),
             " / ".join(f"{v:.0f}{mark[r]}" for r, v in runs.items()),
             median(list(ratios.values())),
             " / ".join(f"{v:.3f}{mark[r]}" for r, v in ratios.items())]
        )  # fmt: skip
    print()
    print_table(
        [
            "server",
            "most kept on time (by run)",
            "per core (median)",
            "per core by run",
            "/ icecast (median)",
            "by run",
        ],
        table,
    )
    print(
        f"\non time: LL-DASH: every chunk of a segment arrived <= one chunk ({chunk * 1000:.0f} "
        "ms) after a direct client of the origin had it (share of listener-segments); LL-HLS: "
        "a part <= 213 ms after it was ready at the origin (share of listener-parts); Icecast: "
        f"never more than {args.slack} s of audio behind what the source had sent. Kept at "
        f">= {KEPT:.0%}. per core = listeners' worth of work delivered (LL-DASH chunks / "
        f"{1 / chunk:.2f} per s, LL-HLS requests / 9.4 per s, Icecast bytes / the source's "
        "rate) / CPU of the edge's (or icecast2's) processes; per run: median over the levels "
        "kept on time (* none kept: over all levels)."
    )
    print(f"load average at each run's start and at the end: {' | '.join(loads)}; {elapsed:.0f} s")
    path = write_result(
        "fanout",
        {
            "command": command_line("fanout"),
            "load_averages": loads,
            "rows": [asdict(x) for x in rows],
            "summary": summary,
        },
    )
    print(f"\n{command_line('fanout')}\n(figures in {path.relative_to(Path.cwd())})")


if __name__ == "__main__":
    main()
