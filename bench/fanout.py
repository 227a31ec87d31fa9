"""Listeners one caching edge keeps on time following LL-HLS, beside Icecast, per core.

**LL-HLS through one edge.** One `causerie demo` origin and one edge of each `--kinds`
(varnish, nginx; configured by `causerie.edge.config` as `causerie edge-config` writes them),
both pinned to `--server-cpus` (0). Simulated hls.js listeners (the ones of `bench.edges`:
blocking playlist reload for the next part, then the part, one keep-alive connection each, raw
asyncio protocol on uvloop, `--workers` (2) processes pinned to `--client-cpus` (1)) at
`--levels` (250, 500, 1000). A part is on time for a listener if it had all of its bytes before
the next part was ready at the origin (delay <= one part, 213 ms; the moment it was ready comes
from a direct blocking client of the origin); a level is kept if >= 99 % of the listener-parts
of the `--window` (8 s) were on time (parts never received count as late).

**Icecast (the reference).** icecast2 (Debian's 2.4, a generated config, pinned to CPU 0) with
one mount fed by a source in its own process on CPU 0: ffmpeg encodes the project's demo audio
(`src/causerie/media/assets/demo-host.opus`, looped, `-re`) to MP3 at 32 kbit/s CBR, and the
source PUTs it to Icecast in 213 ms chunks (the LL-HLS part duration, so both servers push the
same number of chunks per second per listener). Listeners: plain `GET /stream.mp3` on raw
asyncio sockets that only count bytes (many per process, `--workers` processes on CPU 1), opened
at up to `--connect-rate` (2000/s, 16 at once per process: Icecast listens with a backlog of 5);
the window starts once all have their response headers (those without after 20 s are dropped and
reported; Icecast's accept rate is shown). Every 250 ms each listener's byte count is sampled. A
listener keeps up if during the window it never fell behind what the source had sent by more
than `--slack` (1 s) of audio: bytes received since the window started >= bytes the source sent
since then - 1 s x 4000 B/s, at every sample (no underrun for a player holding one second; the
source's own pace, like the LL-HLS origin's, is not held against the server; the lag behind the
nominal 4000 B/s clock is shown too). A level is kept if >= 99 % of the listeners kept up.
`--icecast-levels` (1000, 2000, 5000).

**Per core.** The servers' CPU time (all processes and threads: the edge, or icecast2) from
/proc over the window; listeners per core = listeners' worth of work done / CPU (fraction of one
core), where the work is what was really delivered: LL-HLS requests served / 9.4 (one listener's
requests per second), Icecast bytes received / the source's rate (listeners who fell behind ask
for, or get, less: counting heads would flatter an overloaded server). The origin and the
Icecast source are not counted (they are the same for 10 or 10 million listeners). The ratio
edge / Icecast per core is the figure.

    .venv/bin/python -m bench.fanout [--kinds varnish,nginx] [--levels 250,500,1000]
        [--icecast-levels 1000,2000,5000] [--window 8]
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
from tests.harness.polling import wait_until
from tests.harness.ports import HOST, free_port
from tests.harness.processes import start_process, stop, tail

from bench import edges
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
BITRATE = 32_000
BYTES_PER_S = BITRATE // 8
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


async def _source(port: int, until: float, sent: Any) -> None:
    """ffmpeg -> MP3 32 kbit/s -> PUT to Icecast, in chunks of one part's duration."""
    ffmpeg = await asyncio.create_subprocess_exec(
        *["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1"],
        *["-i", str(ASSET), "-ac", "1", "-ar", "44100", "-c:a", "libmp3lame"],
        *["-b:a", "32k", "-flush_packets", "1", "-f", "mp3", "pipe:1"],
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


def source_main(port: int, until: float, cpus: set[int] | None, sent: Any) -> None:
    """Process entry: the Icecast source; `sent` (a shared counter) counts the bytes sent."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    uvloop.run(_source(port, until, sent))


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
    behind = (fed - got).max(axis=0) / BYTES_PER_S
    behind_clock = (elapsed * BYTES_PER_S - got).max(axis=0) / BYTES_PER_S
    level.kept_up = int(np.sum(behind <= args.slack)) / level.connected
    level.deficit_p99_s = float(np.percentile(behind, 99))
    level.behind_clock_p99_s = float(np.percentile(behind_clock, 99))
    level.rate_p50_bytes = float(np.median(got[-1])) / args.window
    level.bytes_per_s = float(got[-1].sum()) / args.window
    level.source_rate_bytes = float(fed[-1, 0]) / args.window
    if level.source_rate_bytes < 0.9 * BYTES_PER_S:
        level.notes.append(f"source sent only {level.source_rate_bytes:.0f} B/s")
    if level.connected < listeners:
        level.notes.append(
            f"{listeners - level.connected} not answered within {ANSWER_TIMEOUT:.0f} s"
        )
    return level


# ---- main ---------------------------------------------------------------------------------


def parse_cpus(text: str) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def hls_side(args: argparse.Namespace, tmp: Path) -> list[edges.Level]:
    results: list[edges.Level] = []
    with run_causerie(cpus=args.server_cpus) as origin:
        print(f"origin pid {origin.pid}, space {origin.space_id}", flush=True)
        for kind in args.kinds:
            with edges.run_edge(
                kind,
                origin,
                tmp / kind,
                listeners=max(args.levels),
                cpus=args.server_cpus,
            ) as edge:
                for listeners in args.levels:
                    level = edges.measure(kind, origin, [edge], listeners, args)
                    results.append(level)
    return results


def icecast_side(args: argparse.Namespace, tmp: Path) -> list[IcecastLevel]:
    results: list[IcecastLevel] = []
    with run_icecast(tmp / "icecast", max(args.icecast_levels) + 100, args.server_cpus) as (
        pid,
        port,
    ):
        until = time.time() + 3600
        ctx = mp.get_context("fork")
        sent = ctx.Value("q", 0, lock=False)  # one writer: the source
        source = ctx.Process(
            target=source_main, args=(port, until, args.server_cpus, sent), daemon=True
        )
        source.start()
        try:
            time.sleep(3.0)  # the mount exists once the source has connected
            print(f"icecast2 pid {pid}, port {port}", flush=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=["varnish", "nginx"])
    parser.add_argument("--levels", type=parse_ints, default=[250, 500, 1000])
    parser.add_argument("--icecast-levels", type=parse_ints, default=[1000, 2000, 5000])
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tries", type=int, default=1, help="tries of a disturbed LL-HLS level")
    parser.add_argument("--connect-rate", type=float, default=2000.0, help="Icecast listeners/s")
    parser.add_argument("--slack", type=float, default=1.0, help="seconds of audio")
    parser.add_argument("--server-cpus", type=parse_cpus, default={0})
    parser.add_argument("--client-cpus", type=parse_cpus, default={1})
    parser.add_argument("--skip", choices=["hls", "icecast"], help="leave one side out")
    args = parser.parse_args()
    # icecast2 drops its parent-death signal when it switches to `nobody`: make SIGTERM unwind
    # the `with` blocks, so that it is stopped with the rest.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.skip != "icecast":
        ensure_program("icecast2", "icecast2")
    raise_fd_limit()
    started = time.monotonic()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="causerie-fanout-") as tmp_name:
        tmp = Path(tmp_name)
        hls = hls_side(args, tmp) if args.skip != "hls" else []
        icecast = icecast_side(args, tmp) if args.skip != "icecast" else []
    report(hls, icecast, args, load_before, time.monotonic() - started)


REQUESTS_PER_LISTENER = 2 / edges.PART_SECONDS  # a blocking reload and a part per part


def _hls_per_core(level: edges.Level) -> float:
    """Listeners' worth of work one core of the edge does: requests it served per second / 9.4
    (one listener's), per core of its CPU. Listeners who fell behind ask less: counting their
    heads instead would flatter an overloaded edge."""
    served = level.served_per_s / REQUESTS_PER_LISTENER
    return served / level.edge_cpu if level.edge_cpu > 0 else float("nan")


def report(
    hls: list[edges.Level],
    icecast: list[IcecastLevel],
    args: argparse.Namespace,
    load_before: str,
    elapsed: float,
) -> None:
    print()
    print_table(
        ["server", "listeners", "on time", "delay/lag p99", "server CPU", "per core", "gen CPU",
         "gen wait", "notes"],
        [
            *[
                [
                    f"{x.kind} edge",
                    x.listeners,
                    f"{x.on_time:.1%}",
                    f"{x.delay_p99_ms:.0f} ms",
                    x.edge_cpu,
                    _hls_per_core(x),
                    f"{x.generator_cpu_max:.0%}",
                    f"{x.generator_wait:.0%}",
                    "; ".join(x.notes),
                ]
                for x in hls
            ],
            *[
                [
                    "icecast",
                    x.listeners,
                    f"{x.kept_up:.1%}",
                    f"{x.deficit_p99_s * 1000:.0f} ms",
                    x.server_cpu,
                    x.per_core,
                    f"{x.generator_cpu_max:.0%}",
                    f"{x.generator_wait:.0%}",
                    "; ".join(x.notes),
                ]
                for x in icecast
            ],
        ],
    )  # fmt: skip
    print()
    summary: dict[str, Any] = {}
    rows = []
    for kind in args.kinds:
        kept = [x for x in hls if x.kind == kind and x.on_time >= KEPT]
        top = max(kept, key=lambda x: x.listeners) if kept else None
        measured = [_hls_per_core(x) for x in hls if x.kind == kind]
        per_core_any = median(measured)
        summary[kind] = {
            "kept": top.listeners if top else 0,
            "per_core_kept": _hls_per_core(top) if top else float("nan"),
            "per_core_by_cpu": per_core_any,
        }
        rows.append(
            [
                f"{kind} edge (LL-HLS)",
                top.listeners if top else "none",
                _hls_per_core(top) if top else "-",
                per_core_any,
            ]
        )
    kept_ice = [x for x in icecast if x.kept]
    top_ice = max(kept_ice, key=lambda x: x.listeners) if kept_ice else None
    if icecast:
        summary["icecast"] = {
            "kept": top_ice.listeners if top_ice else 0,
            "per_core_kept": top_ice.per_core if top_ice else float("nan"),
            "per_core_by_cpu": median([x.per_core for x in icecast]),
        }
        rows.append(
            [
                "icecast (32 kbit/s MP3)",
                top_ice.listeners if top_ice else "none",
                top_ice.per_core if top_ice else "-",
                median([x.per_core for x in icecast]),
            ]
        )
    print_table(
        ["server", "most kept on time", "per core (at it)", "per core (median of levels)"],
        rows,
    )
    ratios = {}
    ice = summary.get("icecast", {}).get("per_core_by_cpu")
    for kind in args.kinds:
        ours = summary.get(kind, {}).get("per_core_by_cpu")
        if ice and ours:
            ratios[kind] = ours / ice
            print(f"{kind} edge / icecast, listeners per core (medians): {ratios[kind]:.3f}")
    print(
        f"\non time: LL-HLS part received <= 213 ms after it was ready at the origin, Icecast "
        f"listener never more than {args.slack} s of audio behind what the source had sent; a "
        "level is kept at "
        f">= {KEPT:.0%}. per core = listeners' worth of work delivered (LL-HLS requests / 9.4, "
        "Icecast bytes / the source's rate) / server CPU (the edge or icecast2 alone)."
    )
    print(f"load average before {load_before}, after {load_average()}; {elapsed:.0f} s")
    path = write_result(
        "fanout",
        {
            "command": command_line("fanout"),
            "hls": [{**asdict(x), "per_core": _hls_per_core(x)} for x in hls],
            "icecast": [{**asdict(x), "per_core": x.per_core, "kept": x.kept} for x in icecast],
            "summary": summary,
            "ratios": ratios,
        },
    )
    print(f"\n{command_line('fanout')}\n(figures in {path.relative_to(Path.cwd())})")


if __name__ == "__main__":
    main()
