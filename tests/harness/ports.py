"""Ports of 127.0.0.1 for the servers that tests and benchmarks start."""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stable_port() -> int:
    """A free port *below* the kernel's ephemeral range, for a server that must come back on the
    same port after a kill: a port from that range (what binding port 0 gives) may meanwhile
    become the local port of some outgoing connection, and the restart would fail to bind."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(max(1024, low - 12_000), low)
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")
