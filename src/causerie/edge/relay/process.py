"""`causerie relay`: the relay's processes. One asyncio loop (uvloop) per process; several
processes share the listening port with SO_REUSEPORT (the kernel spreads the connections),
each with its own cache, so an object costs the origin one request per process.

Shutdown (SIGTERM or SIGINT): each worker stops accepting, closes every connection (a listener
streaming a segment sees it cut and asks again elsewhere) and exits; the parent waits for its
workers, `stop_timeout` at most, then kills what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import signal
import socket
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from urllib.parse import urlsplit

import uvloop

from ..config import Origin, parse_listen
from .server import Connection, Limits, Relay
from .upstream import OriginClient

log = logging.getLogger(__name__)

BACKLOG = 4096


@dataclass(frozen=True)
class RelayOptions:
    """What `causerie relay` is given."""

    origin: Origin
    listen: str = "127.0.0.1:8082"
    public_url: str | None = None
    """The address listeners use: its host is the only Host the origin is sent. None: `listen`."""
    workers: int = 1
    limits: Limits = field(default_factory=Limits)
    stop_timeout: float = 5.0

    @property
    def public_host(self) -> str:
        """The Host sent to the origin, never a client's (as the other edges: cache poisoning)."""
        if self.public_url is not None:
            return urlsplit(self.public_url).netloc
        host, port = parse_listen(self.listen)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listening_socket(listen: str, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to `listen` (host:port), listening."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


async def serve(options: RelayOptions, sock: socket.socket) -> None:
    """One worker: serve on `sock` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    origin = OriginClient(options.origin.host, options.origin.port, options.public_host)
    relay = Relay(origin, options.limits)
    relay.start()
    server = await loop.create_server(lambda: Connection(relay), sock=sock, backlog=BACKLOG)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        # 1. stop accepting; 2. close every connection and the origin's; 3. done.
        server.close()
        relay.stop()
        await server.wait_closed()


def _worker(options: RelayOptions) -> None:
    """Process entry of one worker (its own socket on the shared port)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sock = listening_socket(options.listen, reuse_port=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(options, sock))


def run(options: RelayOptions) -> int:
    """Run the relay in the foreground: this process alone, or `workers` processes."""
    if options.workers <= 1:
        sock = listening_socket(options.listen, reuse_port=False)
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(serve(options, sock))
        return 0
    # Bind once here, so a port in use is an error before any worker starts.
    listening_socket(options.listen, reuse_port=True).close()
    context = mp.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(options,), name=f"relay-{n}", daemon=True)
        for n in range(options.workers)
    ]
    for worker in workers:
        worker.start()
    stop = {"asked": False}

    def ask_to_stop(signum: int, _frame: object) -> None:
        stop["asked"] = True
        for worker in workers:
            worker.terminate()  # SIGTERM: the worker closes its connections and exits

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)
    # A worker that dies stops the relay: a supervisor (systemd) restarts it whole.
    wait([worker.sentinel for worker in workers])
    if not stop["asked"]:
        dead = [w for w in workers if not w.is_alive()]
        log.error("relay worker %s exited (%s): stopping", dead[0].name, dead[0].exitcode)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(options.stop_timeout)
        if worker.is_alive():
            worker.kill()
    return 0 if stop["asked"] else 1
