"""Server-Sent Events on a real node: snapshot, live changes, resume with Last-Event-ID."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.conftest import account
from tests.harness.in_process import run_node


async def read_events(response, count: int) -> list[dict]:
    """Parse `count` SSE messages (comments and the retry line skipped)."""
    events: list[dict] = []
    current: dict = {}
    # One line iterator per response, kept across calls (a stream can only be read once).
    lines = response.extensions.setdefault("test_lines", response.aiter_lines())
    while len(events) < count:
        line = await asyncio.wait_for(anext(lines), 10)
        if line == "":
            if "event" in current:
                events.append(current)
            current = {}
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        else:
            field, _, value = line.partition(": ")
            current[field] = value
    return events


async def test_snapshot_then_changes_then_resume(client, node) -> None:
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "SSE"}, headers=host)).json()
    url = f"/api/spaces/{space['id']}/events"
    async with client.stream("GET", url) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        await client.post(f"/api/spaces/{space['id']}/start", headers=host)
        await client.patch(f"/api/spaces/{space['id']}", json={"title": "SSE 2"}, headers=host)
        snapshot, started, edited = await read_events(response, 3)
    assert snapshot["event"] == "snapshot" and "id" not in snapshot
    assert json.loads(snapshot["data"])["state"] == "scheduled"
    assert started["event"] == "space" and json.loads(started["data"])["state"] == "live"
    assert json.loads(edited["data"])["title"] == "SSE 2"

    # Disconnected; two more changes happen; the client resumes where it stopped.
    await client.patch(f"/api/spaces/{space['id']}", json={"title": "SSE 3"}, headers=host)
    await client.post(f"/api/spaces/{space['id']}/end", headers=host)
    headers = {"Last-Event-ID": edited["id"]}
    async with client.stream("GET", url, headers=headers) as response:
        _, missed_1, missed_2 = await read_events(response, 3)
    assert [int(missed_1["id"]), int(missed_2["id"])] == [
        int(edited["id"]) + 1,
        int(edited["id"]) + 2,
    ]
    assert json.loads(missed_1["data"])["title"] == "SSE 3"
    assert json.loads(missed_2["data"])["state"] == "ended"


async def test_listener_counts_are_pushed(client, node) -> None:
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "Counts"}, headers=host)).json()
    await client.post(f"/api/spaces/{space['id']}/start", headers=host)
    async with client.stream("GET", f"/api/spaces/{space['id']}/events") as response:
        for _ in range(3):
            await client.post(f"/api/spaces/{space['id']}/join")
        events = await read_events(response, 2)
        while json.loads(events[-1]["data"]).get("listeners_now") != 3:
            events += await read_events(response, 1)
    assert events[-1]["event"] == "listeners"


async def test_unknown_space_events_404(client) -> None:
    assert (await client.get("/api/spaces/nope/events")).status_code == 404


async def test_a_last_event_id_this_server_never_gave_is_a_400(client, node) -> None:
    """Not a 500: "²" and "٣" pass `str.isdigit` but are no id (found from outside)."""
    space = (
        await client.post("/api/spaces", json={"title": "x"}, headers=account(node.data_dir))
    ).json()
    url = f"{node.url}/api/spaces/{space['id']}/events"
    for raw in [b"abc", b"\xb2", "\u0663".encode(), b"1" * 40, b"-1", b"1.5"]:
        # Raw bytes, as an attacker sends them (httpx would refuse non-ASCII text).
        response = await asyncio.to_thread(raw_get, url, {"Last-Event-ID": raw})
        assert response[0] == 400, raw
        assert b"Last-Event-ID" in response[1], raw
    async with client.stream("GET", url, headers={"Last-Event-ID": "0"}) as response:
        assert response.status_code == 200


def raw_get(url: str, headers: dict[str, bytes]) -> tuple[int, bytes]:
    """A GET with header values sent as raw bytes; (status, body)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        lines = [f"GET {parts.path} HTTP/1.1".encode(), b"Host: test", b"Connection: close"]
        lines += [name.encode() + b": " + value for name, value in headers.items()]
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_event_streams_are_bounded_per_node(tmp_path) -> None:
    async with (
        run_node(tmp_path / "data", max_event_streams=2) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
    ):
        created = await http.post(
            "/api/spaces", json={"title": "Busy"}, headers=account(node.data_dir)
        )
        path = f"/api/spaces/{created.json()['id']}/events"
        async with http.stream("GET", path) as first, http.stream("GET", path) as second:
            for stream in (first, second):
                assert (await read_events(stream, 1))[0]["event"] == "snapshot"
            refused = await http.get(path)
            assert refused.status_code == 503
            assert 5 <= int(refused.headers["retry-after"]) <= 15
            assert refused.json()["error"] == "unavailable"
            metrics = (await http.get("/metrics")).text
            assert "\ncauserie_event_streams_open 2\n" in metrics
        for _ in range(50):  # the closed streams are let go: room again
            async with http.stream("GET", path) as again:
                if again.status_code == 200:
                    assert (await read_events(again, 1))[0]["event"] == "snapshot"
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the closed streams were never let go")
