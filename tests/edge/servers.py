"""Real servers on 127.0.0.1 for the edge tests: a causerie demo node, nginx, Varnish.

Everything they write goes under a directory the caller gives (a pytest tmp_path); every one
listens on a free port of 127.0.0.1 and is stopped (SIGTERM, then SIGKILL) at the end.

    with run_origin(tmp / "origin") as origin, run_edge("nginx", [origin.url], tmp / "e") as edge:
        httpx.get(edge.url + origin.playlist_path)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from causerie.edge.config import (
    EdgeOptions,
    Origin,
    nginx_command,
    render,
    varnishd_command,
)
from tests.conftest import free_port

HOST = "127.0.0.1"


def _stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a child we started: SIGTERM, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class RunningOrigin:
    """A `causerie demo` process and its live demo space."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    space_id: str
    playlist_path: str
    log: Path

    def stop(self) -> None:
        _stop(self.process)

    def counter(self, name: str, **labels: str) -> float:
        """A counter from the origin's /metrics (read directly, never through an edge)."""
        return read_counter(httpx.get(f"{self.url}/metrics", timeout=5).text, name, **labels)


def read_counter(text: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text format; 0 if absent."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    wanted = f"{name}{{{inner}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@contextlib.contextmanager
def run_origin(folder: Path, timeout: float = 30.0) -> Iterator[RunningOrigin]:
    """`python -m causerie demo` on a free port, until its demo space's playlist lists parts."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data_dir = folder / "data"
    log_path = folder / "server.log"
    url = f"http://{HOST}:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "causerie",
                "demo",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            space_id, playlist = _wait_live(url, process, log_path, timeout)
            yield RunningOrigin(process, url, data_dir, space_id, playlist, log_path)
        finally:
            _stop(process)


def _wait_live(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"causerie exited: {log.read_text()}")
            with contextlib.suppress(httpx.HTTPError, KeyError, IndexError, ValueError):
                space = client.get("/api/spaces").json()["spaces"][0]
                if client.get(space["media_playlist_url"]).text.count("#EXT-X-PART:") >= 2:
                    return space["id"], space["media_playlist_url"]
            time.sleep(0.1)
    raise RuntimeError(f"the demo space did not go live in {timeout} s: {log.read_text()}")


@dataclass
class RunningEdge:
    """nginx or Varnish in front of origins."""

    kind: str
    process: subprocess.Popen[bytes]
    port: int
    folder: Path
    config: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        found = [p for p in (self.folder / "error.log", self.folder / "out.log") if p.exists()]
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in found)

    def stop(self) -> None:
        _stop(self.process)


def edge_options(origins: Sequence[str], port: int, listeners: int = 1000) -> EdgeOptions:
    """Options for a test edge: one nginx worker, files under its prefix, as this user."""
    root = os.geteuid() == 0
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return EdgeOptions(
        origins=tuple(Origin.parse(o) for o in origins),
        listen=f"{HOST}:{port}",
        workers="1",
        # nginx started as root runs its worker as `nobody`, which cannot enter pytest's
        # private temporary directories: keep the worker as the user we are.
        user=pwd.getpwuid(os.geteuid()).pw_name if root else None,
        open_files=max(1024, min(hard, 65536)),
        storage="malloc,64m",
        listeners=listeners,
        live_max_size="256m",
        api_max_size="256m",
    )


def start_command(kind: str, folder: Path, options: EdgeOptions) -> tuple[list[str], Path]:
    """(command line, config file) for a test edge whose files all go under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "nginx":
        config = folder / "nginx.conf"
        config.write_text(render("nginx", options))
        return nginx_command(config, folder, foreground=True), config
    config = folder / "edge.vcl"
    config.write_text(render("varnish", options))
    command = varnishd_command(
        config,
        options.listen,
        folder / "varnish",
        storage=options.storage,
        listeners=options.listeners,
        foreground=True,
        # As root, varnishd's jail runs the cache process as `vcache`, which cannot enter
        # pytest's private temporary directories.
        jail_none=os.geteuid() == 0,
    )
    return command, config


@contextlib.contextmanager
def run_edge(
    kind: str, origins: Sequence[str], folder: Path, listeners: int = 1000, timeout: float = 30.0
) -> Iterator[RunningEdge]:
    """A real nginx (`daemon off`, one worker) or varnishd (`-F`) on a free port."""
    port = free_port()
    options = edge_options(origins, port, listeners)
    command, config = start_command(kind, folder, options)
    with (folder / "out.log").open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
        edge = RunningEdge(kind, process, port, folder, config)
        try:
            _wait_serving(edge, timeout)
            yield edge
        finally:
            _stop(process)


def _wait_serving(edge: RunningEdge, timeout: float) -> None:
    """Until the edge answers /healthz from an origin."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if edge.process.poll() is not None:
            raise RuntimeError(f"{edge.kind} exited: {edge.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{edge.url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{edge.kind} did not serve in {timeout} s: {edge.log()}")
