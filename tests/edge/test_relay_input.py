"""Bad input to `causerie relay`, as an attacker would send it, on raw sockets: every answer is
a 4xx or a closed connection, never a 5xx or a crash, and the relay serves on afterwards."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge, run_relay

HEADER_TIMEOUT = 1.0
IDLE_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def relay(
    origin: CauserieProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningEdge]:
    flags = ["--header-timeout", str(HEADER_TIMEOUT), "--idle-timeout", str(IDLE_TIMEOUT)]
    with run_relay(origin.url, tmp_path_factory.mktemp("relay"), extra=flags) as running:
        yield running


def exchange(relay: RunningEdge, data: bytes, wait: float = 5.0) -> tuple[bytes, bool]:
    """Send `data`, read until the relay closes or `wait` passes: (what came, closed)."""
    with socket.create_connection(("127.0.0.1", relay.port), timeout=wait) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b"", True
        received = bytearray()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return bytes(received), False
            except ConnectionResetError:
                return bytes(received), True
            if not chunk:
                return bytes(received), True
            received += chunk
        return bytes(received), False


def statuses(response: bytes) -> list[int]:
    """The status of each response (none of the bodies here holds a line like a status's)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) [A-Z]", response)]


def alive(relay: RunningEdge) -> None:
    response, _closed = exchange(relay, b"GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n", 2.0)
    assert statuses(response) == [200]
    assert relay.process.poll() is None


REFUSED = {
    "huge header": (b"GET /time HTTP/1.1\r\nHost: r\r\nX-A: " + b"a" * 200_000 + b"\r\n\r\n", 431),
    "header over the bound in one read": (
        b"GET /time HTTP/1.1\r\nHost: r\r\nX-A: " + b"a" * 20_000 + b"\r\n\r\n",
        431,
    ),
    "many headers": (b"GET /time HTTP/1.1\r\nHost: r\r\n" + b"X-A: 1\r\n" * 100 + b"\r\n", 431),
    "long target": (b"GET /dash/" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: r\r\n\r\n", 414),
    "garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", 400),
    "no version": (b"GET /time\r\n\r\n", 505),  # llhttp reads it as HTTP/0.9
    "bad method": (b"G\x00T /time HTTP/1.1\r\nHost: r\r\n\r\n", 400),
    "space in target": (b"GET /ti me HTTP/1.1\r\nHost: r\r\n\r\n", 400),
    "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    "HTTP/0.9 style": (b"GET /time HTTP/0.9\r\n\r\n", 505),
    "no Host": (b"GET /time HTTP/1.1\r\n\r\n", 400),
    "two Hosts": (b"GET /time HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "NUL in a header": (b"GET /time HTTP/1.1\r\nHost: r\r\nX-A: a\x00b\r\n\r\n", 400),
    "bare LF line ends": (b"GET /time HTTP/1.1\nHost: r\n\n", 400),
    "a body": (b"POST /time HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\nhello", 400),
    "a chunked body": (
        b"GET /time HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "smuggling (CL and TE)": (
        b"GET /time HTTP/1.1\r\nHost: r\r\nContent-Length: 4\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n0\r\n\r\n",
        400,
    ),
    "traversal": (b"GET /dash/../../etc/passwd HTTP/1.1\r\nHost: r\r\n\r\n", 404),
    "encoded traversal": (b"GET /dash/%2e%2e/%2e%2e/metrics HTTP/1.1\r\nHost: r\r\n\r\n", 400),
    "encoded letters": (b"GET /%64ash/x/manifest.mpd HTTP/1.1\r\nHost: r\r\n\r\n", 400),
    "encoded slash": (b"GET /dash/x%2Fy/manifest.mpd HTTP/1.1\r\nHost: r\r\n\r\n", 404),
    "asterisk": (b"OPTIONS * HTTP/1.1\r\nHost: r\r\n\r\n", 400),
    "another path": (b"GET /api/spaces HTTP/1.1\r\nHost: r\r\n\r\n", 404),
    "metrics": (b"GET /metrics HTTP/1.1\r\nHost: r\r\n\r\n", 404),
    "DELETE": (b"DELETE /time HTTP/1.1\r\nHost: r\r\n\r\n", 405),
    "a huge segment number": (
        b"GET /dash/x/r/99999999999999999999.m4s HTTP/1.1\r\nHost: r\r\n\r\n",
        404,
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_input_is_refused(relay: RunningEdge, case: str) -> None:
    data, expected = REFUSED[case]
    response, closed = exchange(relay, data)
    assert statuses(response) in ([expected], []), (case, response[:300])
    assert statuses(response) == [expected] or closed, (case, response[:300])
    if expected in (400, 414, 431, 505) and case not in ("encoded traversal", "encoded letters"):
        assert closed, case  # what follows on such a connection cannot be trusted
    assert b'"error"' in response or not response
    alive(relay)


def test_pipelined_requests_are_answered_in_order(relay: RunningEdge) -> None:
    data = (
        b"GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n"
        b"GET /nowhere HTTP/1.1\r\nHost: r\r\n\r\n"
        b"HEAD /time HTTP/1.1\r\nHost: r\r\n\r\n"
        b"GET /time HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n"  # after the close: never answered
    )
    response, closed = exchange(relay, data)
    assert statuses(response) == [200, 404, 200, 200], response
    assert closed
    assert response.rstrip().endswith(b"Z")  # the clock: ISO text


def test_many_pipelined_requests_in_one_read(relay: RunningEdge) -> None:
    count = 5000
    data = b"GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n" * count
    response, _closed = exchange(relay, data + b"GET /healthz HTTP/1.1\r\nHost: r\r\n"
                                 b"Connection: close\r\n\r\n", wait=10)  # fmt: skip
    assert statuses(response) == [200] * (count + 1)


def test_the_absolute_form_is_read_as_its_path(relay: RunningEdge) -> None:
    # RFC 9112 §3.2.2: a server accepts it; the host in it, like Host, changes nothing.
    response, _closed = exchange(
        relay, b"GET http://evil.example/time HTTP/1.1\r\nHost: r\r\n\r\n", wait=1
    )
    assert statuses(response) == [200] and b"evil" not in response


def test_an_upgrade_is_ignored_and_the_connection_closed(relay: RunningEdge) -> None:
    # RFC 9110 §7.8: a server may ignore Upgrade; what follows is another protocol, unread.
    response, closed = exchange(
        relay,
        b"GET /healthz HTTP/1.1\r\nHost: r\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"\r\n\x81\x85\x00\x00\x00\x00hello",
    )
    assert statuses(response) == [200] and closed


def test_http_1_0(relay: RunningEdge) -> None:
    response, closed = exchange(relay, b"GET /time HTTP/1.0\r\n\r\n")
    assert statuses(response) == [200] and closed
    response, closed = exchange(
        relay, b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", wait=0.5
    )
    assert statuses(response) == [200] and not closed


def test_slowloris_is_closed_after_the_header_timeout(relay: RunningEdge) -> None:
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /time HTTP/1.1\r\nHost: r\r\n")
        closed_after = None
        for _ in range(20):
            try:
                sock.sendall(b"X-A: b\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            sock.settimeout(0.5)
            try:
                if sock.recv(1024) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
        assert closed_after is not None, "a slow head was never closed"
        assert HEADER_TIMEOUT <= closed_after < HEADER_TIMEOUT + 2.5


def test_an_idle_connection_is_closed(relay: RunningEdge) -> None:
    response, closed = exchange(relay, b"GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n", wait=5)
    assert statuses(response) == [200] and closed
    _nothing, closed = exchange(relay, b"", wait=5)
    assert closed  # a connection that never sends a request is closed too


def test_many_connections_that_send_nothing_then_vanish(relay: RunningEdge) -> None:
    socks = [socket.create_connection(("127.0.0.1", relay.port)) for _ in range(300)]
    for sock in socks:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # reset
    alive(relay)
