"""Endless header fields, straight at a node (no edge in front): refused while they are read.

Found from outside: 4 connections each sending 512 MiB of header fields took a node from 712 MiB
to 2.4 GiB of memory, kept after, before any 431. Here the node answers 431 after its bound
(api/http_timeouts.py) and closes, and its memory does not grow with what clients send.
"""

from __future__ import annotations

import select
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from causerie.api.http_timeouts import MAX_HEADER_READ
from tests.harness.causerie_process import causerie_process

CONNECTIONS = 4
OFFERED = 64 * 1024 * 1024  # per connection: what the client would send if let
CHUNK = 256 * 1024


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def flood(host: str, port: int, results: list[tuple[int, bytes]]) -> None:
    """Send a request line, then one header whose value never ends, until the node answers (as
    a client that reads what it is told does); record what got through and the answer."""
    sent = 0
    answer = b""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /api/spaces HTTP/1.1\r\nHost: test\r\nX-Endless: ")
        try:
            while sent < OFFERED and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"a" * CHUNK)
                sent += CHUNK
            while chunk := sock.recv(65536):
                answer += chunk
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
    results.append((sent, answer))


def test_endless_header_fields_are_refused_while_being_read(tmp_path: Path) -> None:
    with causerie_process(tmp_path, "serve") as node:
        url, process = node.url, node.process
        parts = urlsplit(url)
        assert httpx.get(f"{url}/api/spaces", timeout=5).status_code == 200
        before = rss_kib(process.pid)
        results: list[tuple[int, bytes]] = []
        threads = [
            threading.Thread(target=flood, args=(parts.hostname, parts.port, results))
            for _ in range(CONNECTIONS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        after = rss_kib(process.pid)
        assert len(results) == CONNECTIONS
        for sent, answer in results:
            assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
            assert b'"error":"too_large"' in answer
            # Refused after the bound, not after everything was offered.
            assert sent < MAX_HEADER_READ + 32 * CHUNK
        # Nothing of the floods stays in the node's memory.
        assert after - before < 40 * 1024, f"RSS grew by {(after - before) // 1024} MiB"
        # And the node serves as before.
        assert httpx.get(f"{url}/api/spaces", timeout=5).status_code == 200
