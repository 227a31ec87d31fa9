"""A real redis-server on 127.0.0.1 for the tests (Debian `redis-server`), on a free port.

Nothing is saved to disk (`--save ''`, no append-only file); the server is killed at the end.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(workdir: Path, port: int | None = None) -> Iterator[str]:
    """Start redis-server in `workdir` (on `port`, else a free one) and yield its URL
    (redis://127.0.0.1:PORT/0)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: `make test-deps` installs it (Debian)")
    workdir.mkdir(parents=True, exist_ok=True)
    wanted = port
    for _ in range(3):  # a free port may be taken by someone else before the server binds it
        port = wanted or _free_port()
        log = (workdir / f"redis-{port}.log").open("w")
        proc = subprocess.Popen(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while proc.poll() is None and not _answers(port) and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None and _answers(port):
            break
        proc.kill()
        proc.wait()
        log.close()
    else:
        raise RuntimeError(f"redis-server did not start; see {workdir}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def flush(url: str) -> None:
    """Empty every database of the server (between tests)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()
