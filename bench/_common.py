"""What every benchmark needs: servers on free ports, CPU time, percentiles, output."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
VENV_BIN = REPO / ".venv" / "bin"
HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pin(cpus: set[int] | None) -> Callable[[], None]:
    """A preexec_fn: the child dies with us (SIGTERM), and runs on `cpus` if given.

    Pinning before exec pins every thread the child will start.
    """

    def preexec() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpus:
            os.sched_setaffinity(0, cpus)

    return preexec


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_queue_seconds(pid: int) -> float:
    """Seconds the threads of a process were ready to run but waited for a CPU (schedstat).

    Time stolen by other processes on the same cores: on a shared machine, the noise.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def children(pid: int) -> list[int]:
    """Direct children of a process."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    return percentile(values, 50)


@dataclass
class Causerie:
    """A running `causerie demo` process and its live demo space."""

    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    space_id: str
    playlist_path: str
    data_dir: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def _wait_live(base_url: str, process: subprocess.Popen[bytes], timeout: float) -> tuple[str, str]:
    """Wait until the demo space is live and its playlist lists a part: (space id, path)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"causerie exited with code {process.returncode}")
            with contextlib.suppress(httpx.HTTPError, KeyError, IndexError, ValueError):
                space = client.get("/api/spaces").json()["spaces"][0]
                path = space["media_playlist_url"]
                if "#EXT-X-PART:" in client.get(path).text:
                    return space["id"], path
            time.sleep(0.2)
    raise RuntimeError(f"causerie's demo space did not go live within {timeout} s")


# An experiment, not the product: the CLI under uvloop, to measure what switching would give.
UVLOOP_LAUNCHER = (
    "import sys, uvloop; uvloop.install(); from causerie.cli import main; sys.exit(main())"
)


@contextlib.contextmanager
def run_causerie(
    cpus: set[int] | None = None,
    timeout: float = 30.0,
    uvloop: bool = False,
    command: str = "demo",
    redis: str | None = None,
    extra: Sequence[str] = (),
) -> Iterator[Causerie]:
    """Start `causerie demo` on a free port with a temporary data dir; kill it at the end.

    With `uvloop`, the same CLI runs with uvloop's event loop policy installed first. With
    `redis` (a URL), the node shares that Redis; `command="serve"` then starts a plain node
    that sees (and serves) the live space another node's `demo` started there. `extra`: more
    command-line flags.
    """
    port = free_port()
    launcher = [str(VENV_BIN / "python"), "-c", UVLOOP_LAUNCHER] if uvloop else []
    with tempfile.TemporaryDirectory(prefix="causerie-bench-") as tmp:
        data_dir = Path(tmp)
        log = (data_dir / "server.log").open("wb")
        process = subprocess.Popen(
            [
                *(launcher or [str(VENV_BIN / "causerie")]),
                command,
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--log-level",
                "warning",
                *(["--redis", redis] if redis else []),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=pin(cpus),
        )
        try:
            base_url = f"http://{HOST}:{port}"
            space_id, path = _wait_live(base_url, process, timeout)
            yield Causerie(process, base_url, port, space_id, path, data_dir)
        finally:
            stop_process(process)
            log.close()


@contextlib.contextmanager
def run_redis(folder: Path, cpus: set[int] | None = None) -> Iterator[tuple[str, int]]:
    """redis-server on a free port of 127.0.0.1 (no persistence); yields (its URL, its pid)."""
    port = free_port()
    log = (folder / "redis.log").open("wb")
    process = subprocess.Popen(
        ["redis-server", "--bind", HOST, "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=pin(cpus),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (folder / "redis.log").read_text()
                raise RuntimeError(f"redis-server did not start: {log_text}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    break
            time.sleep(0.05)
        yield f"redis://{HOST}:{port}/0", process.pid
    finally:
        stop_process(process)
        log.close()


def ensure_program(program: str, package: str) -> None:
    """Install the Debian package that provides `program` if it is missing
    (`scripts/apt-install.sh`, as `make test-deps` does for the test programs)."""
    if shutil.which(program) is None:
        subprocess.run([str(REPO / "scripts" / "apt-install.sh"), package], check=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a child we started: signal, wait a little, then kill."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=8)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print rows as a small aligned table."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        pairs = enumerate(zip(row, widths, strict=True))
        padded = (c.rjust(w) if i else c.ljust(w) for i, (c, w) in pairs)
        print("  ".join(padded))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def git_state() -> str:
    """The commit the benchmark ran on, with '+dirty' if the work tree had changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def command_line(module: str) -> str:
    """The exact command that reproduces this run."""
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    return f".venv/bin/python -m bench.{module}" + (f" {args}" if args else "")


def write_result(name: str, result: dict[str, object]) -> Path:
    """Write bench/results/NAME.json and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"git": git_state(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
