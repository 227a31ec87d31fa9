"""Child processes of a test or a benchmark: started with their output in a log file, stopped
politely then by force, or killed as a crash would kill them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path


def start_process(
    command: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command`, its output (stdout and stderr) appended to `log`.

    Python children write unbuffered, so the log is complete when a start-up fails.
    `preexec` runs in the child before the program (a benchmark pins it to CPUs).
    """
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=preexec,
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a child we started: SIGTERM, then SIGKILL if it is still running after `timeout`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def kill9(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux /proc), e.g. nginx's workers; none once it has exited."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that has just ended
                found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def tail(log: Path, chars: int = 3000) -> str:
    """The end of a log, for a failure message."""
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"({log}: {exc.strerror})"
