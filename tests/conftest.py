"""Shared fixtures: real causerie nodes on 127.0.0.1, a real Redis, and account tokens."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.harness.causerie_process import causerie_process
from tests.harness.in_process import RunningNode, run_node
from tests.harness.redis_server import flush, run_redis


@pytest.fixture(scope="session")
def redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server on 127.0.0.1 for the whole session (started on first use)."""
    with run_redis(tmp_path_factory.mktemp("redis")) as redis:
        yield redis.url


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


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`causerie demo` as a real separate process; yields (base URL, data dir)."""
    with causerie_process(tmp_path, "demo") as demo:
        yield demo.url, demo.data_dir


@pytest.fixture
def rtc_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`causerie serve --rtc-host 127.0.0.1` (WebRTC on loopback only); yields (URL, data dir)."""
    with causerie_process(tmp_path, "serve", "--rtc-host", "127.0.0.1") as node:
        yield node.url, node.data_dir
