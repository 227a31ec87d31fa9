"""A storm of live-event streams (SSE) opened at one node: how late its media loop runs.

The promise (issue "Trust, round two", finding 3): whatever the control plane receives, the
media loop is never late by more than one part (213 ms). Against one `causerie demo` (with
`--max-lag 0.05`, shedding load early), a process of its own opens `/api/spaces/{id}/events`
streams on raw sockets at each `--rates` value for `--seconds`, each on a connection of its
own (a page reaching a node with no edge in front), keeping every accepted stream open until
the storm is over. The node's own `/metrics` are read before and after each level: the ticks of
the media loop (20 ms each) later than one part, and the parts late (ready more than a part
after their audio ended). Answers are counted: 200, 503 with Retry-After (shed), or no answer
within 10 s (connection refused or backlog full: the kernel shedding).

    .venv/bin/python -m bench.event_storm [--rates 100,250,500,1000] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from urllib.parse import urlsplit

import httpx

from bench._common import command_line, load_average, print_table, run_causerie, write_result

HOLD_SECONDS = 3.0
"""How long the accepted streams stay open after the last one was opened."""


async def open_streams(host: str, port: int, path: str, rate: float, seconds: float) -> dict:
    """Open `rate` event streams a second for `seconds`; keep the accepted ones open until
    the storm is over; count the answers."""
    answers: Counter[str] = Counter()
    held: list[asyncio.StreamWriter] = []
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            line = await asyncio.wait_for(reader.readline(), 10)
        except (OSError, TimeoutError):
            answers["no answer in 10 s"] += 1
            return
        status = line.split(b" ")[1].decode() if line.count(b" ") >= 2 else "no answer"
        if status == "503":
            headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status += " + Retry-After" if b"retry-after:" in headers.lower() else " bare"
        answers[status] += 1
        held.append(writer)

    started = time.monotonic()
    tasks = []
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    await asyncio.sleep(HOLD_SECONDS)
    for writer in held:
        writer.close()
    return dict(answers)


def _open_streams_process(*args: object) -> dict:
    return asyncio.run(open_streams(*args))  # type: ignore[arg-type]


def lateness(metrics: str) -> tuple[float, float, float]:
    """(media-loop ticks, ticks later than one part, parts late) from a node's `/metrics`."""

    def value(pattern: str) -> float:
        found = re.search(pattern + r" ([0-9.e+]+)$", metrics, re.M)
        if found is None:
            raise SystemExit(f"/metrics has no {pattern}")
        return float(found.group(1))

    ticks = value(r"causerie_media_loop_lateness_seconds_count")
    on_time = value(r'causerie_media_loop_lateness_seconds_bucket\{le="0\.2133"\}')
    return ticks, ticks - on_time, value(r"causerie_parts_late_total")


def level(url: str, path: str, rate: float, seconds: float) -> dict[str, object]:
    before = lateness(httpx.get(f"{url}/metrics", timeout=10).text)
    address = urlsplit(url)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        answers = pool.submit(
            _open_streams_process, address.hostname, address.port, path, rate, seconds
        ).result(timeout=seconds + HOLD_SECONDS + 60)
    time.sleep(1.0)
    after = lateness(httpx.get(f"{url}/metrics", timeout=10).text)
    ticks, late_ticks, late_parts = (a - b for a, b in zip(after, before, strict=True))
    return {
        "rate": rate,
        "opened": int(rate * seconds),
        "answers": answers,
        "ticks": ticks,
        "ticks_late": late_ticks,
        "parts_late": late_parts,
        "load": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,250,500,1000")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    rows = []
    for rate in (float(r) for r in args.rates.split(",")):
        # A fresh node per level: streams left from the level before cost nothing to compare.
        with run_causerie(extra=["--max-lag", "0.05"]) as node:
            space = httpx.get(f"{node.url}/api/spaces", timeout=10).json()["spaces"][0]
            rows.append(level(node.url, f"/api/spaces/{space['id']}/events", rate, args.seconds))
    print_table(
        ["opens/s", "opened", "answers", "ticks", "> 1 part late", "parts late", "load"],
        [
            [
                r["rate"],
                r["opened"],
                r["answers"],
                r["ticks"],
                r["ticks_late"],
                r["parts_late"],
                r["load"],
            ]
            for r in rows
        ],
    )
    print(f"\nreproduce: {command_line('event_storm')}")
    print(f"written: {write_result('event_storm', {'levels': rows})}")


if __name__ == "__main__":
    main()
