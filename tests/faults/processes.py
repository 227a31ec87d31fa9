"""Real `python -m causerie` processes that a fault test can kill and start again.

Unlike `causerie_process` (tests/conftest.py), the port and the data directory are chosen by
the caller, so that a restart comes back at the same address with the same state.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def stable_port() -> int:
    """A free port *below* the kernel's ephemeral range, for a server that must come back on the
    same port after a kill: a port from that range (what binding port 0 gives) may meanwhile
    become the local port of some outgoing connection, and the restart would fail to bind."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(max(1024, low - 12_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> float:
    """Wait until `url`/healthz answers 200; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return time.monotonic()
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not healthy in {timeout} s: {log.read_text()[-3000:]}")
        time.sleep(0.05)


def start_node(
    data_dir: Path, port: int, log: Path, *args: str, command: str = "serve"
) -> subprocess.Popen[bytes]:
    """Start `causerie COMMAND --port PORT --data-dir DATA ARGS…`, its output appended to `log`."""
    with log.open("a") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "causerie", command),
                *("--port", str(port), "--data-dir", str(data_dir)),
                *("--rtc-host", "127.0.0.1", *args),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop politely (SIGTERM), then for good."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def node_process(
    data_dir: Path, port: int, log: Path, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A node that is healthy inside the block and stopped after it (if still running)."""
    proc = start_node(data_dir, port, log, *args)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, log)
        yield proc
    finally:
        stop(proc)


def last_complete_msn(playlist: str) -> int:
    """The media sequence number of the last complete segment a media playlist lists."""
    match = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist)
    if match is None:
        raise AssertionError(f"not a media playlist: {playlist[:200]!r}")
    uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    return int(match.group(1)) + len(uris) - 1
