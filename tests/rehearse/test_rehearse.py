"""`causerie rehearse` as a real process against a real `causerie demo` node."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import account
from tests.harness.causerie_process import causerie_process
from tests.harness.ports import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One `causerie demo` node (a live space with two synthetic voices) for this module;
    yields (URL, data dir)."""
    with causerie_process(tmp_path_factory.mktemp("demo"), "demo") as node:
        yield node.url, node.data_dir


def rehearse(*words: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    """`causerie rehearse WORDS` (or `python -m causerie.rehearse`, which it runs) to the end."""
    entry = ["causerie.rehearse"] if module else ["causerie", "rehearse"]
    return subprocess.run(
        [sys.executable, "-m", *entry, *words], capture_output=True, text=True, timeout=120
    )


def test_rehearsal_against_a_demo_node(demo_node: tuple[str, Path], tmp_path: Path):
    # Distributed, as over several machines: `causerie rehearse --master` hands the listeners
    # to a worker process and reports the figures the worker sends back.
    report = tmp_path / "report"
    port = str(free_port())
    worker = subprocess.Popen(
        [sys.executable, "-m", "causerie.rehearse", "--worker", "--master-port", port],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done = rehearse(
            "--target",
            demo_node[0],
            "--listeners",
            "20",
            "--ramp",
            "3",
            "--duration",
            "10",
            "--actions-every",
            "3",
            "--progress-every",
            "2",
            "--report",
            str(report),
            "--master",
            "--expect-workers",
            "1",
            "--master-bind-host",
            "127.0.0.1",
            "--master-port",
            port,
        )
        worker_exit = worker.wait(timeout=30)  # the master tells its workers to quit
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker_exit == 0, worker.stderr.read() if worker.stderr else ""
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((report / "report.json").read_text())
    assert data["joins_admitted"] == 20
    assert data["joins_per_second_peak"] > 0
    assert data["ttfa_count"] == 20
    assert 0 < data["ttfa_p50"] < 5
    assert data["ttfa_p50"] <= data["ttfa_p99"] < 10
    # 20 listeners × ~7 s after the ramp × 4.7 parts (chunks)/s: hundreds when on time.
    assert data["parts"] > 100
    # No errors. A node whose event loop lags under this machine's load may refuse a few
    # control-plane requests politely (503 + Retry-After, retried): those are not failures.
    assert data["hard_errors"] == 0, data["errors"]
    assert set(data["errors"]) <= {"HTTP 503"}
    rows = {row["name"]: row for row in data["requests_by_name"]}
    assert {
        "GET /api/spaces",
        "GET /api/spaces/{id}",
        "GET /api/settings",
        "GET questions",
        "POST join",
        "GET manifest",
        "GET time",
        "GET init",
        "GET segment",
        "GET feed now",
        "GET feed window",
        "POST reaction",
    } <= set(rows)
    # The page as it is: no LL-HLS playlist or part requests, no event stream.
    assert not [name for name in rows if "playlist" in name or "part" in name]
    # One request per 3.84 s segment per listener (20 listeners, ~7-10 s each), not a part
    # every 213 ms; one feed window each, or two across a window's end.
    assert 20 <= rows["GET segment"]["requests"] <= 20 * 5
    assert 20 <= rows["GET feed window"]["requests"] <= 20 * 3
    # Everything included (the one-off page load too, in a run this short), per listener.
    assert 0 < data["requests_per_listener_second"] < 3
    # The summary on stdout, a progress line every 2 s on stderr.
    assert "joins admitted       20" in done.stdout
    assert "requests/s, everything included" in done.stdout
    assert done.stdout.rstrip().endswith("PASSED")
    progress = [line for line in done.stderr.splitlines() if "joins/s" in line]
    assert len(progress) >= 3  # workers report every 3 s: the master's figures come in steps
    assert "users    20/20" in progress[-1]
    page = (report / "report.html").read_text()
    assert page.count("<svg") == 5
    assert "Time to first audio" in page and "Parts late" in page and "Errors by kind" in page


class RefusingProxy(ThreadingHTTPServer):
    """In front of a node: answers the first `refuse` joins 503 + `Retry-After: 2` and the
    first `break_parts` segment requests 500; forwards everything else."""

    daemon_threads = True

    def __init__(self, origin: str, refuse: int, break_parts: int) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.origin = urlsplit(origin).netloc
        self.refuse = refuse
        self.break_parts = break_parts
        self.lock = threading.Lock()
        self.refused_at: list[float] = []
        self.joined_at: list[float] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RefusingProxy

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "POST" and self.path.endswith("/join"):
            with self.server.lock:
                refuse = len(self.server.refused_at) < self.server.refuse
                (self.server.refused_at if refuse else self.server.joined_at).append(time.time())
            if refuse:
                self._send(
                    503,
                    {"Retry-After": "2", "Content-Type": "application/json"},
                    b'{"error": "unavailable", "message": "busy"}',
                )
                return
        if self.path.startswith("/dash/") and self.path.endswith(".m4s"):
            with self.server.lock:
                broken = self.server.break_parts > 0
                self.server.break_parts -= broken
            if broken:
                self._send(500, {"Content-Type": "text/plain"}, b"disk on fire")
                return
        upstream = http.client.HTTPConnection(self.server.origin, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            kept = ("content-type", "retry-after", "cache-control")
            headers = {k: v for k, v in answer.getheaders() if k.lower() in kept}
            if answer.getheader("Content-Length") is None:
                self._stream(answer.status, headers, answer)  # a segment or a window in progress
            else:
                self._send(answer.status, headers, answer.read())
        finally:
            upstream.close()

    def _stream(self, status: int, headers: dict[str, str], answer) -> None:
        """Pass a body on as it comes, as an edge does (chunked transfer)."""
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while data := answer.read1(65536):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except ConnectionError:
            pass  # the listener left (the rehearsal ended while a window was streaming)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:
            pass  # the listener left (the rehearsal ended while a window was streaming)


def capped_space(demo: str, data_dir: Path, capacity: int) -> str:
    """A second live space on the demo node, with room for `capacity` listeners at once."""
    headers = account(data_dir)
    body = {"title": "Capped", "capacity": capacity, "recording": False}
    created = httpx.post(f"{demo}/api/spaces", json=body, headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    space_id = created.json()["id"]
    started = httpx.post(f"{demo}/api/spaces/{space_id}/start", headers=headers, timeout=10)
    assert started.status_code == 200, started.text
    return space_id


def test_refusals_and_the_waiting_room_are_honoured(demo_node: tuple[str, Path], tmp_path: Path):
    url, data_dir = demo_node
    space_id = capped_space(url, data_dir, capacity=3)
    proxy = RefusingProxy(url, refuse=2, break_parts=1)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        report = tmp_path / "report"
        done = rehearse(
            "--target",
            proxy.url,
            "--space",
            space_id,
            "--listeners",
            "6",
            "--ramp",
            "1",
            "--duration",
            "5",
            "--actions-every",
            "0",
            "--max-errors",
            "0",
            "--report",
            str(report),
            module=True,
        )
    finally:
        proxy.shutdown()
        proxy.server_close()
    # Polite refusals and waits in line are figures, not failures; the broken part is one, and
    # with --max-errors 0 it fails the rehearsal.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: errors " in done.stdout and "> --max-errors 0.00%" in done.stdout
    data = json.loads((report / "report.json").read_text())
    assert data["ok"] is False
    assert data["errors"] == {"HTTP 503": 2, "HTTP 500": 1}
    assert data["refused"] == 2 and data["hard_errors"] == 1
    assert "errors by kind       HTTP 503: 2, HTTP 500: 1" in done.stdout
    assert data["retries"] == 2
    # Each retry waited what Retry-After asked (2 s), plus at most 0.5 s of first-retry jitter.
    assert data["retry_wait_min"] >= 2.0
    assert len(proxy.refused_at) == 2
    assert max(proxy.joined_at) - min(proxy.refused_at) >= 2.0
    # Room for 3: those in listen, the others wait in line (each at least once) with a ticket.
    assert 1 <= data["joins_admitted"] <= 3
    assert data["waits_in_line"] >= 6 - data["joins_admitted"]
    assert data["ttfa_count"] == data["joins_admitted"]
    assert data["parts"] > 0
