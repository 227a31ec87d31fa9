"""A join storm at 10x what one node admits: goodput (admitted joins/s) against capacity.

Against the live demo space of one `causerie demo` process, people arrive at a steady rate and
join (`POST /api/spaces/{id}/join`) like the listener page does: told to wait (503/429 +
Retry-After) they come back no sooner than told, spread over one more such interval. Their
requests go over `--connections` (128) keep-alive connections per crowd process, shared as an
edge's connections to its origin are (`--connections 0`: a new connection per person, as
browsers reaching a node directly). bench/_crowd.py: raw asyncio sockets on uvloop, in
`--processes` (2) processes at nice 10, so the node rather than the crowd runs out of CPU.

1. Capacity: arrival rates from `--start-rate` (500/s) up, x1.5 a step, `--step-seconds` (4 s)
   each, until a step fails; a step holds when every person is admitted at the first try, the
   admitted rate is >= 95 % of the arrival rate and the answers' p99 is <= 100 ms. Capacity: the
   admitted joins/s of the best step that held.
2. Storm: arrivals at `--factor` (10) x capacity for `--storm-seconds` (8 s). Goodput: joins
   admitted per second from the first arrival until the last admission, beside capacity as a
   ratio (target >= 0.9), with the answers by status and Retry-After, and what one listener
   following the live playlist with blocking reloads got meanwhile (parts late: bytes in later
   than one part's duration after the playlist listed them).

The crowd shares the 2 cores with the node, so the arrival rate it reaches is printed beside the
one asked for: where it falls short, the storm is as big as this machine can make it.

    .venv/bin/python -m bench.storm [--factor 10] [--storm-seconds 8] [--max-lag 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter

from tests.harness.ports import HOST

from bench._common import (
    command_line,
    load_average,
    percentile,
    print_table,
    raise_fd_limit,
    run_causerie,
    write_result,
)
from bench._crowd import CrowdResult, crowd_in_processes
from bench._hls import PartEvent, follow_live
from bench._http import Connection


def rate(times: list[float]) -> float:
    """Events per second between the first and the last of `times` (0 for fewer than 2)."""
    if len(times) < 2:
        return 0.0
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else 0.0


def summary(crowd: CrowdResult, people: int) -> dict[str, object]:
    arrivals = rate(crowd.arrived_at)
    admitted = len(crowd.admitted_at)
    window = (max(crowd.admitted_at) - min(crowd.arrived_at)) if admitted else 0.0
    return {
        "people": people,
        "arrivals_per_s": arrivals,
        "admitted": admitted,
        "admitted_per_s": admitted / window if window > 0 else 0.0,
        "answers": dict(sorted(crowd.statuses.items())),
        "retry_after": dict(crowd.retry_after),
        "errors": dict(crowd.errors),
        "gave_up": crowd.gave_up,
        "p50_ms": percentile(crowd.latencies, 50) * 1000,
        "p99_ms": percentile(crowd.latencies, 99) * 1000,
        "seconds_to_admit_all": window,
    }


async def step(port: int, path: str, arrivals_per_s: float, seconds: float, args) -> dict:
    people = int(arrivals_per_s * seconds)
    crowd = await crowd_in_processes(
        HOST, port, path, people, arrival_seconds=seconds, seconds=seconds + 30,
        processes=args.processes, nice=10, shared=args.connections,
    )  # fmt: skip
    return summary(crowd, people)


def held(result: dict, asked: float) -> bool:
    first_try = result["answers"] == {200: result["people"]}
    return bool(
        first_try
        and result["admitted_per_s"] >= 0.95 * min(asked, result["arrivals_per_s"] or asked)
        and result["p99_ms"] <= 100
    )


async def capacity(port: int, path: str, args) -> tuple[float, list[dict]]:
    steps: list[dict] = []
    best = 0.0
    asked = args.start_rate
    while asked <= args.max_rate:
        result = await step(port, path, asked, args.step_seconds, args)
        result["asked_per_s"] = asked
        result["held"] = held(result, asked)
        steps.append(result)
        print(
            f"  {asked:7.0f}/s asked, {result['arrivals_per_s']:7.0f}/s arrived, "
            f"{result['admitted_per_s']:7.0f}/s admitted, p99 {result['p99_ms']:.0f} ms, "
            f"answers {result['answers']}: {'held' if result['held'] else 'failed'}",
            flush=True,
        )
        if not result["held"]:
            break
        best = max(best, result["admitted_per_s"])
        asked *= 1.5
        await asyncio.sleep(2)  # let the node settle between steps
    return best, steps


async def storm(port: int, node_path: str, playlist: str, capacity_per_s: float, args) -> dict:
    late = 0
    parts: list[PartEvent] = []

    def on_part(event: PartEvent) -> None:
        nonlocal late
        parts.append(event)
        if event.received - event.listed > event.part.duration:
            late += 1

    listener = Connection(HOST, port)
    following = asyncio.create_task(
        follow_live(listener, playlist, time.time() + args.storm_seconds + 20, on_part)
    )
    await asyncio.sleep(2)
    asked = args.factor * capacity_per_s
    result = await step(port, node_path, asked, args.storm_seconds, args)
    errors = await following
    listener.close()
    result.update(
        asked_per_s=asked,
        goodput_ratio=result["admitted_per_s"] / capacity_per_s if capacity_per_s else 0.0,
        listener_parts=len(parts),
        listener_parts_late=late,
        listener_errors=errors,
    )
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start-rate", type=float, default=500)
    parser.add_argument("--max-rate", type=float, default=40_000)
    parser.add_argument("--step-seconds", type=float, default=4)
    parser.add_argument("--factor", type=float, default=10)
    parser.add_argument("--storm-seconds", type=float, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=128, help="per process; 0: one each")
    parser.add_argument("--max-lag", type=float, default=0.1, help="the node's --max-lag")
    args = parser.parse_args()
    raise_fd_limit()
    load_before = load_average()
    with run_causerie(extra=["--max-lag", str(args.max_lag)]) as node:
        path = f"/api/spaces/{node.space_id}/join"
        print("capacity (steady arrivals, every join admitted at once, p99 <= 100 ms):")
        best, steps = await capacity(node.port, path, args)
        if best <= 0:
            raise SystemExit("no step held: the node admits less than --start-rate")
        await asyncio.sleep(3)
        print(f"storm: {args.factor:g} x {best:.0f}/s for {args.storm_seconds:g} s:")
        result = await storm(node.port, path, node.playlist_path, best, args)
    statuses: Counter[int] = Counter(result["answers"])
    print()
    print_table(
        ["figure", "value"],
        [
            ["capacity, joins/s admitted (p99 <= 100 ms)", best],
            ["storm arrivals asked, people/s", result["asked_per_s"]],
            ["storm arrivals reached, people/s", result["arrivals_per_s"]],
            ["storm goodput, joins/s admitted", result["admitted_per_s"]],
            ["goodput / capacity (target >= 0.9)", result["goodput_ratio"]],
            ["answers", " ".join(f"{k}:{v}" for k, v in sorted(statuses.items()))],
            ["other failures (connection, timeout)", sum(result["errors"].values())],
            ["people never admitted", result["gave_up"]],
            ["answer p99 during the storm, ms", result["p99_ms"]],
            ["listener parts / late / errors", f"{result['listener_parts']} / "
             f"{result['listener_parts_late']} / {result['listener_errors']}"],
        ],
    )  # fmt: skip
    load_after = load_average()
    print(f"load average before {load_before}, after {load_after}")
    path = write_result(
        "storm",
        {
            "capacity_per_s": best,
            "capacity_steps": steps,
            "storm": result,
            "load_average": [load_before, load_after],
            "command": command_line("storm"),
        },
    )
    print(f"results: {path}")
    print(f"command: {command_line('storm')}")


if __name__ == "__main__":
    asyncio.run(main())
