"""Edges on 127.0.0.1: nginx or Varnish configured by `causerie.edge.config` exactly as
`causerie edge-config` writes them, `causerie relay`, and a plain nginx serving files (a
benchmark's reference).

Each runs in the foreground (nginx `daemon off`, varnishd `-F`) with all its files under a
folder the caller gives, on a free port, and is stopped (SIGTERM, then SIGKILL) at the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import resource
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from causerie.edge.config import (
    EdgeOptions,
    Origin,
    nginx_command,
    parse_listen,
    render,
    varnishd_command,
)
from tests.harness.causerie_process import PYTHON_M_CAUSERIE
from tests.harness.polling import wait_until
from tests.harness.ports import HOST, free_port
from tests.harness.processes import children, start_process, stop, tail

AS_ROOT = os.geteuid() == 0


def edge_options(origins: Sequence[str], listeners: int, **settings: object) -> EdgeOptions:
    """Options for an edge on a free port of 127.0.0.1: one nginx worker, files under its
    prefix, run as the user we are; `settings`: any other `EdgeOptions` field."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return EdgeOptions(
        origins=tuple(Origin.parse(origin) for origin in origins),
        listen=f"{HOST}:{free_port()}",
        workers="1",
        # nginx started as root runs its worker as `nobody`, which cannot enter our private
        # temporary directories: keep the worker as the user we are.
        user=pwd.getpwuid(os.geteuid()).pw_name if AS_ROOT else None,
        open_files=max(1024, min(hard, 65536)),
        listeners=listeners,
        **settings,  # type: ignore[arg-type]
    )


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

    def pids(self) -> list[int]:
        """The processes doing the work: nginx's master and worker, varnishd's manager and
        child."""
        return [self.process.pid, *children(self.process.pid)]

    def log(self) -> str:
        found = [p for p in (self.folder / "error.log", self.folder / "out.log") if p.exists()]
        return "\n".join(tail(path, 4000) for path in found)

    def stop(self) -> None:
        stop(self.process)


def edge_command(
    kind: str, folder: Path, options: EdgeOptions, varnish_params: Sequence[str] = ()
) -> tuple[list[str], Path]:
    """(command line, configuration file) of an edge whose files all go under `folder`;
    `varnish_params`: more varnishd `-p` settings, after the generated ones."""
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
        # As root, varnishd's jail runs the cache process as `vcache`, which cannot enter our
        # private temporary directories.
        jail_none=AS_ROOT,
        extra=[arg for param in varnish_params for arg in ("-p", param)],
    )
    return command, config


@contextlib.contextmanager
def run_edge(
    kind: str,
    options: EdgeOptions,
    folder: Path,
    *,
    varnish_params: Sequence[str] = (),
    preexec: Callable[[], None] | None = None,
    timeout: float = 30.0,
) -> Iterator[RunningEdge]:
    """An edge of `kind` ("nginx" or "varnish") listening where `options` say, until the block
    ends; yields once it answers /healthz from an origin."""
    command, config = edge_command(kind, folder, options, varnish_params)
    process = start_process(command, folder / "out.log", cwd=folder, preexec=preexec)
    edge = RunningEdge(kind, process, parse_listen(options.listen)[1], folder, config)
    try:
        wait_until(lambda: _serving(edge), timeout, lambda: f"{kind} serving; {edge.log()}", 0.1)
        yield edge
    finally:
        edge.stop()


@contextlib.contextmanager
def run_relay(
    origin: str,
    folder: Path,
    *,
    workers: int = 1,
    extra: Sequence[str] = (),
    preexec: Callable[[], None] | None = None,
    timeout: float = 30.0,
) -> Iterator[RunningEdge]:
    """`causerie relay` in front of `origin` on a free port of 127.0.0.1, until the block ends;
    yields once it answers /healthz. `extra`: more flags."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        *PYTHON_M_CAUSERIE,
        "relay",
        "--listen",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        *extra,
        origin,
    ]
    config = folder / "command"
    config.write_text(" ".join(command) + "\n")
    process = start_process(command, folder / "out.log", cwd=folder, preexec=preexec)
    edge = RunningEdge("relay", process, port, folder, config)
    try:
        wait_until(lambda: _serving(edge), timeout, lambda: f"relay serving; {edge.log()}", 0.1)
        yield edge
    finally:
        edge.stop()


def _serving(edge: RunningEdge) -> bool:
    if edge.process.poll() is not None:
        raise RuntimeError(f"{edge.kind} exited: {edge.log()}")
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{edge.url}/healthz", timeout=2).status_code == 200
    return False


@contextlib.contextmanager
def run_nginx(
    folder: Path,
    config_text: str,
    workers: int = 1,
    *,
    preexec: Callable[[], None] | None = None,
    timeout: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """nginx with the configuration `config_text` (which says `daemon off`), its paths under
    `folder`, until the block ends; yields once its `workers` worker processes run."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(config_text)
    process = start_process(nginx_command(config, folder), folder / "out.log", preexec=preexec)
    try:

        def started() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {tail(folder / 'error.log')}")
            return len(children(process.pid)) >= workers

        wait_until(started, timeout, lambda: f"nginx workers; {tail(folder / 'error.log')}")
        yield process
    finally:
        stop(process)
