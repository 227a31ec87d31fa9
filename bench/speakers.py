"""WebRTC speakers: speaker-to-speaker delay through the mix-minus, and server CPU per speaker.

A `causerie serve --rtc-host 127.0.0.1` process hosts one live space; speakers are aiortc
clients in this process publishing with WHIP (tests/fixtures/rtc.py), on loopback.

a. Delay. Speaker A sends a 1 kHz burst (100 ms) every second; speaker B is silent and records
   what it receives back (its mix-minus, i.e. A). For each burst: (wall time B's first loud
   frame came out of its decoder) minus (wall time A's first burst frame went into its
   encoder). Frame granularity: 20 ms. Measured twice: with aiortc clients as shipped (their
   receiver holds 80 ms of audio before decoding; a browser's jitter buffer adapts instead),
   and with that prefetch removed on the clients too, which leaves mostly the server's share.
b. CPU. With 0, then N speakers each sending a tone and receiving its mix-minus, the server
   process's CPU (user + system, all threads, from /proc) over a window, as % of one core.
   The clients run in this process, on the same machine: they cost about as much again.

    .venv/bin/python -m bench.speakers [--bursts 20] [--counts 1,5,10] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from tests.fixtures.rtc import Published, ToneTrack, loopback_only, publish

from bench._common import (
    HOST,
    command_line,
    cpu_seconds,
    free_port,
    percentile,
    print_table,
    run_queue_seconds,
    stop_process,
)
from causerie.cli import issue_account_token
from causerie.store import SqliteStore, update_space

LOUD_DBFS = -40.0
BURST_EVERY = 1.0  # seconds: far more than any delay, so each onset matches its own burst


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path


@contextlib.contextmanager
def run_server() -> Iterator[Server]:
    """`causerie serve` with ICE on 127.0.0.1 only, in a temporary data directory."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="causerie-speakers-") as tmp:
        data_dir = Path(tmp)
        log = (data_dir / "server.log").open("wb")
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "causerie", "serve", "--port", str(port)),
                *("--data-dir", str(data_dir), "--rtc-host", HOST, "--log-level", "warning"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        url = f"http://{HOST}:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"causerie exited with code {process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("causerie did not start in 30 s")
                time.sleep(0.1)
            yield Server(process, url, data_dir)
        finally:
            stop_process(process)
            log.close()


async def live_space(
    server: Server, http: httpx.AsyncClient, speakers: int
) -> tuple[str, list[str]]:
    """A live space with the host and `speakers - 1` more on stage: (space id, their tokens)."""
    host_token = issue_account_token(server.data_dir, "Host", "u-host", days=1)
    host = {"Authorization": f"Bearer {host_token}"}
    space = (await http.post("/api/spaces", json={"title": "Bench"}, headers=host)).json()
    (await http.post(f"/api/spaces/{space['id']}/start", headers=host)).raise_for_status()
    joined = [
        (await http.post(f"/api/spaces/{space['id']}/join", json={"name": f"S{n}"})).json()
        for n in range(speakers - 1)
    ]
    # Straight through the domain, in the node's SQLite file: raise hands, approve them.
    store = SqliteStore(server.data_dir / "causerie.sqlite3")

    def promote(s) -> None:
        for person in joined:
            s.request_to_speak(person["listener_id"], "S", s.started_at)
            s.answer_request("u-host", person["listener_id"], approve=True)

    try:
        await update_space(store, space["id"], promote)
    finally:
        await store.close()
    return space["id"], [host_token, *(person["token"] for person in joined)]


def level_dbfs(pcm: np.ndarray) -> float:
    power = float(np.mean(np.square(pcm.astype(np.float64) / 32768)))
    return 10 * np.log10(max(power, 1e-10))


async def measure_delay(
    http: httpx.AsyncClient, space_id: str, tokens: list[str], bursts: int, low_delay: bool
) -> list[float]:
    """Speaker A's bursts as heard back by speaker B; one delay (s) per burst."""
    sender = ToneTrack(1000, continuous=False)
    a = await publish(http, space_id, tokens[0], sender, low_delay=low_delay)
    silent = ToneTrack(440, continuous=False)  # never bursts
    b = await publish(http, space_id, tokens[1], silent, low_delay=low_delay)
    try:
        await a.wait_connected()
        await b.wait_connected()
        await asyncio.sleep(2)
        for _ in range(bursts):
            sender.burst(0.1)
            await asyncio.sleep(BURST_EVERY)
        await asyncio.sleep(BURST_EVERY)
        return _onsets(sender.burst_times, b)
    finally:
        await a.close()
        await b.close()


def _onsets(sent: list[float], receiver: Published) -> list[float]:
    delays = []
    loud = [(t, level_dbfs(pcm) > LOUD_DBFS) for t, pcm in receiver.received]
    for start in sent:
        for (t, is_loud), (_, was_loud) in zip(loud[1:], loud, strict=False):
            if t > start and is_loud and not was_loud:
                delays.append(t - start)
                break
    return delays


async def measure_cpu(
    server: Server,
    http: httpx.AsyncClient,
    space_id: str,
    tokens: list[str],
    count: int,
    seconds: float,
) -> dict[str, float]:
    """Server CPU (% of a core) with `count` speakers sending tones and receiving mix-minus."""
    clients = [
        await publish(http, space_id, token, ToneTrack(300 + 100 * n))
        for n, token in enumerate(tokens[:count])
    ]
    try:
        for client in clients:
            await client.wait_connected()
        await asyncio.sleep(3)  # settle
        pid = server.process.pid
        cpu0, queue0, own0 = cpu_seconds(pid), run_queue_seconds(pid), time.process_time()
        started = time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - started
        return {
            "speakers": count,
            "server_cpu_pct": 100 * (cpu_seconds(pid) - cpu0) / wall,
            "server_waited_pct": 100 * (run_queue_seconds(pid) - queue0) / wall,
            "clients_cpu_pct": 100 * (time.process_time() - own0) / wall,
            "frames_back": min((len(c.received) for c in clients), default=0),
        }
    finally:
        for client in clients:
            await client.close()
        await asyncio.sleep(1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--counts", default="1,5,10", help="speaker counts for the CPU figure")
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU window per count")
    args = parser.parse_args()
    counts = [int(n) for n in args.counts.split(",")]
    loopback_only()
    with run_server() as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            space_id, tokens = await live_space(server, http, max([2, *counts]))
            rows = []
            for low_delay in (False, True):
                delays = await measure_delay(http, space_id, tokens, args.bursts, low_delay)
                client = "aiortc, no prefetch" if low_delay else "aiortc as shipped (80 ms)"
                figures = [1000 * percentile(delays, q) for q in (50, 99, 0, 100)]
                rows.append([client, f"{len(delays)}/{args.bursts}", *figures])
            print("\nspeaker-to-speaker delay over loopback (A's encoder in -> B's decoder out)")
            print_table(["client jitter buffer", "bursts", "p50 ms", "p99 ms", "min", "max"], rows)
            rows = []
            for count in [0, *counts]:
                figures = await measure_cpu(server, http, space_id, tokens, count, args.seconds)
                rows.append(list(figures.values()))
            print("\nserver CPU with N WebRTC speakers (% of one core)")
            print_table(
                ["speakers", "server CPU %", "server waited %", "clients CPU %", "frames back"],
                rows,
            )
            base = rows[0][1]
            for row in rows[1:]:
                print(f"  {row[0]} speakers: {(row[1] - base) / row[0]:.1f} % of a core each")
    print(f"\ncores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f}")
    print(f"command: {command_line('speakers')}")


if __name__ == "__main__":
    asyncio.run(main())
