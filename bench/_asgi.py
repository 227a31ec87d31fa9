"""The node as an import string, for ASGI servers started by their own command line.

`bench._asgi:create` is a factory (granian `--factory`, hypercorn `bench._asgi:create()`,
uvicorn `--factory`) that builds the same app `causerie serve` runs, `create_app(Config(...))`,
from environment variables, and, like `causerie demo`, puts the demo space on the air once the
lifespan has started:

- `CAUSERIE_DATA_DIR` (required): the data directory;
- `CAUSERIE_PORT`: the port the server listens on (the node's own URL; default 8080);
- `CAUSERIE_DEMO`: "1" (default) for the live demo space, "0" for none.

Besides the node, `POST /bench/empty` is answered 204 at once, before the node: what the
server costs per request with an app that does nothing (the ceiling of each server).

`python -m bench._asgi` serves the same under uvicorn exactly as `causerie serve` does (the
CLI's uvicorn settings and event loop), so every server runs the very same app.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from causerie import cli
from causerie.api.app import Node, create_app
from causerie.api.limits import Receive, Scope, Send
from causerie.config import Config

EMPTY = "/bench/empty"


class DemoNode:
    """The node; the demo space goes live just before the server hears that start-up is done."""

    def __init__(self, node: Node, demo: bool) -> None:
        self.node = node
        self.demo = demo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == EMPTY:
            while (await receive()).get("more_body"):
                pass
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] != "lifespan" or not self.demo:
            await self.node(scope, receive, send)
            return

        async def send_after_demo(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "lifespan.startup.complete":
                from causerie.demo_space import open_demo_space

                await open_demo_space(self.node.services)
            await send(message)

        await self.node(scope, receive, send_after_demo)


def config() -> Config:
    """The node's configuration, from the environment."""
    return Config(
        port=int(os.environ.get("CAUSERIE_PORT", "8080")),
        data_dir=Path(os.environ["CAUSERIE_DATA_DIR"]),
        log_level="warning",
    )


def create() -> DemoNode:
    """The node configured from the environment (see the module's docstring)."""
    return DemoNode(create_app(config()), os.environ.get("CAUSERIE_DEMO", "1") == "1")


def main() -> None:
    """Serve `create()` with uvicorn as `causerie serve` runs it."""
    server = cli._uvicorn(create(), config())  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=cli._loop_factory()) as runner:
        runner.run(server.serve())


if __name__ == "__main__":
    main()
