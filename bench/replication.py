"""What keeping acknowledged writes through a Redis failover costs: WAIT, and the AOF's fsync.

A primary with two replicas and three sentinels on 127.0.0.1 (tests/harness/sentinel.py,
configured as RELIABILITY.md asks: `min-replicas-to-write 1`, `appendonly yes`), and the
store's real write of a question (`RedisStore.add_question`: a Lua script) through the node's
own Sentinel client (cluster/redis_client.py). Three ways, interleaved run by run:

- `primary`: acknowledged once the primary has it (`wait_replicas=0`), `appendfsync everysec`;
- `WAIT 1`: acknowledged once a replica has it too (the default with Sentinel), everysec;
- `WAIT 1 + always`: the same with `appendfsync always` on every server (each write fsynced
  before the primary answers).

For each, `--concurrency` writers (1: the latency of one write alone; 32: many requests at
once) write for `--seconds`; figures are the medians over `--runs`: writes/s, p50 and p99
latency. Everything shares the machine's 2 cores with the benchmark itself, and the disk
is whatever /tmp is.

    .venv/bin/python -m bench.replication [--seconds 3] [--runs 3] [--concurrency 1,32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
from tests.harness.sentinel import SentinelGroup, run_sentinel_group

from bench._common import command_line, median, percentile, print_table, write_result
from causerie.cluster.redis_client import RedisClients
from causerie.cluster.replication import Replication
from causerie.domain.questions import Question
from causerie.store.redis import RedisStore

MODES = {
    "primary": (0, "everysec"),
    "WAIT 1": (1, "everysec"),
    "WAIT 1 + always": (1, "always"),
}


@dataclass
class Figures:
    mode: str
    concurrency: int
    writes_per_second: float
    p50_ms: float
    p99_ms: float


def set_fsync(group: SentinelGroup, policy: str) -> None:
    for server in group.servers:
        with redis.Redis(port=server.port) as client:
            client.config_set("appendfsync", policy)


async def write_for(store: RedisStore, seconds: float, concurrency: int) -> list[float]:
    """Latencies (s) of question writes by `concurrency` writers for `seconds`."""
    latencies: list[float] = []
    until = time.monotonic() + seconds
    space = secrets.token_hex(4)

    async def writer() -> None:
        for n in itertools.count():
            if time.monotonic() >= until or n > 1_000_000:
                return
            question = Question(
                id=secrets.token_hex(6),
                space_id=space,
                author_id="bench",
                author_name="Bench",
                text="How much does it cost?",
                created_at=datetime.now(UTC),
            )
            started = time.perf_counter()
            await store.add_question(question)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(writer() for _ in range(concurrency)))
    return latencies


async def measure(group: SentinelGroup, args: argparse.Namespace) -> list[Figures]:
    clients = RedisClients(group.url())
    stores = {
        mode: RedisStore(client=clients.text, replication=Replication(replicas, 1.0))
        for mode, (replicas, _) in MODES.items()
    }
    samples: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    try:
        for _run in range(args.runs):
            for concurrency in args.concurrency:
                for mode, (_, fsync) in MODES.items():
                    set_fsync(group, fsync)
                    latencies = await write_for(stores[mode], args.seconds, concurrency)
                    samples.setdefault((mode, concurrency), []).append(
                        (
                            len(latencies) / args.seconds,
                            percentile(latencies, 50) * 1000,
                            percentile(latencies, 99) * 1000,
                        )
                    )
    finally:
        set_fsync(group, "everysec")
        await clients.close()
    return [
        Figures(
            mode,
            concurrency,
            median([r for r, _, _ in runs]),
            median([p for _, p, _ in runs]),
            median([p for _, _, p in runs]),
        )
        for (mode, concurrency), runs in samples.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--concurrency", type=lambda s: [int(n) for n in s.split(",")], default=[1, 32]
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, run_sentinel_group(Path(folder)) as group:
        figures = asyncio.run(measure(group, args))
    print_table(
        ["mode", "writers", "writes/s", "p50 ms", "p99 ms"],
        [
            (f.mode, f.concurrency, f.writes_per_second, f.p50_ms, f.p99_ms)
            for f in sorted(figures, key=lambda f: (f.concurrency, list(MODES).index(f.mode)))
        ],
    )
    command = command_line("replication")
    print(f"\nreproduce: {command}")
    result = {"command": command, "figures": [asdict(f) for f in figures]}
    path = write_result("replication", result)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
