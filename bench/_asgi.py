"""The node as an import string, for ASGI servers started by their own command line.

`bench._asgi:create` is a factory (granian `--factory`, hypercorn `bench._asgi:create()`,
uvicorn `--factory`) that builds the same app `causerie serve` runs, `create_app(Config(...))`,
from environment variables, and, like `causerie demo`, puts the demo space on the air once the
lifespan has started:

- `CAUSERIE_DATA_DIR` (required): the data directory;
- `CAUSERIE_PORT`: the port the server listens on (the node's own URL; default 8080);
- `CAUSERIE_DEMO`: "1" (default) for the live demo space, "0" for none.

Besides the node, for the benchmarks and checks of the servers themselves:
- `POST /bench/empty` is answered 204 at once, before the node: what the server costs per
  request with an app that does nothing (the ceiling of each server);
- `GET /bench/scope` answers the ASGI scope's client, server, scheme and HTTP version as
  JSON: whether the server rewrote them from X-Forwarded-* headers;
- when the node's lifespan shutdown has completed, the file `lifespan-shutdown` is written
  in the data directory.

`python -m bench._asgi` serves the same under uvicorn exactly as `causerie serve` does (the
CLI's uvicorn settings and event loop), so every server runs the very same app;
`python -m bench._asgi asgi` the same without the join lane (api/join_lane.py: joins and
heartbeats through ASGI); `python -m bench._asgi granian` serves it with granian's embedded
server instead, in the same
uvloop event loop (no worker process): what a `causerie serve --http-server granian` would be.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from causerie import cli
from causerie.api.app import Node
from causerie.api.http_timeouts import timed_http_protocol
from causerie.api.join_lane import JoinLane
from causerie.app import create_app
from causerie.asgi import Receive, Scope, Send
from causerie.node.config import Config

EMPTY = "/bench/empty"
SCOPE = "/bench/scope"
SHUTDOWN_MARK = "lifespan-shutdown"


class DemoNode:
    """The node; the demo space goes live just before the server hears that start-up is done."""

    def __init__(self, node: Node, demo: bool, data_dir: Path) -> None:
        self.node = node
        self.demo = demo
        self.data_dir = data_dir

    @property
    def lane(self) -> JoinLane:
        """The node's join lane (cli.build_server gives it to uvicorn's protocol)."""
        return self.node.lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in (EMPTY, SCOPE):
            while (await receive()).get("more_body"):
                pass
            await self._answer(scope, send)
            return
        if scope["type"] != "lifespan":
            await self.node(scope, receive, send)
            return

        async def send_lifespan(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "lifespan.startup.complete" and self.demo:
                from causerie.node.demo import open_demo_space

                await open_demo_space(self.node.services)
            elif message["type"] == "lifespan.shutdown.complete":
                (self.data_dir / SHUTDOWN_MARK).write_text("done\n")
            await send(message)

        await self.node(scope, receive, send_lifespan)

    @staticmethod
    async def _answer(scope: Scope, send: Send) -> None:
        if scope["path"] == EMPTY:
            status, headers, body = 204, [], b""
        else:
            seen = {k: scope.get(k) for k in ("client", "server", "scheme", "http_version")}
            body = json.dumps(seen).encode()
            headers = [(b"content-type", b"application/json")]
            headers.append((b"content-length", str(len(body)).encode()))
            status = 200
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def config() -> Config:
    """The node's configuration, from the environment."""
    return Config(
        port=int(os.environ.get("CAUSERIE_PORT", "8080")),
        data_dir=Path(os.environ["CAUSERIE_DATA_DIR"]),
        log_level="warning",
        captions_max=0,  # these benchmarks measure the servers, not the captions
    )


def create() -> DemoNode:
    """The node configured from the environment (see the module's docstring)."""
    settings = config()
    demo = os.environ.get("CAUSERIE_DEMO", "1") == "1"
    return DemoNode(create_app(settings), demo, settings.data_dir)


class EmbeddedGranian:
    """granian's embedded server (its Rust HTTP/1.1 stack, driving this process's event loop),
    with `serve()` like `uvicorn.Server`; SIGINT and SIGTERM stop it (granian leaves them to
    the caller in this mode)."""

    def __init__(self, app: DemoNode, settings: Config) -> None:
        from granian.constants import HTTPModes, Interfaces
        from granian.log import LogLevels
        from granian.server.embed import Server

        self.server = Server(
            app,
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            http=HTTPModes.http1,
            websockets=False,
            backlog=2048,  # uvicorn's default
            log_level=LogLevels(settings.log_level),
        )

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.server.stop)
        await self.server.serve()


def main() -> None:
    """Serve `create()` with uvicorn as `causerie serve` runs it, or with embedded granian
    (`granian`), or with uvicorn as `causerie serve` runs it but without the join lane
    (`asgi`: joins and heartbeats through ASGI, as before api/join_lane.py)."""
    app, settings = create(), config()
    server: Any
    if sys.argv[1:] == ["granian"]:
        server = EmbeddedGranian(app, settings)
    else:
        server = cli.build_server(app, settings)  # type: ignore[arg-type]
        if sys.argv[1:] == ["asgi"]:
            server.config.http = timed_http_protocol()
    with asyncio.Runner(loop_factory=cli._loop_factory()) as runner:
        runner.run(server.serve())


if __name__ == "__main__":
    main()
