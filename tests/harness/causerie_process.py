"""`causerie serve` or `causerie demo` as a process of its own on 127.0.0.1.

    with causerie_process(tmp_path, "demo", "--log-level", "warning", parts=2) as node:
        httpx.get(node.url + node.playlist_path)

Everything goes under a folder the caller gives: the data directory (`FOLDER/data`) and the
output (`FOLDER/server.log`, appended to, so that a restart's output follows the crash's). A
`CauserieProcess` can be killed and started again on the same port with the same data, as
the fault tests do; `causerie_process` runs one for a block and stops it after.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.harness.polling import wait_until
from tests.harness.ports import HOST, free_port
from tests.harness.processes import kill9, start_process, stop, tail

PYTHON_M_CAUSERIE = (sys.executable, "-m", "causerie")


@dataclass
class CauserieProcess:
    """One `causerie COMMAND` node: `start()`, `wait_healthy()`, `kill9()`, `stop()`."""

    folder: Path
    command: str
    flags: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    launcher: Sequence[str] = PYTHON_M_CAUSERIE
    """What runs the CLI; a benchmark may use `python -c CODE` to run it another way."""
    preexec: Callable[[], None] | None = None
    space_id: str = field(default="", init=False)
    """The live space `wait_live()` found (the demo's), and its playlist's path."""
    playlist_path: str = field(default="", init=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("not started")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> None:
        """Start the process (again, after a kill: same port, same data)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        where = ("--port", str(self.port), "--data-dir", str(self.data_dir))
        self._process = start_process(
            [*self.launcher, self.command, *where, *self.flags], self.log, preexec=self.preexec
        )

    def wait_healthy(self, timeout: float = 30.0) -> float:
        """Until /healthz answers 200; the monotonic time it did."""
        wait_until(self._healthy, timeout, self._describe("/healthz answering"))
        return time.monotonic()

    def wait_live(self, parts: int = 1, timeout: float = 30.0) -> None:
        """Until the first space listed is live and its playlist lists `parts` parts (the demo
        space, or, on a node sharing its Redis, another node's); remembers its id and path."""
        with httpx.Client(base_url=self.url, timeout=2) as client:

            def live() -> bool:
                self._check_running()
                with contextlib.suppress(httpx.HTTPError, KeyError, IndexError, ValueError):
                    space = client.get("/api/spaces").json()["spaces"][0]
                    playlist = client.get(space["media_playlist_url"]).text
                    if playlist.count("#EXT-X-PART:") >= parts:
                        self.space_id, self.playlist_path = space["id"], space["media_playlist_url"]
                        return True
                return False

            wait_until(live, timeout, self._describe("a live space"), every=0.1)

    def kill9(self) -> None:
        """SIGKILL, as a crash: no shutdown code runs, no lease is released."""
        kill9(self.process)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL (nothing if it is not running)."""
        if self._process is not None:
            stop(self._process)

    def _healthy(self) -> bool:
        self._check_running()
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        return False

    def _check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"causerie {self.command} exited ({code}): {tail(self.log)}")

    def _describe(self, what: str) -> Callable[[], str]:
        return lambda: f"causerie {self.command} on {self.url}: {what}; {tail(self.log)}"


@contextlib.contextmanager
def causerie_process(
    folder: Path,
    command: str,
    *flags: str,
    parts: int = 0,
    port: int | None = None,
    launcher: Sequence[str] = PYTHON_M_CAUSERIE,
    preexec: Callable[[], None] | None = None,
    timeout: float = 30.0,
) -> Iterator[CauserieProcess]:
    """`causerie COMMAND --port P --data-dir FOLDER/data FLAGS…` until the block ends.

    Yields once /healthz answers, and with `parts`, once a space is live with that many parts
    (`wait_live`). `port`: a free one unless given.
    """
    if not any(flag.startswith("--captions-max") for flag in flags):
        flags = (*flags, "--captions-max", "0")  # recognizers only where a test wants them
    node = CauserieProcess(folder, command, flags, port or free_port(), launcher, preexec)
    node.start()
    try:
        node.wait_healthy(timeout)
        if parts:
            node.wait_live(parts, timeout)
        yield node
    finally:
        node.stop()
