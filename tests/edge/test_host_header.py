"""A client's Host header never reaches what an edge caches for everyone (cache poisoning).

Real nginx and Varnish on 127.0.0.1: one request with `Host: evil.example`, then a normal
reader, who must get an answer that names no evil.example (SECURITY.md, "Cache poisoning").
"""

from __future__ import annotations

import contextlib
import http.server
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.edge.conftest import require
from tests.edge.servers import run_edge
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge
from tests.harness.ports import free_port

EVIL = "evil.example"


class _EchoHost(http.server.BaseHTTPRequestHandler):
    """An origin whose cacheable answer is the Host it was sent: what a careless application
    does when it builds absolute links from the request."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = (self.headers.get("Host") or "").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Cache-Control", "public, max-age=60")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def echo_origin() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), _EchoHost)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("kind", ["nginx", "varnish"])
def test_the_edge_sends_the_origin_one_host(kind: str, tmp_path: Path) -> None:
    """Even an origin that trusts Host cannot be poisoned through the edge: the edge sends
    the configured public host, whatever the client sent."""
    require(kind)
    with (
        echo_origin() as origin,
        run_edge(kind, [origin], tmp_path / kind) as edge,
        httpx.Client(base_url=edge.url, timeout=10) as client,
    ):
        expected = f"127.0.0.1:{edge.port}"  # the edge's public host: its --listen address
        poisoned = client.get("/echo", headers={"Host": EVIL})
        assert poisoned.status_code == 200
        assert poisoned.text == expected
        normal = client.get("/echo")
        assert normal.headers["x-cache"] == "HIT"
        assert normal.text == expected


def test_a_poisoned_calendar_is_not_served_to_the_next_reader(
    edge: RunningEdge, origin: CauserieProcess
) -> None:
    """The finding as reported: the `.ics` through a real edge, a real node behind it."""
    path = f"/api/spaces/{origin.space_id}.ics"
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        first = client.get(path, headers={"Host": EVIL})
        assert first.status_code == 200, first.text
        assert EVIL not in first.text
        second = client.get(path)
        assert second.status_code == 200
        assert second.headers["x-cache"] == "HIT", (edge.kind, second.headers)
        assert EVIL not in second.text
        assert f"URL:{origin.url}/s/{origin.space_id}\r\n" in second.text
