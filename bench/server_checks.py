"""What the node relies on its HTTP server for, checked under each ASGI server of bench.servers.

For every server of `--servers` (the same node app and demo space as `bench.servers`, one at a
time), over raw sockets on 127.0.0.1:

- keep-alive: three requests on one HTTP/1.1 connection, all answered on it;
- chunked request body: a join whose body comes with `Transfer-Encoding: chunked`;
- streaming: the live event stream (SSE) sends its first event while the response stays open,
  and with which framing (chunked or not);
- a held response: a blocking playlist reload for the next part returns when it exists;
- proxy headers: what the app sees as client and scheme when the request carries
  `X-Forwarded-For: 203.0.113.7` and `X-Forwarded-Proto: https` (the node must see the peer:
  it believes X-Forwarded-For only from its configured proxies, api/app.py);
- header limits (issue 12, finding 2): a single 64 MiB header line sent in 1 MiB pieces, and
  10 000 small header fields; where the server stops reading (bytes sent before it answered or
  closed), its answer, and the serving process's memory (RSS, and its peak VmHWM) before and
  after;
- slow clients: a request line and one header, then nothing; a join's headers and 5 of its
  17 body bytes, then nothing: when the server closes (bounded by `--slow-seconds`, 35);
- lifespan: start-up (the demo space went live from it) and shutdown (the app's lifespan
  shutdown completed after SIGTERM); graceful shutdown: with an event stream open, seconds
  from SIGTERM to exit, the exit code, and what the open stream saw.

    .venv/bin/python -m bench.server_checks [--servers uvicorn,granian,granian-embedded,hypercorn]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness.ports import HOST

from bench._asgi import SCOPE, SHUTDOWN_MARK
from bench._common import command_line, print_table, write_result
from bench.joins import BODY
from bench.servers import SERVERS, Running, run_server

MIB = 1024 * 1024


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(line.split()[1]) / 1024
    return found


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout)


def read_head(sock: socket.socket, buffer: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Read a response's status and headers; returns them and the bytes read past them."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed after {buffer[:200]!r}")
        buffer += data
    head, rest = buffer.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def read_body(sock: socket.socket, headers: dict[str, str], rest: bytes) -> tuple[bytes, bytes]:
    """A body by Content-Length or chunked framing; returns it and what follows it."""
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            rest += sock.recv(65536)
        return rest[:length], rest[length:]
    body = b""
    while True:  # chunked (RFC 9112 §7.1)
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        body, rest = body + rest[:size], rest[size + 2 :]
        if size == 0:
            return body, rest


def request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body and "Transfer-Encoding" not in (headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# -- the checks: each returns a short text for the table, and details for the JSON --------------


def keep_alive(server: Running) -> tuple[str, dict[str, Any]]:
    with connect(server.port) as sock:
        rest, statuses = b"", []
        for _ in range(3):
            sock.sendall(request("GET", "/healthz"))
            status, headers, rest = read_head(sock, rest)
            _body, rest = read_body(sock, headers, rest)
            statuses.append(status)
    ok = statuses == [200, 200, 200]
    return ("yes" if ok else f"no {statuses}"), {"statuses": statuses}


def chunked_body(server: Running) -> tuple[str, dict[str, Any]]:
    half = len(BODY) // 2
    chunks = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (BODY[:half], BODY[half:]))
    message = request(
        "POST",
        server.path("join"),
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        chunks + b"0\r\n\r\n",
    )
    with connect(server.port) as sock:
        sock.sendall(message)
        status, headers, rest = read_head(sock)
        body, _ = read_body(sock, headers, rest)
    ok = status == 200 and b'"token"' in body
    return ("yes" if ok else f"no ({status})"), {"status": status, "body": body[:200].decode()}


def streaming(server: Running) -> tuple[str, dict[str, Any]]:
    path = f"/api/spaces/{server.space_id}/events"
    with connect(server.port) as sock:
        began = time.monotonic()
        sock.sendall(request("GET", path, {"Accept": "text/event-stream"}))
        status, headers, rest = read_head(sock)
        while b"\n\n" not in rest and time.monotonic() - began < 5:
            rest += sock.recv(65536)
        first = time.monotonic() - began
        framing = "chunked" if headers.get("transfer-encoding") == "chunked" else "close-delimited"
    ok = status == 200 and b"\n\n" in rest
    text = f"yes, {framing}, first event {first * 1000:.0f} ms" if ok else f"no ({status})"
    return text, {"status": status, "headers": headers, "first_event_s": first}


def held_response(server: Running) -> tuple[str, dict[str, Any]]:
    """A blocking playlist reload (RFC 8216bis §6.2.5.2) for the part after the last listed."""
    playlist = server.playlist_path
    with connect(server.port) as sock:
        sock.sendall(request("GET", playlist))
        status, headers, rest = read_head(sock)
        text, rest = read_body(sock, headers, rest)
        msn = int(re.search(rb"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
        segments = text.count(b"#EXTINF")
        parts = text.rsplit(b"#EXTINF", 1)[-1].count(b"#EXT-X-PART:")
        began = time.monotonic()
        sock.sendall(request("GET", f"{playlist}?_HLS_msn={msn + segments}&_HLS_part={parts + 1}"))
        status, headers, rest = read_head(sock, rest)
        read_body(sock, headers, rest)
        waited = time.monotonic() - began
    ok = status == 200 and waited < 2
    return (f"yes, {waited * 1000:.0f} ms" if ok else f"no ({status})"), {"waited_s": waited}


def proxy_headers(server: Running) -> tuple[str, dict[str, Any]]:
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    with connect(server.port) as sock:
        sock.sendall(request("GET", SCOPE, forwarded))
        _status, headers, rest = read_head(sock)
        body, _ = read_body(sock, headers, rest)
    seen = json.loads(body)
    client = (seen.get("client") or [None])[0]
    if client == HOST and seen.get("scheme") == "http":
        text = "ignored (peer address seen)"
    else:
        text = f"REWRITTEN: client {client}, scheme {seen.get('scheme')}"
    return text, seen


def _flood(server: Running, head: bytes, piece: bytes, pieces: int, tail: bytes) -> dict[str, Any]:
    """Send `head`, `pieces` × `piece`, then `tail`; where the server stopped us, its answer,
    and its memory around it."""
    before = memory(server.pid)
    sent, answer, peak_rss = 0, "", before["VmRSS"]
    with connect(server.port, timeout=10) as sock:
        try:
            sock.sendall(head)
            for _ in range(pieces):
                sock.sendall(piece)
                sent += len(piece)
                peak_rss = max(peak_rss, memory(server.pid)["VmRSS"])
            sock.sendall(tail)
            sent_all = True
        except OSError as exc:
            sent_all, answer = False, type(exc).__name__
        with contextlib.suppress(OSError):
            sock.settimeout(10)
            data = sock.recv(4096)
            answer = data.split(b"\r\n", 1)[0].decode("latin-1") if data else answer or "closed"
    time.sleep(1.0)  # let the server free what it held
    after = memory(server.pid)
    return {
        "sent_mib": sent / MIB,
        "sent_all": sent_all,
        "answer": answer or "nothing",
        "rss_before_mib": before["VmRSS"],
        "rss_peak_during_mib": max(peak_rss, after["VmRSS"]),
        "rss_after_mib": after["VmRSS"],
        "hwm_growth_mib": after["VmHWM"] - before["VmHWM"],
    }


def _flood_text(found: dict[str, Any]) -> str:
    where = "all sent" if found["sent_all"] else f"stopped after {found['sent_mib']:.1f} MiB"
    peak = found["rss_peak_during_mib"] - found["rss_before_mib"]
    kept = found["rss_after_mib"] - found["rss_before_mib"]
    return f"{where}; {found['answer'][:40]}; RSS +{peak:.0f} MiB (+{kept:.0f} after)"


def big_header(server: Running) -> tuple[str, dict[str, Any]]:
    head = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nX-Big: ".encode()
    found = _flood(server, head, b"a" * MIB, 64, b"\r\n\r\n")
    return _flood_text(found), found


def many_headers(server: Running) -> tuple[str, dict[str, Any]]:
    head = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n".encode()
    fields = b"".join(f"X-H{i}: v\r\n".encode() for i in range(10_000))
    found = _flood(server, head, fields, 1, b"\r\n")
    return _flood_text(found), found


def slow_client(server: Running, bound: float) -> tuple[str, dict[str, Any]]:
    with connect(server.port, timeout=bound) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        began = time.monotonic()
        try:
            data = sock.recv(4096)
            closed = time.monotonic() - began
            what = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "closed"
        except TimeoutError:
            closed, what = None, "still open"
    if closed is None:
        return f"still open after {bound:.0f} s", {"closed_after_s": None}
    return f"{what} after {closed:.1f} s", {"closed_after_s": closed, "answer": what}


def slow_body(server: Running, bound: float) -> tuple[str, dict[str, Any]]:
    """A join announcing a 17-byte body that sends 5 bytes of it, then nothing."""
    head = request("POST", server.path("join"), {"Content-Type": "application/json"}, BODY)
    with connect(server.port, timeout=bound) as sock:
        sock.sendall(head[: -len(BODY) + 5])
        began = time.monotonic()
        try:
            data = sock.recv(4096)
            closed = time.monotonic() - began
            what = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "closed"
        except TimeoutError:
            closed, what = None, "still open"
    if closed is None:
        return f"still open after {bound:.0f} s", {"closed_after_s": None}
    return f"{what} after {closed:.1f} s", {"closed_after_s": closed, "answer": what}


def shutdown(server: Running) -> tuple[str, dict[str, Any]]:
    """SIGTERM with an event stream open: how long to exit, and whether lifespan shutdown ran."""
    sock = connect(server.port)
    sock.sendall(request("GET", f"/api/spaces/{server.space_id}/events"))
    status, _headers, rest = read_head(sock)
    began = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    sock.settimeout(1)
    stream_end = "still open after 15 s"
    while time.monotonic() - began < 15:  # the stream may go on sending keep-alives, or not
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            data = b""
        if not data:
            stream_end = f"closed after {time.monotonic() - began:.1f} s"
            break
        rest += data
    sock.close()
    try:
        code = server.process.wait(timeout=20)
    except Exception:
        code = None
    took = time.monotonic() - began
    lifespan = (server.data_dir / SHUTDOWN_MARK).exists()
    ended_cleanly = rest.endswith(b"0\r\n\r\n")
    text = (
        f"exit {code} after {took:.1f} s; lifespan shutdown {'ran' if lifespan else 'MISSING'}; "
        f"stream {stream_end}{', ended cleanly' if ended_cleanly else ''}"
    )
    return text, {
        "exit_code": code,
        "seconds": took,
        "lifespan_shutdown": lifespan,
        "stream": stream_end,
        "stream_status": status,
        "stream_ended_with_last_chunk": ended_cleanly,
    }


CHECKS: dict[str, Callable[[Running], tuple[str, dict[str, Any]]]] = {
    "keep-alive": keep_alive,
    "chunked request body": chunked_body,
    "SSE stream": streaming,
    "blocking reload": held_response,
    "X-Forwarded-*": proxy_headers,
    "64 MiB header line": big_header,
    "10 000 headers": many_headers,
}


def check_server(name: str, tmp: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    results: dict[str, Any] = {}
    with run_server(name, tmp, args.server_cpus) as server:
        results["lifespan startup"] = ("ran (demo space live)", {})
        for check, run in CHECKS.items():
            print(f"{name}: {check}", flush=True)
            try:
                results[check] = run(server)
            except Exception as exc:  # a server that fails a check is a finding, not a crash
                results[check] = (f"FAILED: {type(exc).__name__}: {exc}"[:120], {})
        results["slow headers"] = slow_client(server, args.slow_seconds)
        results["slow body"] = slow_body(server, args.slow_seconds)
        results["graceful shutdown"] = shutdown(server)
    out[name] = results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--servers",
        type=lambda s: s.split(","),
        default=["uvicorn", "granian", "granian-embedded", "hypercorn"],
    )
    parser.add_argument("--slow-seconds", type=float, default=35.0)
    parser.add_argument("--server-cpus", type=lambda s: {int(c) for c in s.split(",")}, default={0})
    args = parser.parse_args()
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="causerie-checks-") as tmp:
        for name in args.servers:  # one at a time: the memory figures are per process
            check_server(name, Path(tmp), args, found)
    checks = list(next(iter(found.values())))
    for check in checks:
        print(f"\n{check}:")
        print_table(["server", "result"], [[name, found[name][check][0]] for name in args.servers])
    path = write_result(
        "server_checks",
        {
            "command": command_line("server_checks"),
            "servers": {
                name: {check: {"result": text, **detail} for check, (text, detail) in r.items()}
                for name, r in found.items()
            },
        },
    )
    print(f"\n{command_line('server_checks')}\n(figures in {path.relative_to(Path.cwd())})")


if __name__ == "__main__":
    main()
