"""Shared fixtures: real causerie nodes on 127.0.0.1, and account tokens for them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.nodes import RunningNode, run_node
from tests.redis_server import flush, redis_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server on 127.0.0.1 for the whole session (started on first use)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_url(redis_session: str) -> str:
    """The session's Redis, emptied for this test."""
    flush(redis_session)
    return redis_session


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    """A causerie node in this test's event loop, serving on a real socket."""
    async with run_node(tmp_path / "data") as running:
        yield running


@pytest.fixture
async def client(node: RunningNode) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        yield http


def account(data_dir: Path, name: str = "Hana", user: str | None = None) -> dict[str, str]:
    """Authorization headers for an account on the node using `data_dir`."""
    token = issue_account_token(data_dir, name, user, days=1)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail("ffmpeg is missing: `make test` installs it (Debian package ffmpeg)")
    return path


@contextmanager
def causerie_process(
    folder: Path, *args: str
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """`python -m causerie ARGS…` as a real separate process on a free port, until the block
    ends; yields (base URL, data dir, process). Its output goes to `folder/server.log`."""
    port = free_port()
    data_dir = folder / "data"
    log_path = folder / "server.log"
    command = [sys.executable, "-m", "causerie", *args, "--port", str(port)]
    command += ["--data-dir", str(data_dir)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {log_path.read_text()}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("server did not start in 30 s")
                time.sleep(0.1)
            yield url, data_dir, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`causerie demo` as a real separate process; yields (base URL, data dir)."""
    with causerie_process(tmp_path, "demo") as (url, data_dir, _):
        yield url, data_dir


@pytest.fixture
def rtc_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`causerie serve --rtc-host 127.0.0.1` (WebRTC on loopback only); yields (URL, data dir)."""
    with causerie_process(tmp_path, "serve", "--rtc-host", "127.0.0.1") as (url, data_dir, _):
        yield url, data_dir
