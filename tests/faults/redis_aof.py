"""A redis-server that a test can kill and start again on the same port and directory.

Configured as RELIABILITY.md asks of a production Redis: the append-only file on, fsynced
before every acknowledgement (`appendonly yes`, `appendfsync always`), so a write Redis
acknowledged survives a crash of Redis itself.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.faults.processes import stable_port
from tests.redis_server import _answers


class DurableRedis:
    """redis-server with AOF + fsync always, on 127.0.0.1; `kill9()` then `start()` again."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = stable_port()  # the restart binds it again
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing (Debian package redis-server)")
        with (self.workdir / "redis.log").open("a") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    *("--bind", "127.0.0.1", "--port", str(self.port)),
                    *("--dir", str(self.workdir), "--save", ""),
                    *("--appendonly", "yes", "--appendfsync", "always"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.workdir / 'redis.log'}")
            time.sleep(0.02)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
