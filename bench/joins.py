"""Joins/s one causerie node admits at p99 <= 100 ms, beside nginx answering the same request.

`POST /api/spaces/{id}/join` (JSON body `{"name": "bench"}`, answered with a signed listener
token) against a real `causerie demo` process and its live demo space (pinned to
`--server-cpus`, 0), with wrk (C, one thread, closed loop, pinned to `--client-cpus`, 1). The
reference, in the same run and interleaved level by level: nginx (1 worker, same CPU) answering
the same POST from a static file holding a real join response (`error_page 405 =200 $uri`, so
nginx serves a file to a POST), i.e. the same method, path, request and response sizes.

Sweep: `--connections` (8,16,32,64,128,256); at each, `--runs` (3) wrk runs of `--seconds`
(2 s) per server, interleaved. A level's figures are the medians of its runs: admitted joins/s
(2xx answers/s; causerie answers 503 + Retry-After above its admission bound, which wrk counts
as requests but which are not joins), p99 latency (wrk's, of all answers), the server's CPU
(fraction of one core, /proc/PID/stat). The figure: the best median admitted rate over levels
whose median p99 <= 100 ms and refused share <= 1 %. Also per core: admitted / server CPU.

Two nodes (`--two-nodes`, on by default): redis-server on a free port of 127.0.0.1, node A
`causerie demo --redis URL` (the live space; pinned to CPU 0), node B `causerie serve --redis URL`
(CPU 1); two wrk processes, each with half the connections, one per node, run at once (load
split over both); the rate is their sum, the p99 the larger of the two. Reference: nginx with 2
workers (unpinned), two wrks the same way. wrk, Redis and the nodes share the 2 cores: there is
no spare core for the load generator, so this is what two nodes give on one 2-core machine, not
what two machines would.

    .venv/bin/python -m bench.joins [--connections 8,16,...] [--runs 3] [--seconds 2]
        [--no-two-nodes]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.harness.edges import run_nginx as harness_nginx
from tests.harness.ports import HOST, free_port
from tests.harness.processes import children
from tests.harness.redis_server import run_redis

from bench._common import (
    command_line,
    cpu_seconds,
    ensure_program,
    load_average,
    median,
    pin,
    print_table,
    run_causerie,
    write_result,
)
from bench.audience import Load, wrk_run

P99_BOUND_MS = 100.0
REFUSED_BOUND = 0.01
BODY = b'{"name": "bench"}'
JSON = {"Content-Type": "application/json"}

NGINX_CONF = """\
{user}
worker_processes {workers};
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
    default_type application/json;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server {{
        listen {host}:{port} backlog=4096;
        root {www};
        # A static file answers GET only; this makes nginx serve it to the join's POST too.
        error_page 405 =200 $uri;
    }}
}}
"""


@contextlib.contextmanager
def run_nginx(
    folder: Path, www: Path, workers: int, cpus: set[int] | None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """nginx with `workers` workers serving `www` (POST too) on a free port, no root paths."""
    port = free_port()
    # nginx started as root would run its workers as `nobody`, locked out of our temp dir.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    text = NGINX_CONF.format(user=user, workers=workers, dir=folder, www=www, host=HOST, port=port)
    with harness_nginx(folder, text, workers, preexec=pin(cpus)) as process:
        yield process, port


@dataclass
class Target:
    """A server under test: where to send the joins (one port per node) and whose CPU to read."""

    name: str
    ports: list[int]
    pids: list[int]
    path: str
    side: list[int] = field(default_factory=list)  # more processes to measure (Redis)
    body: bytes = BODY
    tokens: list[str] = field(default_factory=lambda: [""])  # round-robin; "" for no token


@dataclass
class Run:
    connections: int
    admitted_per_s: float
    refused_per_s: float
    p99_ms: float
    p50_ms: float
    server_cpu: float  # all the target's processes, in cores
    server_wait: float
    errors: int
    side_cpu: float = 0.0  # the target's side processes (Redis), in cores


def one_run(target: Target, connections: int, seconds: float, cpus: set[int] | None) -> Run:
    """wrk against every port of the target at once, connections split evenly."""
    load = Load(target.name, "POST", target.path, target.tokens, target.body, paced=False)
    share = max(1, connections // len(target.ports))
    side0, started = sum(cpu_seconds(pid) for pid in target.side), time.monotonic()
    with ThreadPoolExecutor(len(target.ports)) as pool:
        results = list(
            pool.map(
                lambda pp: wrk_run(load, pp[0], share, seconds, cpus, pp[1]),
                zip(target.ports, target.pids, strict=True),
            )
        )
    side_cpu = (sum(cpu_seconds(pid) for pid in target.side) - side0) / (time.monotonic() - started)
    admitted = sum(
        rate for r in results for status, rate in r["status_per_s"].items() if 200 <= status < 300
    )
    total = sum(r["requests_per_s"] for r in results)
    return Run(
        connections=share * len(target.ports),
        admitted_per_s=admitted,
        refused_per_s=total - admitted,
        p99_ms=max(r["p99_ms"] for r in results),
        p50_ms=max(r["p50_ms"] for r in results),
        server_cpu=sum(r["server_cpu"] for r in results),
        server_wait=max(r["server_wait"] for r in results),
        errors=sum(r["errors"] for r in results),
        side_cpu=side_cpu,
    )


@dataclass
class Level:
    target: str
    connections: int
    runs: list[Run] = field(default_factory=list)

    def m(self, attribute: str) -> float:
        return median([getattr(r, attribute) for r in self.runs])

    @property
    def refused_share(self) -> float:
        total = self.m("admitted_per_s") + self.m("refused_per_s")
        return self.m("refused_per_s") / total if total else 1.0

    @property
    def kept(self) -> bool:
        return self.m("p99_ms") <= P99_BOUND_MS and self.refused_share <= REFUSED_BOUND

    @property
    def side_us_per_join(self) -> float:
        """CPU of the side processes (Redis) per admitted join, in µs (median of runs)."""
        return median(
            [r.side_cpu / r.admitted_per_s * 1e6 for r in self.runs if r.admitted_per_s > 0]
        )

    @property
    def per_core(self) -> float:
        return median([r.admitted_per_s / r.server_cpu for r in self.runs if r.server_cpu > 0])

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "connections": self.connections,
            "admitted_per_s": self.m("admitted_per_s"),
            "refused_share": self.refused_share,
            "p50_ms": self.m("p50_ms"),
            "p99_ms": self.m("p99_ms"),
            "server_cpu": self.m("server_cpu"),
            "server_wait": self.m("server_wait"),
            "per_core": self.per_core,
            "side_cpu": self.m("side_cpu"),
            "side_us_per_join": self.side_us_per_join,
            "kept": self.kept,
            "runs": [asdict(r) for r in self.runs],
        }


def sweep(
    targets: list[Target], args: argparse.Namespace, cpus: set[int] | None, unit: str = "joins"
) -> dict[str, list[Level]]:
    """Every connection count, `--runs` times, the targets interleaved run by run."""
    levels: dict[str, list[Level]] = {t.name: [] for t in targets}
    for connections in args.connections:
        current = {t.name: Level(t.name, connections) for t in targets}
        for _ in range(args.runs):
            for target in targets:
                current[target.name].runs.append(one_run(target, connections, args.seconds, cpus))
        for target in targets:
            level = current[target.name]
            levels[target.name].append(level)
            print(
                f"  {target.name:16} {connections:4} conns: {level.m('admitted_per_s'):7.0f} "
                f"{unit}/s, p99 {level.m('p99_ms'):6.1f} ms, refused {level.refused_share:5.1%}, "
                f"CPU {level.m('server_cpu'):.2f} (waited {level.m('server_wait'):.0%}), "
                f"{level.per_core:6.0f}/core",
                flush=True,
            )
    return levels


def best(levels: list[Level]) -> Level | None:
    kept = [x for x in levels if x.kept]
    return max(kept, key=lambda x: x.m("admitted_per_s")) if kept else None


def static_copy(base_url: str, space_id: str, www: Path) -> str:
    """Write a real join response where nginx serves it for the same path; returns the path."""
    path = f"/api/spaces/{space_id}/join"
    response = httpx.post(base_url + path, content=BODY, headers=JSON, timeout=10)
    response.raise_for_status()
    target = www / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(response.content)
    return path


def one_node(args: argparse.Namespace, tmp: Path) -> dict[str, list[Level]]:
    with run_causerie(cpus=args.server_cpus) as node:
        path = static_copy(node.url, node.space_id, tmp / "www")
        print(f"one node: causerie pid {node.pid}, {path}", flush=True)
        with run_nginx(tmp / "nginx-1", tmp / "www", 1, args.server_cpus) as (nginx, port):
            targets = [
                Target("causerie", [node.port], [node.pid], path),
                Target("nginx", [port], children(nginx.pid), path),  # the worker; master idles
            ]
            return sweep(targets, args, args.client_cpus)


def two_nodes(args: argparse.Namespace, tmp: Path) -> dict[str, list[Level]]:
    (tmp / "redis").mkdir()
    with (
        run_redis(tmp / "redis") as redis,
        run_causerie(cpus={0}, redis=redis.url) as node_a,
        run_causerie(cpus={1}, redis=redis.url, command="serve") as node_b,
    ):
        path = static_copy(node_a.url, node_a.space_id, tmp / "www")
        check = httpx.post(node_b.url + path, content=BODY, headers=JSON, timeout=10)
        check.raise_for_status()  # node B serves node A's space, through Redis
        print(
            f"two nodes on {redis.url}: pids {node_a.pid} (demo), {node_b.pid} (serve)", flush=True
        )
        with run_nginx(tmp / "nginx-2", tmp / "www", 2, None) as (nginx, port):
            workers = children(nginx.pid)
            targets = [
                Target(
                    "causerie x2",
                    [node_a.port, node_b.port],
                    [node_a.pid, node_b.pid],
                    path,
                    side=[redis.pid],
                ),
                Target("nginx 2 workers", [port, port], workers, path),
            ]
            return sweep(targets, args, None)


def parse_cpus(text: str) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--connections",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[8, 16, 32, 64, 128, 256],
    )
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per level and server")
    parser.add_argument("--seconds", type=float, default=2.0, help="each wrk run")
    parser.add_argument("--server-cpus", type=parse_cpus, default={0})
    parser.add_argument("--client-cpus", type=parse_cpus, default={1})
    parser.add_argument("--no-two-nodes", dest="two_nodes", action="store_false")
    args = parser.parse_args()
    ensure_program("wrk", "wrk")
    started = time.monotonic()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="causerie-joins-") as tmp_name:
        tmp = Path(tmp_name)
        levels = one_node(args, tmp)
        if args.two_nodes:
            levels.update(two_nodes(args, tmp))
    report(levels, args, load_before, time.monotonic() - started)


def report(
    levels: dict[str, list[Level]],
    args: argparse.Namespace,
    load_before: str,
    elapsed: float,
) -> None:
    print()
    rows = []
    bests: dict[str, Level | None] = {}
    for name, found in levels.items():
        top = best(found)
        bests[name] = top
        rows.append(
            [
                name,
                f"{top.m('admitted_per_s'):.0f}" if top else "none kept",
                top.connections if top else "-",
                f"{top.m('p99_ms'):.1f}" if top else "-",
                f"{top.m('server_cpu'):.2f}" if top else "-",
                f"{top.per_core:.0f}" if top else "-",
                f"{max(x.m('admitted_per_s') for x in found):.0f}",
            ]
        )
    print_table(
        [
            "server",
            f"joins/s at p99 <= {P99_BOUND_MS:.0f} ms",
            "conns",
            "p99 ms",
            "server CPU",
            "per core",
            "most under wrk",
        ],
        rows,
    )
    ratios: dict[str, float] = {}

    def ratio(label: str, ours: str, ref: str, value: Callable[[Level], float]) -> None:
        a, b = bests.get(ours), bests.get(ref)
        if a and b:
            ratios[label] = value(a) / value(b)
            print(f"{label}: {ratios[label]:.2f}")

    print()
    ratio("one node / nginx, joins/s", "causerie", "nginx", lambda x: x.m("admitted_per_s"))
    ratio("one node / nginx, per core", "causerie", "nginx", lambda x: x.per_core)
    ratio(
        "two nodes / nginx 2 workers, joins/s",
        "causerie x2",
        "nginx 2 workers",
        lambda x: x.m("admitted_per_s"),
    )
    ratio(
        "two nodes / one node, joins/s", "causerie x2", "causerie", lambda x: x.m("admitted_per_s")
    )
    top = bests.get("causerie x2")
    if top is not None:
        print(
            f"Redis CPU per join (two nodes, at the figure's level): {top.side_us_per_join:.1f} µs"
            f" ({top.m('side_cpu'):.2f} of a core)"
        )
    load_after = load_average()
    print(
        f"\nmedians of {args.runs} wrk runs of {args.seconds:.0f} s per level; admitted = 2xx/s; "
        f"a level counts if p99 <= {P99_BOUND_MS:.0f} ms and <= {REFUSED_BOUND:.0%} refused."
    )
    print(f"load average before {load_before}, after {load_after}; {elapsed:.0f} s")
    path = write_result(
        "joins",
        {
            "command": command_line("joins"),
            "load_average": [load_before, load_after],
            "levels": {k: [x.summary() for x in v] for k, v in levels.items()},
            "best": {k: v.summary() if v else None for k, v in bests.items()},
            "ratios": ratios,
        },
    )
    print(f"\n{command_line('joins')}\n(figures in {path.relative_to(Path.cwd())})")


if __name__ == "__main__":
    main()
