"""Running real causerie nodes on 127.0.0.1 inside a test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from causerie.api.app import Node, create_app
from causerie.node.config import Config


@dataclass
class RunningNode:
    url: str
    data_dir: Path
    app: Node


@asynccontextmanager
async def run_node(
    data_dir: Path, *, host: str = "127.0.0.1", **options: object
) -> AsyncIterator[RunningNode]:
    """Serve a node on a free port of ``host`` until the block ends.

    The node shares its event loop with the test's own client code, whose blocking calls
    (ffprobe, files) would read as the node running late: load shedding on loop lag is left
    to tests of a node in a process of its own (test_storm.py) unless `max_lag` is given.
    """
    options.setdefault("max_lag", 10.0)
    config = Config(port=0, data_dir=data_dir, log_level="warning", **options)
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=0,
            log_level="warning",
            lifespan="on",
            proxy_headers=False,  # as `causerie serve`: only Config.trusted_proxies are believed
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the node did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningNode(f"http://{host}:{port}", data_dir, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)
