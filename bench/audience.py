"""What one causerie process absorbs from its audience: heartbeats, reactions, SSE event streams.

Against the live demo space of one `causerie demo` process (pinned to --server-cpus; this
process and wrk on --client-cpus), after joining `--tokens` (2000) listeners: distinct tokens.

1. Heartbeats (`POST /api/spaces/{id}/heartbeat`, the next listener's token each request). wrk
   (C, one thread, closed loop, 64 connections, a Lua table of the requests) runs `--wrk-runs`
   (3) times `--wrk-seconds` (2 s), interleaved with the other request kinds: the most the
   process serves (median run; runs while the server waited for a CPU > 30 % of the time are
   left out if others were not), and requests/s per core of server CPU (median). Then an
   open-loop paced client (this process: raw asyncio protocol on uvloop, `--pool` (64)
   keep-alive connections; a request due while all are busy waits for one) offers 70, 85, 100,
   115, 130, 150, 175, 200 % of wrk's best run for `--step-seconds` (3 s) each, until a level
   fails (if 70 % fails: 50, 35, 25, 15 % until one holds); latency counts from when a request
   was *due* (no coordinated omission); the first 0.5 s is warm-up. The figure: the highest rate
   with p99 < 50 ms (with the server's CPU at it, and that rate per core). A try that fails
   while the server or this process waited for a CPU more than 30 % of the time does not count:
   it is tried again (at most 2 x `--tries` attempts). A level whose first counted try fails
   gets `--tries` (3) counted tries and is kept if their median p99 is under 50 ms. The
   reference, measured the same way and interleaved level by level: the same process's
   `GET /healthz` (same stack, no work).
2. Reactions (`POST .../reactions {"emoji":"👏"}`), the same way, three ways:
   - "many IPs": distinct tokens, each with its own `X-Forwarded-For: 10.x.y.z`, which
     uvicorn trusts from 127.0.0.1 by default (as behind a reverse proxy on the same host):
     the per-IP limit never bites and 2000 tokens keep the per-token one (3/s) out of reach,
     so everything is absorbed (202);
   - "one IP": distinct tokens, all from 127.0.0.1: the per-IP limit (100/s, burst 500)
     answers most with 429 + Retry-After: "absorbed" (202/s) vs "refused politely" (429/s);
   - "one token" (wrk only): the per-token limit (3/s, burst 10) refuses nearly everything.
3. SSE fan-out. K clients (`--sse-clients` 500,1000,2000,3000,4000: opened level by level,
   kept open) follow `GET /api/spaces/{id}/events` on raw asyncio sockets in this process,
   which records when each chunk arrives. Each second for `--sse-events` (8) s the benchmark
   edits the demo space's title (PATCH with an account token of its host, `demo-host`, made
   with `issue_account_token`): a `space` event, whose delay = its receipt at a client - when
   the PATCH was sent (an upper bound of publish -> receipt: it includes the PATCH's own
   handling, whose round trip is shown; it waits too when the loop is busy fanning out). It
   also sends a reaction: a `reactions` event at the server's next once-a-second tick, whose
   publish time is not visible from outside, so only its spread over the clients is shown.
   `listeners` and `speaking` events come too. "Every event": a client received every event
   id from the first edit's to the last edit's (ids are contiguous per space), within
   `--sse-grace` (5 s) of the last edit. On time: p99 delay < 1 s and every client
   connected. A level not on time is tried again like a paced level; median p99 decides.

On 2 cores shared with other people's work, latency figures depend on the neighbours: `+wait`
is the time the server's event loop (its main thread) was ready to run but waited for a CPU
(schedstat), marked `!` above 10 %. The per-core rates are the steadier figures. The whole run
is bounded by `--max-seconds` (225): levels left when it is reached are not tried (the figure
becomes a lower bound, marked `≥`).

Experiment: `--inline-deps` runs the same CLI with FastAPI's plain `def` dependencies (such as
`spaces.services`, in every control-plane endpoint) called inline on the event loop, as an
`async def` dependency would be, instead of in Starlette's thread pool (a thread hop each).

    .venv/bin/python -m bench.audience [--parts heartbeats,reactions,sse] [--step-seconds 3]
        [--sse-clients 500,1000,2000,3000,4000] [--tokens 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import uvloop
from tests.harness.causerie_process import CauserieProcess
from tests.harness.ports import HOST

from bench._common import (
    command_line,
    cpu_seconds,
    percentile,
    pin,
    print_table,
    raise_fd_limit,
    run_causerie,
    write_result,
)

SLO_P99 = 0.050  # seconds: a request rate is absorbed if p99 latency stays under this
DISTURBED = 0.10  # the server waited for a CPU this fraction of the time: marked "!"
RETRY_WAIT = 0.30  # a failure while the server or we waited for a CPU this much: not counted
SSE_RESERVE = 80.0  # seconds of --max-seconds kept for the SSE part
SSE_ON_TIME = 1.0  # seconds: SSE clients are kept on time if the p99 delay stays under this
# Paced rates, as fractions of wrk's best closed-loop run. Above 1 too: wrk's short runs catch
# the neighbours as well, so its best run can understate what the paced client sustains.
FRACTIONS = (0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 1.75, 2.0)
DOWN = (0.5, 0.35, 0.25, 0.15)  # if the first level fails (a busy machine), down until one holds
REACTION_BODY = '{"emoji":"👏"}'.encode()
DRAIN_SECONDS = 2.0  # after the schedule, how long answers are awaited
REFERENCE = "GET /healthz (ref.)"
HEARTBEAT = "heartbeat"
REACTIONS_IPS = "reactions, many IPs"
REACTIONS_IP = "reactions, one IP"
REACTIONS_TOKEN = "reactions, one token"


class _Try(Protocol):
    @property
    def good(self) -> bool: ...

    @property
    def disturbed(self) -> bool: ...


T = TypeVar("T", bound=_Try)


# ---- a raw HTTP/1.1 keep-alive client (any method; 204 without Content-Length) ------------


def _response(buffer: bytearray) -> tuple[int, bytes, int] | None:
    """(status, body, bytes used) of the complete response at the start of `buffer`."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop > 0 else len(head)])
    elif status in (204, 304) or status < 200:
        length = 0
    else:
        raise ValueError("a response without Content-Length: not for this client")
    total = end + 4 + length
    if len(buffer) < total:
        return None
    return status, bytes(buffer[end + 4 : total]), total


Callback = Callable[["_Conn", int, bytes], None]


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one request at a time; status 0 means the connection broke."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.callback: Callback | None = None
        self.closed = False
        self.index = 0  # the paced client's request number

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, callback: Callback) -> None:
        self.callback = callback
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.callback is not None:
            try:
                parsed = _response(self.buffer)
            except ValueError:
                self.close()
                return
            if parsed is None:
                return
            status, body, used = parsed
            del self.buffer[:used]
            callback, self.callback = self.callback, None
            callback(self, status, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        callback, self.callback = self.callback, None
        if callback is not None:
            callback(self, 0, b"")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int) -> _Conn:
    _transport, conn = await asyncio.get_running_loop().create_connection(_Conn, HOST, port)
    return conn


async def call(conn: _Conn, data: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send one request, await its response: (status, body)."""
    future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    def done(_conn: _Conn, status: int, body: bytes) -> None:
        if not future.done():
            future.set_result((status, body))

    conn.send(data, done)
    async with asyncio.timeout(timeout):
        return await future


def http_request(
    method: str,
    path: str,
    port: int,
    token: str | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body:
        lines.append("Content-Type: application/json")
    if method != "GET":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def forwarded_ip(n: int) -> str:
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


async def join_listeners(port: int, space_id: str, count: int, parallel: int = 16) -> list[str]:
    """`count` distinct listener tokens (joins, `parallel` keep-alive connections)."""
    data = http_request("POST", f"/api/spaces/{space_id}/join", port)
    tokens: list[str] = []

    async def worker(share: int) -> None:
        conn = await connect(port)
        try:
            for _ in range(share):
                status, body = await call(conn, data)
                if status != 200:
                    raise RuntimeError(f"join answered {status}: {body[:200]!r}")
                tokens.append(json.loads(body)["token"])
        finally:
            conn.close()

    shares = [count // parallel + (1 if i < count % parallel else 0) for i in range(parallel)]
    await asyncio.gather(*(worker(s) for s in shares if s))
    return tokens


# ---- what the server spends ----------------------------------------------------------------


@dataclass
class Usage:
    """CPU (fraction of one core) and time waiting for a CPU, of the server and of us."""

    server_cpu: float
    server_wait: float
    client_cpu: float
    client_wait: float


def loop_wait(pid: int) -> float:
    """Seconds the main thread of a process (its event loop) was ready to run but waited for a
    CPU (/proc/PID/schedstat). Its other threads are left out (in causerie, mostly the thread
    pool FastAPI runs plain `def` dependencies in): their own waits are not the loop's."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


class Meter:
    """CPU (all threads) and the event loop's wait for a CPU, of the server and of us."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = time.monotonic()
        self.cpu = cpu_seconds(pid)
        self.wait = loop_wait(pid)
        self.own = time.process_time()
        self.own_wait = loop_wait(os.getpid())

    def read(self) -> Usage:
        seconds = max(1e-9, time.monotonic() - self.start)
        return Usage(
            server_cpu=(cpu_seconds(self.pid) - self.cpu) / seconds,
            server_wait=(loop_wait(self.pid) - self.wait) / seconds,
            client_cpu=(time.process_time() - self.own) / seconds,
            client_wait=(loop_wait(os.getpid()) - self.own_wait) / seconds,
        )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---- wrk: the most a closed loop gets ------------------------------------------------------

WRK_SCRIPT = """\
local reqs = {{}}
local n = 0
counts = {{}}
local threads = {{}}
local tokens = {{ {tokens} }}

setup = function(thread) table.insert(threads, thread) end

init = function(args)
  for i, t in ipairs(tokens) do
    local headers = {{}}
    if t ~= "" then headers["Authorization"] = "Bearer " .. t end
    if {forwarded} then headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
        math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256) end
    local body = nil
    if [[{body}]] ~= "" then
      headers["Content-Type"] = "application/json"
      body = [[{body}]]
    elseif "{method}" ~= "GET" then
      headers["Content-Length"] = "0"
    end
    reqs[i] = wrk.format("{method}", "{path}", headers, body)
  end
end

request = function()
  n = n % #reqs + 1
  return reqs[n]
end

response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {{}}
  for _, thread in ipairs(threads) do
    for status, k in pairs(thread:get("counts")) do total[status] = (total[status] or 0) + k end
  end
  local parts = {{}}
  for status, k in pairs(total) do table.insert(parts, string.format('"%d":%d', status, k)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":%d,"status":{{%s}}}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")))
end
"""


@dataclass
class Load:
    """One kind of request: what to send, round-robin over `tokens`."""

    name: str
    method: str
    path: str
    tokens: list[str]  # [""] for no token
    body: bytes = b""
    forwarded: bool = False  # X-Forwarded-For: a distinct 10.x.y.z per token
    paced: bool = True  # also step the paced client (else wrk only)

    def requests(self, port: int) -> list[bytes]:
        return [
            http_request(
                self.method,
                self.path,
                port,
                token or None,
                self.body,
                {"X-Forwarded-For": forwarded_ip(i + 1)} if self.forwarded else None,
            )
            for i, token in enumerate(self.tokens)
        ]


def wrk_run(
    load: Load, port: int, connections: int, seconds: float, cpus: set[int] | None, pid: int
) -> dict[str, Any]:
    """wrk, one thread, `connections` connections, for `seconds`: req/s, latency, statuses."""
    with tempfile.TemporaryDirectory(prefix="causerie-audience-") as tmp:
        script = Path(tmp) / "load.lua"
        script.write_text(
            WRK_SCRIPT.format(
                tokens=", ".join(f'"{t}"' for t in load.tokens),
                forwarded="true" if load.forwarded else "false",
                body=load.body.decode(),
                method=load.method,
                path=load.path,
            )
        )
        meter = Meter(pid)
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "5s"]
        out = subprocess.run(
            [*command, "-s", str(script), f"http://{HOST}:{port}/"],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            preexec_fn=pin(cpus),
        )
        usage = meter.read()
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    duration = data["duration_us"] / 1e6
    status = {int(k): v for k, v in data["status"].items()}
    return {
        "connections": connections,
        "requests_per_s": data["requests"] / duration,
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "max_ms": data["max_us"] / 1000,
        "errors": data["errors"],
        "status_per_s": {k: v / duration for k, v in sorted(status.items())},
        "server_cpu": usage.server_cpu,
        "server_wait": usage.server_wait,
    }


# ---- the open-loop paced client ------------------------------------------------------------


@dataclass
class Step:
    """One offered rate for `seconds`, judged on the requests due after the warm-up."""

    offered: float
    achieved: float  # responses/s of requests due in the window
    p50_ms: float
    p99_ms: float
    max_ms: float
    status_per_s: dict[int, float]
    errors: int  # broken connections and requests unanswered DRAIN_SECONDS after the end
    send_lag_p99_ms: float  # how late we sent: our loop, or no idle connection (server slow)
    connections: int
    server_cpu: float
    server_wait: float
    client_cpu: float
    client_wait: float

    @property
    def kept(self) -> bool:
        return self.p99_ms < SLO_P99 * 1000

    good = kept

    @property
    def disturbed(self) -> bool:
        return max(self.server_wait, self.client_wait) > RETRY_WAIT

    def line(self) -> str:
        statuses = " ".join(f"{k}:{v:.0f}/s" for k, v in self.status_per_s.items())
        return (
            f"{self.offered:7.0f}/s offered  p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:7.1f} ms"
            f"  [{statuses}]  err {self.errors}  conns {self.connections}  sent late p99 "
            f"{self.send_lag_p99_ms:.1f} ms  server "
            f"{self.server_cpu:.0%} +wait {self.server_wait:.0%}  us {self.client_cpu:.0%}"
            f" +wait {self.client_wait:.0%}"
            f"{'' if self.kept else '  (p99 over)'}"
        )


async def paced(
    port: int, requests: Sequence[bytes], rate: float, seconds: float, pid: int, pool: int
) -> Step:
    """Send requests at `rate` per second for `seconds`, round-robin over `requests`.

    On `pool` keep-alive connections: a request due while all are busy waits for one (its
    latency counts from when it was due). A fixed pool, as a proxy in front would hold: a pool
    that grew during a stall would add a storm of new connections to the stall.
    """
    warmup = min(0.5, seconds / 4)
    count = max(1, int(rate * seconds))
    period = 1.0 / rate
    every = [await connect(port) for _ in range(pool)]
    idle: deque[_Conn] = deque(every)
    some_idle = asyncio.Event()
    latency = [float("nan")] * count
    status = [0] * count
    lags: list[float] = []
    finished = 0
    all_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    start = time.monotonic() + 0.02
    reconnects: set[asyncio.Task[None]] = set()

    async def reconnect() -> None:
        with contextlib.suppress(OSError):
            conn = await connect(port)
            every.append(conn)
            idle.append(conn)
            some_idle.set()

    def answered(conn: _Conn, code: int, _body: bytes) -> None:
        nonlocal finished
        i = conn.index
        latency[i] = time.monotonic() - (start + i * period)
        status[i] = code
        if code and not conn.closed:
            idle.append(conn)
            some_idle.set()
        else:
            task = asyncio.ensure_future(reconnect())
            reconnects.add(task)
            task.add_done_callback(reconnects.discard)
        finished += 1
        if finished == count and not all_done.done():
            all_done.set_result(None)

    meter = Meter(pid)
    i = 0
    hard_stop = start + seconds + 5.0
    while i < count:
        now = time.monotonic()
        due = start + i * period
        if now > hard_stop:
            break
        if due > now:
            # Not less: uvloop's timers tick in ms, and a shorter sleep would spin.
            await asyncio.sleep(max(due - now, 0.001))
            continue
        if not idle:
            some_idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(some_idle.wait(), max(0.001, hard_stop - now))
            continue
        conn = idle.popleft()
        conn.index = i
        lags.append(time.monotonic() - due)
        conn.send(requests[i % len(requests)], answered)
        i += 1
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(all_done), DRAIN_SECONDS)
    usage = meter.read()
    end = time.monotonic()
    for conn in every:
        conn.close()
    judged = [n for n in range(count) if n * period >= warmup]
    window = max(1e-9, (count - 1) * period - warmup)
    # Unanswered (or never sent) requests count with the time they have waited so far.
    waited = [
        latency[n] if latency[n] == latency[n] else end - (start + n * period) for n in judged
    ]
    codes = Counter(status[n] for n in judged if status[n])
    return Step(
        offered=rate,
        achieved=sum(codes.values()) / window,
        p50_ms=percentile(waited, 50) * 1000,
        p99_ms=percentile(waited, 99) * 1000,
        max_ms=max(waited) * 1000,
        status_per_s={k: v / window for k, v in sorted(codes.items())},
        errors=sum(1 for n in judged if not status[n]),
        send_lag_p99_ms=percentile(lags, 99) * 1000,
        connections=len(every),
        server_cpu=usage.server_cpu,
        server_wait=usage.server_wait,
        client_cpu=usage.client_cpu,
        client_wait=usage.client_wait,
    )


@dataclass
class Capacity:
    """One kind of request: wrk's closed-loop runs, then the paced steps."""

    name: str
    wrk_runs: list[dict[str, Any]]
    steps: list[list[Step]] = field(default_factory=list)  # tries per level
    cut: bool = False  # stopped by the time bound while every level so far was kept

    def _counted_runs(self) -> list[dict[str, Any]]:
        """wrk runs not disturbed (the server waited for a CPU < 30 %), else all that ran."""
        ran = [r for r in self.wrk_runs if r["requests_per_s"] > 0 and r["server_cpu"] > 0.05]
        return [r for r in ran if r["server_wait"] <= RETRY_WAIT] or ran or self.wrk_runs

    @property
    def wrk(self) -> dict[str, Any]:
        """The median wrk run by requests/s, of the undisturbed ones if any."""
        ordered = sorted(self._counted_runs(), key=lambda r: r["requests_per_s"])
        return ordered[(len(ordered) - 1) // 2]

    @property
    def wrk_best(self) -> float:
        """The most requests/s of any wrk run (the neighbours only ever take some away)."""
        return max(r["requests_per_s"] for r in self.wrk_runs)

    @property
    def per_core(self) -> float:
        """Median of requests/s per core of server CPU, over the same runs as `wrk`."""
        return statistics.median(
            r["requests_per_s"] / r["server_cpu"] if r["server_cpu"] > 0 else float("nan")
            for r in self._counted_runs()
        )

    def kept(self) -> list[tuple[float, list[Step]]]:
        return [(tries[0].offered, tries) for tries in self.steps if _level_kept(tries)]

    def best(self) -> tuple[float, Step] | None:
        kept = self.kept()
        if not kept:
            return None
        rate, tries = kept[-1]
        return rate, _median_try(tries)


def _strictly_counted(tries: list[T]) -> list[T]:
    """The tries that count: not those that failed while disturbed."""
    return [t for t in tries if t.good or not t.disturbed]


def _counted(tries: list[T]) -> list[T]:
    """The tries that count (all of them if every one failed while disturbed)."""
    return _strictly_counted(tries) or tries


def _enough(tries: list[T], wanted: int) -> bool:
    """Stop trying a level: its first counted try passed, or `wanted` counted, or 2x tried."""
    counted = _strictly_counted(tries)
    first_passed = len(counted) == 1 and counted[0].good and counted[0] is tries[-1]
    return first_passed or len(counted) >= wanted or len(tries) >= 2 * wanted


def _level_kept(tries: list[Step]) -> bool:
    return _median_try(tries).kept


def _median_try(tries: list[Step]) -> Step:
    ordered = sorted(_counted(tries), key=lambda t: t.p99_ms)
    return ordered[(len(ordered) - 1) // 2]


async def capacities(
    loads: list[Load], server: CauserieProcess, args: argparse.Namespace, cpus: set[int] | None
) -> list[Capacity]:
    """wrk runs of every load, interleaved; then paced levels, interleaved across loads.

    Interleaving puts the loads compared (heartbeat and its reference) under the same
    neighbours' load, as far as that goes.
    """
    runs: dict[str, list[dict[str, Any]]] = {load.name: [] for load in loads}
    for _ in range(args.wrk_runs):
        for load in loads:
            top = wrk_run(
                load, server.port, args.wrk_connections, args.wrk_seconds, cpus, server.pid
            )
            runs[load.name].append(top)
            statuses = " ".join(f"{k}:{v:.0f}/s" for k, v in top["status_per_s"].items())
            print(
                f"  {load.name}: wrk -c{args.wrk_connections}: {top['requests_per_s']:.0f} req/s"
                f" [{statuses}], p50 {top['p50_ms']:.1f} ms, p99 {top['p99_ms']:.1f} ms, server"
                f" {top['server_cpu']:.0%} +wait {top['server_wait']:.0%}",
                flush=True,
            )
    result = [Capacity(load.name, runs[load.name]) for load in loads]
    if args.step_seconds <= 0:
        return result
    # Per load: the fractions still to try. Up from FRACTIONS[0] while levels are kept; if the
    # first one fails, down through DOWN until one is kept.
    plans = {n: deque(FRACTIONS) for n, load in enumerate(loads) if load.paced}
    requests = {n: loads[n].requests(server.port) for n in plans}
    while plans:
        for n in list(plans):
            capacity, port, pid = result[n], server.port, server.pid
            if time.monotonic() > args.requests_deadline:
                print(f"    {capacity.name}: stopped by the time bound (--max-seconds)")
                capacity.cut = True
                del plans[n]
                continue
            fraction = plans[n].popleft()
            rate = max(10.0, round(fraction * capacity.wrk_best, -1))
            tries: list[Step] = []
            while not tries or not _enough(tries, args.tries):
                step = await paced(port, requests[n], rate, args.step_seconds, pid, args.pool)
                tries.append(step)
                again = "  (again)" if len(tries) > 1 else ""
                print(f"    {capacity.name}: {tries[-1].line()}{again}", flush=True)
            capacity.steps.append(tries)
            kept = _level_kept(tries)
            if not capacity.steps[1:] and not kept:
                plans[n] = deque(DOWN)  # the first level failed: look lower
            elif kept == (fraction < FRACTIONS[0]) or not plans[n]:
                del plans[n]  # found: the first kept going down, the first failed going up
    return result


# ---- SSE fan-out ---------------------------------------------------------------------------

EVENT = re.compile(rb"id: (\d+)\nevent: (\w+)\ndata: ([^\n]*)\n\n")
TITLE = re.compile(rb'"title":"([^"]*)"')
EDITS = itertools.count()  # numbers the edits' titles


class SseClient(asyncio.Protocol):
    """Follows one event stream; keeps every byte with the time it arrived (parsed later)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.ends: list[int] = []  # offset after each chunk
        self.times: list[float] = []  # when each chunk arrived
        self.connected_at: float | None = None  # the snapshot arrived
        self.failed = False
        self.lost_at: float | None = None
        self.parsed = 0  # offset up to which events were parsed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.data += data
        self.ends.append(len(self.data))
        self.times.append(now)
        if self.connected_at is None and not self.failed:
            if not self.data.startswith(b"HTTP/1.1 200"):
                self.failed = len(self.data) >= 12
            elif self.data.find(b"event: snapshot") >= 0:
                self.connected_at = now

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.monotonic()

    def events(self) -> list[tuple[int, bytes, float, bytes]]:
        """New complete events: (id, type, arrival time, data)."""
        found = []
        last = self.parsed
        for match in EVENT.finditer(self.data, self.parsed):
            at = self.times[bisect.bisect_left(self.ends, match.end())]
            found.append((int(match[1]), match[2], at, match[3]))
            last = match.end()
        self.parsed = last
        return found

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class FanOut:
    clients: int  # the level: clients asked for
    connected: int  # got their snapshot before the window
    connect_per_s: float  # the new clients of this level, snapshots received per second
    events: int  # events (ids) in the window
    timed_events: int  # `space` events from our PATCHes
    delay_p50_ms: float  # space events: receipt - PATCH sent, over (client, event) pairs
    delay_p99_ms: float
    delay_max_ms: float
    worst_event_p99_ms: float
    spread_p99_ms: float  # every event: receipt - its first receipt at any client
    reactions_spread_p99_ms: float
    got_every_event: float  # fraction of connected clients that got every event id
    lost: int  # connections that closed
    patch_p50_ms: float  # the PATCH's round trip
    deliveries: int  # (client, event) pairs received in the window
    server_us_per_delivery: float  # server CPU above idle in the window / deliveries
    server_cpu: float
    server_wait: float
    client_cpu: float
    client_wait: float
    server_rss_mb: float

    @property
    def on_time(self) -> bool:
        return self.delay_p99_ms < SSE_ON_TIME * 1000 and self.connected == self.clients

    good = on_time

    @property
    def disturbed(self) -> bool:
        return max(self.server_wait, self.client_wait) > RETRY_WAIT


async def open_clients(port: int, path: str, count: int, parallel: int = 100) -> list[SseClient]:
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n\r\n"
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)
    clients: list[SseClient] = []

    async def one() -> None:
        async with gate:
            try:
                _t, client = await loop.create_connection(SseClient, HOST, port)
            except OSError:
                return
            clients.append(client)
            assert client.transport is not None
            client.transport.write(request.encode())
            deadline = time.monotonic() + 10
            while client.connected_at is None and not client.failed:
                if client.lost_at is not None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)

    await asyncio.gather(*(one() for _ in range(count)))
    return clients


async def fan_out_level(
    server: CauserieProcess,
    clients: list[SseClient],
    level: int,
    account: str,
    reaction_token: str,
    args: argparse.Namespace,
    idle_cpu: float,
) -> FanOut:
    port, space = server.port, server.space_id
    began = time.monotonic()
    fresh = await open_clients(port, f"/api/spaces/{space}/events", level - len(clients))
    connect_seconds = time.monotonic() - began
    clients.extend(fresh)
    for client in clients:
        client.events()  # skip what came before the window
    await asyncio.sleep(1.0)
    for client in clients:
        client.events()
    live = [c for c in clients if c.connected_at is not None and c.lost_at is None]
    patch_conn, react_conn = await connect(port), await connect(port)
    sent: dict[bytes, float] = {}
    first_edit = ""
    patch_rtt: list[float] = []
    meter = Meter(server.pid)
    window_start = time.monotonic()
    for n in range(args.sse_events):
        due = window_start + n
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        title = f"bench-sse {level} #{next(EDITS)}"
        first_edit = first_edit or title
        body = json.dumps({"title": title}).encode()
        request = http_request("PATCH", f"/api/spaces/{space}", port, account, body)
        at = time.monotonic()
        status, answer = await call(patch_conn, request)
        patch_rtt.append(time.monotonic() - at)
        if status != 200:
            raise RuntimeError(f"PATCH answered {status}: {answer[:200]!r}")
        sent[title.encode()] = at
        react = http_request(
            "POST", f"/api/spaces/{space}/reactions", port, reaction_token, REACTION_BODY
        )
        await call(react_conn, react)
    # Until every client has the last edit's event (at most --sse-grace seconds).
    last_title = json.dumps(title).encode()  # with its quotes: "#1" is not "#10"
    pending = live
    deadline = time.monotonic() + args.sse_grace
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        pending = [c for c in pending if c.data.find(last_title, c.parsed) < 0]
    await asyncio.sleep(0.1)
    usage = meter.read()
    metered = time.monotonic() - window_start
    rss = rss_mb(server.pid)
    patch_conn.close()
    react_conn.close()

    received = [c.events() for c in live]
    first: dict[int, float] = {}
    for events in received:
        for event_id, _kind, at, _data in events:
            if at < first.get(event_id, float("inf")):
                first[event_id] = at
    # The window's events: from the first edit's to the last edit's (all published in the
    # window: edits, reactions, listener counts, who is speaking), by id.
    first_title = json.dumps(first_edit).encode()
    ids = {
        marker: [i for events in received for i, _k, _at, data in events if marker in data]
        for marker in (first_title, last_title)
    }
    first_id = min(ids[first_title], default=min(first, default=0))
    last_id = max(ids[last_title], default=max(first, default=0))
    expected = set(range(first_id, last_id + 1))
    delays: list[float] = []
    per_event: dict[bytes, list[float]] = {}
    spreads: list[float] = []
    reaction_spreads: list[float] = []
    complete = 0
    for events in received:
        got = set()
        titles = set()
        for event_id, kind, at, data in events:
            if event_id not in expected or event_id in got:
                continue
            got.add(event_id)
            spreads.append(at - first[event_id])
            if kind == b"reactions":
                reaction_spreads.append(at - first[event_id])
            if kind == b"space":
                match = TITLE.search(data)
                if match and match[1] in sent:
                    titles.add(match[1])
                    delay = at - sent[match[1]]
                    delays.append(delay)
                    per_event.setdefault(match[1], []).append(delay)
        complete += got >= expected and len(titles) == len(sent)
        # A PATCH whose event this client never got counts as late for ever.
        delays.extend([float("inf")] * (len(sent) - len(titles)))
    worst = max((percentile(v, 99) for v in per_event.values()), default=float("nan"))
    if len(per_event) < len(sent):
        worst = float("inf")
    finite = [d for d in delays if d != float("inf")]
    return FanOut(
        clients=level,
        connected=len(live),
        connect_per_s=len([c for c in fresh if c.connected_at]) / max(1e-9, connect_seconds),
        events=len(expected),
        timed_events=len(per_event),
        delay_p50_ms=percentile(delays, 50) * 1000,
        delay_p99_ms=percentile(delays, 99) * 1000,
        delay_max_ms=(max(finite) if finite else float("nan")) * 1000,
        worst_event_p99_ms=worst * 1000,
        spread_p99_ms=percentile(spreads, 99) * 1000,
        reactions_spread_p99_ms=percentile(reaction_spreads, 99) * 1000,
        got_every_event=complete / max(1, len(live)),
        lost=sum(1 for c in clients if c.lost_at is not None),
        patch_p50_ms=percentile(patch_rtt, 50) * 1000,
        deliveries=len(spreads),
        server_us_per_delivery=(usage.server_cpu - idle_cpu) * metered / max(1, len(spreads)) * 1e6,
        server_cpu=usage.server_cpu,
        server_wait=usage.server_wait,
        client_cpu=usage.client_cpu,
        client_wait=usage.client_wait,
        server_rss_mb=rss,
    )


async def fan_out(
    server: CauserieProcess,
    account: str,
    reaction_token: str,
    args: argparse.Namespace,
    fds: int,
    idle_cpu: float,
) -> list[list[FanOut]]:
    """Levels of K clients (kept connected from one level to the next): tries per level.

    A level that is not on time is tried again with the same clients, as a paced level is
    (`_enough`), and kept if the median p99 of its counted tries is under 1 s.
    """
    clients: list[SseClient] = []
    results: list[list[FanOut]] = []
    try:
        for level in sorted(int(x) for x in args.sse_clients.split(",") if x):
            if level + 200 > fds:
                print(f"  SSE {level}: skipped, the open-file limit is {fds}", flush=True)
                break
            tries: list[FanOut] = []
            while not tries or not _enough(tries, args.tries):
                needs = 3.5 + args.sse_events + (level - len(clients)) / 300
                if time.monotonic() + needs > args.deadline:
                    break
                try:
                    result = await fan_out_level(
                        server, clients, level, account, reaction_token, args, idle_cpu
                    )
                except (OSError, RuntimeError, TimeoutError) as exc:
                    print(f"  SSE {level}: the try failed ({exc!r}); no further level", flush=True)
                    return results
                tries.append(result)
                print(
                    f"  SSE {level}: {result.connected} connected "
                    f"({result.connect_per_s:.0f}/s), {result.events} events, space-event delay "
                    f"p50 {result.delay_p50_ms:.0f} ms p99 {result.delay_p99_ms:.0f} ms, every "
                    f"event {result.got_every_event:.1%}, server {result.server_cpu:.0%} +wait "
                    f"{result.server_wait:.0%}, {result.server_rss_mb:.0f} MB, us "
                    f"{result.client_cpu:.0%} +wait {result.client_wait:.0%}"
                    + ("  (again)" if len(tries) > 1 else ""),
                    flush=True,
                )
            if not tries:
                print(f"  SSE {level}: stopped by the time bound (--max-seconds)", flush=True)
                break
            results.append(tries)
            if not _fan_out_kept(tries):
                break
    finally:
        for client in clients:
            client.close()
        await asyncio.sleep(0.5)
    return results


def _fan_out_median(tries: list[FanOut]) -> FanOut:
    ordered = sorted(_counted(tries), key=lambda t: (t.connected < t.clients, t.delay_p99_ms))
    return ordered[(len(ordered) - 1) // 2]


def _fan_out_kept(tries: list[FanOut]) -> bool:
    return _fan_out_median(tries).on_time


# ---- the run -------------------------------------------------------------------------------

# An experiment, not the product: FastAPI calls a plain `def` dependency (such as
# `spaces.services`) through Starlette's thread pool, a thread hop per request; this launcher
# runs the same CLI with such dependencies called inline on the event loop, which is what an
# `async def` dependency gets.
INLINE_DEPS_LAUNCHER = """\
import sys
import fastapi.dependencies.utils as fastapi_dependencies

async def _inline(call, *args, **kwargs):
    return call(*args, **kwargs)

fastapi_dependencies.run_in_threadpool = _inline
from causerie.cli import main
sys.exit(main())
"""


# The "many IPs" load sends X-Forwarded-For from 127.0.0.1, as an edge on this machine would:
# the node believes it only from a trusted proxy.
TRUSTED_EDGE = ("--trusted-proxy", "127.0.0.1")


def parse_cpus(text: str) -> set[int] | None:
    return {int(x) for x in text.split(",") if x.strip()} or None


async def measure(
    server: CauserieProcess, args: argparse.Namespace, client_cpus: set[int] | None, fds: int
) -> dict[str, Any]:
    space = server.space_id
    meter = Meter(server.pid)
    await asyncio.sleep(2.0)
    idle = meter.read()
    print(
        f"  idle (media pipeline of the demo space): server {idle.server_cpu:.0%} of a core",
        flush=True,
    )
    began = time.monotonic()
    tokens = await join_listeners(server.port, space, args.tokens)
    joins_per_s = len(tokens) / (time.monotonic() - began)
    print(
        f"  joined {len(tokens)} listeners ({joins_per_s:.0f} joins/s, 16 connections)", flush=True
    )

    parts = set(args.parts.split(","))
    reactions = f"/api/spaces/{space}/reactions"
    loads = []
    if "heartbeats" in parts:
        loads.append(Load(REFERENCE, "GET", "/healthz", [""]))
        loads.append(Load(HEARTBEAT, "POST", f"/api/spaces/{space}/heartbeat", tokens))
    if "reactions" in parts:
        body = REACTION_BODY
        loads.append(Load(REACTIONS_IPS, "POST", reactions, tokens, body, forwarded=True))
        loads.append(Load(REACTIONS_IP, "POST", reactions, tokens, body))
        loads.append(Load(REACTIONS_TOKEN, "POST", reactions, tokens[:1], body, paced=False))
    measured = await capacities(loads, server, args, client_cpus) if loads else []

    sse: list[list[FanOut]] = []
    if "sse" in parts:
        from causerie.cli import issue_account_token

        # The demo space's host is the account "demo-host": an account token of it may edit it.
        account = issue_account_token(server.data_dir, "Host", "demo-host", days=1)
        await asyncio.sleep(1.0)  # the per-IP bucket of 127.0.0.1 refills a little
        sse = await fan_out(server, account, tokens[-1], args, fds, idle.server_cpu)
    return {
        "idle_server_cpu": idle.server_cpu,
        "joins_per_s": joins_per_s,
        "tokens": len(tokens),
        "capacities": measured,
        "sse": sse,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts", default="heartbeats,reactions,sse", help="what to measure (comma-separated)"
    )
    parser.add_argument("--tokens", type=int, default=2000, help="listeners joined first")
    parser.add_argument("--wrk-seconds", type=float, default=2.0)
    parser.add_argument("--wrk-runs", type=int, default=3, help="wrk runs per request kind")
    parser.add_argument("--wrk-connections", type=int, default=64)
    parser.add_argument("--step-seconds", type=float, default=3.0, help="per paced level")
    parser.add_argument("--pool", type=int, default=64, help="the paced client's connections")
    parser.add_argument("--tries", type=int, default=3, help="tries of a level that fails")
    parser.add_argument("--sse-clients", default="500,1000,2000,3000,4000")
    parser.add_argument("--sse-events", type=int, default=8, help="PATCHes, one a second")
    parser.add_argument(
        "--sse-grace", type=float, default=5.0, help="most seconds to await the last event"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=225.0, help="bound of the whole run (levels stop)"
    )
    parser.add_argument(
        "--inline-deps",
        action="store_true",
        help="experiment: FastAPI's sync dependencies called inline, not in the thread pool",
    )
    parser.add_argument("--server-cpus", default="0", help="CPUs of causerie ('' = any)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of wrk and this process")
    args = parser.parse_args()

    started = time.time()
    args.deadline = time.monotonic() + args.max_seconds
    sse_reserve = SSE_RESERVE if "sse" in args.parts.split(",") else 0.0
    args.requests_deadline = args.deadline - sse_reserve
    fds = raise_fd_limit()  # before the server starts: it inherits the limit
    server_cpus, client_cpus = parse_cpus(args.server_cpus), parse_cpus(args.client_cpus)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    launcher = INLINE_DEPS_LAUNCHER if args.inline_deps else None
    if args.inline_deps:
        print("experiment: FastAPI's plain `def` dependencies called inline (--inline-deps)")
    with run_causerie(server_cpus, launcher=launcher, extra=TRUSTED_EDGE) as server:
        print(
            f"causerie pid {server.pid} on CPUs {args.server_cpus or 'any'}, space "
            f"{server.space_id}; open-file limit {fds}",
            flush=True,
        )
        measured = uvloop.run(measure(server, args, client_cpus, fds))
    report(measured, args, time.time() - started)


def _usage(cpu: float, wait: float) -> str:
    return f"{cpu:.0%}+{wait:.0%}" + ("!" if wait > DISTURBED else "")


def _rate(capacity: Capacity) -> list[object]:
    top = capacity.wrk
    per_core = capacity.per_core
    statuses = top["status_per_s"]
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    cells: list[object] = [
        capacity.name,
        f"{top['requests_per_s']:.0f} ({ok:.0f}/{statuses.get(429, 0):.0f})",
        top["p99_ms"],
        _usage(top["server_cpu"], top["server_wait"]),
        per_core,
    ]
    best = capacity.best()
    if not capacity.steps:
        return [*cells, "-", "-", "-", "-", "-", "-"]
    if best is None:
        low = _median_try(min(capacity.steps, key=lambda tries: tries[0].offered))
        return [*cells, f"< {low.offered:.0f}", low.p99_ms, "-", "-", "-", "-"]
    rate, step = best
    absorbed = sum(v for k, v in step.status_per_s.items() if 200 <= k < 300)
    # Stopped by the time bound, or every level kept: the figure is a lower bound.
    lower = capacity.cut or (
        len(capacity.steps) == len(FRACTIONS) and _level_kept(capacity.steps[-1])
    )
    return [
        *cells,
        f"{'≥ ' if lower else ''}{rate:.0f}",
        step.p99_ms,
        absorbed,
        step.status_per_s.get(429, 0.0),
        _usage(step.server_cpu, step.server_wait),
        _paced_per_core(step),
    ]


def _paced_per_core(step: Step) -> float:
    return step.achieved / step.server_cpu if step.server_cpu > 0 else float("nan")


def report(measured: dict[str, Any], args: argparse.Namespace, elapsed: float) -> None:
    caps: list[Capacity] = measured["capacities"]
    by_name = {c.name: c for c in caps}
    lines: list[str] = []
    if caps:
        print(
            f"\nRequests per second one causerie process answers: wrk (closed loop, "
            f"-c{args.wrk_connections}; 2xx/429 per s), and the highest paced rate with "
            f"p99 < {SLO_P99 * 1000:.0f} ms (open loop):"
        )
        print_table(
            [
                "request",
                "wrk req/s (2xx/429)",
                "p99 ms",
                "server cpu+wait",
                "per core",
                "paced p99<50ms",
                "p99 ms",
                "2xx/s",
                "429/s",
                "server cpu+wait",
                "per core",
            ],
            [_rate(c) for c in caps],
        )
    if REFERENCE in by_name and HEARTBEAT in by_name:
        ref, beat = by_name[REFERENCE], by_name[HEARTBEAT]
        beat_best, ref_best = beat.best(), ref.best()
        paced_ratio = beat_best[0] / ref_best[0] if beat_best and ref_best else float("nan")
        per_core = beat.per_core / ref.per_core
        paced_core = (
            _paced_per_core(beat_best[1]) / _paced_per_core(ref_best[1])
            if beat_best and ref_best
            else float("nan")
        )
        lines.append(
            f"heartbeat / healthz (the reference): {paced_ratio:.2f} paced at p99 < 50 ms, "
            f"{beat.wrk['requests_per_s'] / ref.wrk['requests_per_s']:.2f} under wrk, "
            f"{per_core:.2f} per core under wrk, {paced_core:.2f} per core paced"
        )
    for name in (REACTIONS_IPS, REACTIONS_IP):
        best = by_name[name].best() if name in by_name else None
        if best:
            rate, step = best
            ok = sum(v for k, v in step.status_per_s.items() if 200 <= k < 300)
            lines.append(
                f"{name}: {rate:.0f}/s at p99 < 50 ms: {ok:.0f}/s absorbed (202), "
                f"{step.status_per_s.get(429, 0.0):.0f}/s refused politely (429)"
            )
    for line in lines:
        print(line)

    sse_tries: list[list[FanOut]] = measured["sse"]
    sse = [_fan_out_median(tries) for tries in sse_tries]
    kept = [tries[0].clients for tries in sse_tries if _fan_out_kept(tries)]
    if sse:
        print(
            f"\nSSE fan-out: `space` event delay = receipt - PATCH sent (p50/p99 over client x "
            f"event); on time = p99 < {SSE_ON_TIME:.0f} s and all connected:"
        )
        print_table(
            [
                "clients",
                "tries",
                "connected",
                "events",
                "p50 ms",
                "p99 ms",
                "max ms",
                "every event",
                "spread p99 ms",
                "PATCH ms",
                "server cpu+wait",
                "µs/delivery",
                "RSS MB",
                "us cpu+wait",
                "on time",
            ],
            [
                [
                    s.clients,
                    len(tries),
                    s.connected,
                    s.events,
                    s.delay_p50_ms,
                    s.delay_p99_ms,
                    s.delay_max_ms,
                    f"{s.got_every_event:.1%}",
                    s.spread_p99_ms,
                    s.patch_p50_ms,
                    _usage(s.server_cpu, s.server_wait),
                    s.server_us_per_delivery,
                    s.server_rss_mb,
                    f"{s.client_cpu:.0%}+{s.client_wait:.0%}",
                    "yes" if s.on_time else "NO",
                ]
                for s, tries in zip(sse, sse_tries, strict=True)
            ],
        )
        bound = len(kept) == len(sse)
        print(
            f"SSE clients kept on time: {max(kept) if kept else 0}"
            + (" (the largest level tried: a lower bound)" if bound else "")
        )
    print(
        f"\nidle server CPU (the demo space's media pipeline): "
        f"{measured['idle_server_cpu']:.0%} of a core; {measured['joins_per_s']:.0f} joins/s. "
        f"Run took {elapsed:.0f} s. 2 shared cores: +wait is the time the server's event loop "
        "waited for a CPU (other people's work); '!' above 10 %: such latencies say more about "
        "the neighbours than about causerie, the per-core rates less so."
    )

    result = {
        "command": command_line("audience"),
        "args": vars(args),
        "slo_p99_ms": SLO_P99 * 1000,
        "sse_on_time_s": SSE_ON_TIME,
        "idle_server_cpu": measured["idle_server_cpu"],
        "joins_per_s": measured["joins_per_s"],
        "tokens": measured["tokens"],
        "requests": [
            {
                "name": c.name,
                "wrk_median": c.wrk,
                "wrk_runs": c.wrk_runs,
                "per_core": c.per_core,
                "best_rate_p99_under_slo": (c.best() or (None,))[0],
                "steps": [[asdict(t) for t in tries] for tries in c.steps],
            }
            for c in caps
        ],
        "summary": lines,
        "sse": [[asdict(s) | {"on_time": s.on_time} for s in tries] for tries in sse_tries],
        "sse_kept": max(kept) if kept else 0,
        "seconds": elapsed,
    }
    path = write_result("audience", result)
    print(f"\nwrote {path.relative_to(path.parents[2])}")
    print(f"reproduce: {result['command']}")


if __name__ == "__main__":
    main()
