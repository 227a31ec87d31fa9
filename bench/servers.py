"""Joins and heartbeats per core at p99 <= 100 ms under several ASGI servers, beside nginx.

The same node app (`create_app`, with its live demo space, as `causerie demo` runs it) under
each server of `--servers`, one process each, all pinned to `--server-cpus` (0), all running
at once with their own temporary data directory; beside them nginx (1 worker, same CPU)
answering the same requests from files. Servers (see SERVERS):

- `uvicorn`: `python -m bench._asgi`, uvicorn as `causerie serve` runs it (uvloop, httptools
  with the node's header and body deadlines, api/http_timeouts.py);
- `granian`: `granian --interface asgi --loop uvloop --http 1 --factory bench._asgi:create`
  (its Rust HTTP/1.1 stack; one worker process, whose CPU is measured);
- `hypercorn`: `hypercorn --worker-class uvloop --workers 0 'bench._asgi:create()'`
  (h11, pure Python);
- `granian-embedded`: `python -m bench._asgi granian`, granian's embedded server in the
  node's own uvloop event loop, no worker process (what a `causerie serve --http-server
  granian` would run);
- optional: `granian-rust` (granian with `--task-impl rust`), `uvicorn-h11` (uvicorn's CLI
  with `--http h11`), `uvicorn-asgi` (`python -m bench._asgi asgi`: as `uvicorn`, without the
  join lane, api/join_lane.py: joins and heartbeats through ASGI).

granian and hypercorn come with `pip install -e '.[bench]'`. Each server's demo space gets
`--tokens` (1000) listeners joined first (distinct tokens for its heartbeats). Three request
kinds (`--kinds`), each swept like `bench.joins`: `POST /api/spaces/{id}/join` (`{"name":
"bench"}`), `POST /api/spaces/{id}/heartbeat` (the next listener's token each request,
answered 204) and `POST /bench/empty` (answered 204 before the node: the server's own cost).
nginx answers the same POSTs from a file holding a real join answer and from empty files
(`error_page 405 =200 $uri`), with the same Authorization headers. wrk (one thread, closed
loop, keep-alive) on `--client-cpus` (1).

Sweep: `--connections` (8,16,32,64,128); at each, `--runs` (3) wrk runs of `--seconds` (2 s)
per target, the targets interleaved run by run (A B C nginx A B C nginx ...), so the
neighbours' noise falls on all alike. A level's figures are the medians of its runs; the
figure is the best median admitted rate (2xx/s) over levels with median p99 <= 100 ms and
<= 1 % refused (503); per core = admitted / the serving process's CPU (median of runs). The
other servers idle meanwhile on the same CPU (each its demo space's media, shown as idle CPU).

    .venv/bin/python -m bench.servers [--servers uvicorn,granian,granian-embedded,hypercorn]
        [--runs 3] [--seconds 2] [--connections 8,16,32,64,128] [--tokens 1000]
        [--kinds join,heartbeat,empty]
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.harness.polling import wait_until
from tests.harness.ports import HOST, free_port
from tests.harness.processes import children, stop, tail

from bench._asgi import EMPTY
from bench._common import (
    REPO,
    command_line,
    cpu_seconds,
    ensure_program,
    load_average,
    pin,
    print_table,
    write_result,
)
from bench.audience import join_listeners
from bench.joins import BODY, P99_BOUND_MS, Level, Target, best, parse_cpus, run_nginx, sweep

VENV_BIN = Path(sys.executable).parent
FACTORY = "bench._asgi:create"
UNITS = {"join": "joins", "heartbeat": "heartbeats", "empty": "empty"}  # request kinds


def _uvicorn(_port: int, _data_dir: Path) -> list[str]:
    return [str(VENV_BIN / "python"), "-m", "bench._asgi"]


def _uvicorn_asgi(_port: int, _data_dir: Path) -> list[str]:
    return [str(VENV_BIN / "python"), "-m", "bench._asgi", "asgi"]


def _embedded(_port: int, _data_dir: Path) -> list[str]:
    return [str(VENV_BIN / "python"), "-m", "bench._asgi", "granian"]


def _granian(*extra: str) -> Callable[[int, Path], list[str]]:
    def command(port: int, _data_dir: Path) -> list[str]:
        return [str(VENV_BIN / "granian"), "--interface", "asgi", "--loop", "uvloop",
                "--http", "1", "--no-ws", "--workers", "1", "--host", HOST, "--port", str(port),
                "--log-level", "warning", *extra, "--factory", FACTORY]  # fmt: skip

    return command


def _hypercorn(port: int, _data_dir: Path) -> list[str]:
    return [str(VENV_BIN / "hypercorn"), "--worker-class", "uvloop", "--workers", "0",
            "--bind", f"{HOST}:{port}", "--log-level", "warning", f"{FACTORY}()"]  # fmt: skip


def _uvicorn_h11(port: int, _data_dir: Path) -> list[str]:
    return [str(VENV_BIN / "uvicorn"), "--factory", FACTORY, "--loop", "uvloop", "--http", "h11",
            "--lifespan", "on", "--no-access-log", "--log-level", "warning", "--host", HOST,
            "--port", str(port)]  # fmt: skip


SERVERS: dict[str, Callable[[int, Path], list[str]]] = {
    "uvicorn": _uvicorn,
    "granian": _granian(),
    "hypercorn": _hypercorn,
    "granian-rust": _granian("--task-impl", "rust"),
    "uvicorn-h11": _uvicorn_h11,
    "uvicorn-asgi": _uvicorn_asgi,
    "granian-embedded": _embedded,
}


@dataclass
class Running:
    """One server under test, live."""

    name: str
    process: subprocess.Popen[bytes]
    pid: int  # the process that serves (granian's worker), whose CPU is measured
    port: int
    space_id: str
    playlist_path: str  # its LL-HLS media playlist
    data_dir: Path

    def path(self, kind: str) -> str:
        return EMPTY if kind == "empty" else f"/api/spaces/{self.space_id}/{kind}"


def wait_live(port: int, process: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    """Until the node lists a live space whose media playlist has a part: its id and path."""
    found: list[str] = []

    def live() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"exited ({process.returncode}): {tail(log)}")
        with contextlib.suppress(httpx.HTTPError, KeyError, IndexError, ValueError):
            base = f"http://{HOST}:{port}"
            space = httpx.get(f"{base}/api/spaces", timeout=2).json()["spaces"][0]
            playlist = space["media_playlist_url"]
            if "#EXT-X-PART:" in httpx.get(base + playlist, timeout=2).text:
                found[:] = [space["id"], playlist]
                return True
        return False

    wait_until(live, 60, lambda: f"a live space on port {port}: {tail(log)}", every=0.2)
    return found[0], found[1]


def serving_pid(process: subprocess.Popen[bytes]) -> int:
    """The process itself, or its only child (a server's worker process)."""
    found = children(process.pid)
    if len(found) > 1:
        raise RuntimeError(f"pid {process.pid} has several children: {found}")
    return found[0] if found else process.pid


@contextlib.contextmanager
def run_server(name: str, folder: Path, cpus: set[int] | None) -> Iterator[Running]:
    """Start server `name` with the node (and its demo space) on a free port; stop it at the end."""
    port = free_port()
    data_dir = folder / name
    data_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "CAUSERIE_DATA_DIR": str(data_dir),
        "CAUSERIE_PORT": str(port),
    }
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        SERVERS[name](port, data_dir),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=pin(cpus),
        env=env,
        cwd=REPO,
    )
    try:
        space_id, playlist = wait_live(port, process, data_dir / "server.log")
        yield Running(name, process, serving_pid(process), port, space_id, playlist, data_dir)
    finally:
        stop(process)
        log.close()


def idle_cpu(pids: list[int], seconds: float = 2.0) -> list[float]:
    """Each process's CPU (fraction of a core) over `seconds` without load."""
    before = [cpu_seconds(pid) for pid in pids]
    time.sleep(seconds)
    return [(cpu_seconds(pid) - b) / seconds for pid, b in zip(pids, before, strict=True)]


Found = dict[str, dict[str, list[Level]]]  # request kind -> target -> levels


def measure(args: argparse.Namespace, tmp: Path) -> tuple[Found, dict[str, float]]:
    """Start every server and nginx; sweep each request kind over all of them, interleaved.

    Returns the levels, and each server's idle CPU."""
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(run_server(n, tmp, args.server_cpus)) for n in args.servers]
        tokens = {
            s.name: asyncio.run(join_listeners(s.port, s.space_id, args.tokens)) for s in servers
        }
        first = servers[0]
        www = tmp / "www"
        # nginx answers a real join answer and an empty heartbeat answer, at the first's paths.
        answer = httpx.post(
            f"http://{HOST}:{first.port}{first.path('join')}",
            content=BODY,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        answer.raise_for_status()
        for kind, content in (("join", answer.content), ("heartbeat", b""), ("empty", b"")):
            file = www / first.path(kind).lstrip("/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(content)
        nginx, nginx_port = stack.enter_context(run_nginx(tmp / "nginx", www, 1, args.server_cpus))
        nginx_pids = children(nginx.pid)
        idle = idle_cpu([s.pid for s in servers])
        for server, cpu in zip(servers, idle, strict=True):
            print(f"{server.name}: pid {server.pid}, port {server.port}, idle CPU {cpu:.0%}")
        found: Found = {}
        for kind in args.kinds:
            print(f"\n{UNITS[kind]}:", flush=True)
            body = BODY if kind == "join" else b""
            targets = [
                Target(s.name, [s.port], [s.pid], s.path(kind), body=body,
                       tokens=tokens[s.name] if kind == "heartbeat" else [""])
                for s in servers
            ]  # fmt: skip
            targets.append(
                Target("nginx", [nginx_port], nginx_pids, first.path(kind), body=body,
                       tokens=tokens[first.name] if kind == "heartbeat" else [""])
            )  # fmt: skip
            found[kind] = sweep(targets, args, args.client_cpus, unit=UNITS[kind])
        return found, {s.name: c for s, c in zip(servers, idle, strict=True)}


def report(found: Found, idle: dict[str, float], args: argparse.Namespace) -> dict[str, object]:
    """The table: per server and kind, the figure, per core, and its ratio to nginx per core."""
    summary: dict[str, dict[str, object]] = {}
    rows = []
    for name in [*args.servers, "nginx"]:
        row: list[object] = [name]
        summary[name] = {"idle_cpu": idle.get(name)}
        for kind in args.kinds:
            top = best(found[kind][name])
            ref = best(found[kind]["nginx"])
            ratio = top.per_core / ref.per_core if top and ref else float("nan")
            summary[name][kind] = {
                "best": top.summary() if top else None,
                "ratio_per_core_to_nginx": ratio,
                "most_under_wrk": max(x.m("admitted_per_s") for x in found[kind][name]),
            }
            row += [
                f"{top.m('admitted_per_s'):.0f}" if top else "none kept",
                f"{top.m('p99_ms'):.1f}" if top else "-",
                f"{top.per_core:.0f}" if top else "-",
                f"{ratio:.2f}",
            ]
        rows.append(row)
    headers = ["server"]
    for kind in args.kinds:
        headers += [f"{UNITS[kind]}/s", "p99 ms", "per core", "/ nginx"]
    print()
    print_table(headers, rows)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--servers",
        type=lambda s: s.split(","),
        default=["uvicorn", "granian", "granian-embedded", "hypercorn"],
        help=f"comma-separated, of: {', '.join(SERVERS)}",
    )
    parser.add_argument(
        "--kinds", type=lambda s: s.split(","), default=["join", "heartbeat", "empty"]
    )
    parser.add_argument(
        "--connections",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[8, 16, 32, 64, 128],
    )
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per level and server")
    parser.add_argument("--seconds", type=float, default=2.0, help="each wrk run")
    parser.add_argument("--tokens", type=int, default=1000, help="listeners joined first")
    parser.add_argument("--server-cpus", type=parse_cpus, default={0})
    parser.add_argument("--client-cpus", type=parse_cpus, default={1})
    args = parser.parse_args()
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    ensure_program("wrk", "wrk")
    started, load_before = time.monotonic(), load_average()
    with tempfile.TemporaryDirectory(prefix="causerie-servers-") as tmp:
        found, idle = measure(args, Path(tmp))
    summary = report(found, idle, args)
    load_after = load_average()
    print(
        f"\nmedians of {args.runs} wrk runs of {args.seconds:.0f} s per level and target, "
        f"interleaved; a level counts if p99 <= {P99_BOUND_MS:.0f} ms and <= 1 % refused; per "
        f"core = admitted / the serving process's CPU; / nginx = per core "
        f"over nginx's per core, same run.\nload average before {load_before}, after "
        f"{load_after}; {time.monotonic() - started:.0f} s"
    )
    path = write_result(
        "servers",
        {
            "command": command_line("servers"),
            "load_average": [load_before, load_after],
            "servers": summary,
            "levels": {
                kind: {name: [x.summary() for x in levels] for name, levels in by_name.items()}
                for kind, by_name in found.items()
            },
        },
    )
    print(f"\n{command_line('servers')}\n(figures in {path.relative_to(Path.cwd())})")


if __name__ == "__main__":
    main()
