"""A real redis-server on 127.0.0.1 (Debian `redis-server`).

Throwaway by default: nothing saved to disk (`--save ''`, no append-only file). `durable=True`
configures it as RELIABILITY.md asks of a production Redis: the append-only file on, fsynced
before every acknowledgement (`appendonly yes`, `appendfsync always`), so a write Redis
acknowledged survives a crash of Redis itself; `kill9()` then `start()` shows it.
`replica_of` makes it a replica of the server on that port; `options` are more
`redis-server` flags (`--min-replicas-to-write 1`, …). Sentinel: tests/harness/sentinel.py.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

from tests.harness.polling import wait_until
from tests.harness.ports import HOST, free_port
from tests.harness.processes import kill9, start_process, stop, tail


def answers(port: int) -> bool:
    """Whether a Redis on `port` answers PING."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """redis-server working in `workdir` (its log: `workdir/redis.log`)."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        durable: bool = False,
        preexec: Callable[[], None] | None = None,
        replica_of: int | None = None,
        options: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.port = port
        """None until the first start picks a free one; then kept for every restart."""
        self.durable = durable
        self.preexec = preexec
        self.replica_of = replica_of
        self.options = tuple(options)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log(self) -> Path:
        return self.workdir / "redis.log"

    def start(self, timeout: float = 10.0) -> None:
        """Start it (again, on the same port) and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: `make test-deps` installs it (Debian)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        persistence = ("--appendonly", "yes", "--appendfsync", "always")
        # A free port may be taken by someone else before the server binds it: try another.
        for _ in range(1 if self.port else 3):
            port = self.port or free_port()
            self.process = start_process(
                [
                    *(binary, "--bind", HOST, "--port", str(port)),
                    *("--dir", str(self.workdir), "--save", ""),
                    *(persistence if self.durable else ("--appendonly", "no")),
                    *(("--replicaof", HOST, str(self.replica_of)) if self.replica_of else ()),
                    *self.options,
                ],
                self.log,
                preexec=self.preexec,
            )
            try:
                wait_until(partial(self._settled, port), timeout, self._describe, every=0.02)
            except AssertionError:
                stop(self.process)
                raise
            if self.process.poll() is None:  # it answers
                self.port = port
                return
        raise RuntimeError(f"redis-server did not start: {tail(self.log)}")

    def _settled(self, port: int) -> bool:
        """Whether it answers on `port`, or has exited (that port was taken, say)."""
        assert self.process is not None
        return self.process.poll() is not None or answers(port)

    def _describe(self) -> str:
        return f"redis-server answering; {tail(self.log)}"

    def kill9(self) -> None:
        assert self.process is not None
        kill9(self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@contextlib.contextmanager
def run_redis(
    workdir: Path,
    port: int | None = None,
    *,
    durable: bool = False,
    preexec: Callable[[], None] | None = None,
) -> Iterator[RedisServer]:
    """A running Redis until the block ends (a free port unless `port` is given)."""
    server = RedisServer(workdir, port, durable=durable, preexec=preexec)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def flush(url: str) -> None:
    """Empty every database of the server (between tests)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()
