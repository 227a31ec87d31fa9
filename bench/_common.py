"""What every benchmark needs: a pinned causerie, CPU time, percentiles, output.

Starting servers (ports, processes, Redis, edges) is the harness's (tests/harness), shared with
the tests."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests.harness.causerie_process import PYTHON_M_CAUSERIE, CauserieProcess, causerie_process

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1


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


# An experiment, not the product: the CLI under uvloop, to measure what switching would give.
UVLOOP_LAUNCHER = (
    "import sys, uvloop; uvloop.install(); from causerie.cli import main; sys.exit(main())"
)


@contextlib.contextmanager
def run_causerie(
    cpus: set[int] | None = None,
    timeout: float = 30.0,
    launcher: str | None = None,
    command: str = "demo",
    redis: str | None = None,
    extra: Sequence[str] = (),
) -> Iterator[CauserieProcess]:
    """`causerie demo` on a free port with a temporary data dir, pinned to `cpus`, until its
    (demo) space is live; stopped at the end.

    `launcher`: Python code that runs the CLI instead of `python -m causerie` (an experiment,
    e.g. UVLOOP_LAUNCHER). With `redis` (a URL), the node shares that Redis; `command="serve"`
    then starts a plain node that sees (and serves) the live space another node's `demo`
    started there. `extra`: more command-line flags.
    """
    flags = ["--log-level", "warning", *(["--redis", redis] if redis else []), *extra]
    python = (sys.executable, "-c", launcher) if launcher else PYTHON_M_CAUSERIE
    with (
        tempfile.TemporaryDirectory(prefix="causerie-bench-") as folder,
        causerie_process(
            Path(folder),
            command,
            *flags,
            parts=1,
            launcher=python,
            preexec=pin(cpus),
            timeout=timeout,
        ) as node,
    ):
        yield node


def ensure_program(program: str, package: str) -> None:
    """Install the Debian package that provides `program` if it is missing
    (`scripts/apt-install.sh`, as `make test-deps` does for the test programs)."""
    if shutil.which(program) is None:
        subprocess.run([str(REPO / "scripts" / "apt-install.sh"), package], check=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


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
