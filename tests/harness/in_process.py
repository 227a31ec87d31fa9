"""A causerie node inside the test's event loop, on a real socket of 127.0.0.1.

It is served by the very uvicorn server `causerie serve` builds (`causerie.cli.build_server`):
the same HTTP protocol with its read deadlines, the same keep-alive timeout, lifespan and
proxy-header policy. Tests reach it with real HTTP clients and look into `app.services`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from causerie.api.app import Node
from causerie.app import create_app
from causerie.cli import build_server
from causerie.node.config import Config
from tests.harness.polling import eventually
from tests.harness.ports import HOST


@dataclass
class RunningNode:
    url: str
    data_dir: Path
    app: Node
    server: uvicorn.Server


@asynccontextmanager
async def run_node(
    data_dir: Path, port: int = 0, *, host: str = HOST, **options: object
) -> AsyncIterator[RunningNode]:
    """Serve a node (`Config(**options)`) on `host` (127.0.0.1, or the address of a network
    namespace's veth the test made) until the block ends.

    `port`: 0 for any free one; a port chosen beforehand (`free_port()`) when nodes sharing a
    Redis must reach this one at the address it advertises (they forward to a space's owner).

    The node shares its event loop with the test's own client code, whose blocking calls
    (ffprobe, files) would read as the node running late: load shedding on loop lag is left
    to tests of a node in a process of its own (test_storm.py) unless `max_lag` is given.
    """
    options.setdefault("max_lag", 10.0)
    # A recognizer process per live space costs CPU most tests have no use for: opt in.
    options.setdefault("captions_max", 0)
    config = Config(host=host, port=port, data_dir=data_dir, log_level="warning", **options)
    app = create_app(config)
    server = build_server(app, config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), 30, "the node starting", every=0.01)
    if not server.started:
        await task  # its exception, if it raised one
        raise RuntimeError("the node did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningNode(f"http://{host}:{port}", data_dir, app, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)
