"""The audience's live events in windows, on a real node: the same bytes for every listener,
streamed while the window is open, immutable after; bad input refused quickly."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx

from causerie.node.feed import WINDOW_SECONDS
from tests.conftest import account


def parsed(body: str) -> list[dict]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


async def live_space(client: httpx.AsyncClient, node) -> tuple[str, dict]:
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "Feed"}, headers=host)).json()
    await client.post(f"/api/spaces/{space['id']}/start", headers=host)
    return space["id"], host


async def test_details_point_at_the_window_in_progress(client, node) -> None:
    space_id, _ = await live_space(client, node)
    details = (await client.get(f"/api/spaces/{space_id}")).json()
    now = await client.get(details["events_url"])
    assert now.status_code == 200
    assert now.headers["cache-control"] == "public, max-age=1"
    assert now.headers["access-control-allow-origin"] == "*"
    body = now.json()
    assert body["seconds"] == WINDOW_SECONDS
    assert body["window"] == int(time.time() // WINDOW_SECONDS)
    assert body["url"] == f"/feed/{space_id}/{body['window']}.ndjson"


async def test_the_open_window_streams_events_as_they_happen(client, node) -> None:
    space_id, host = await live_space(client, node)
    url = (await client.get(f"/feed/{space_id}/now")).json()["url"]
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        lines = response.aiter_lines()
        await client.patch(f"/api/spaces/{space_id}", json={"title": "Renamed"}, headers=host)
        seen = []
        async with asyncio.timeout(5):
            async for line in lines:
                if line.strip():
                    seen.append(json.loads(line))
                    if any(e.get("data", {}).get("title") == "Renamed" for e in seen):
                        break
        ids = [e["id"] for e in seen if "id" in e]
        assert ids == sorted(ids) and len(ids) == len(set(ids))


async def test_a_complete_window_is_sent_at_once_and_never_changes(client, node) -> None:
    space_id, _ = await live_space(client, node)
    now = (await client.get(f"/feed/{space_id}/now")).json()["window"]
    previous = f"/feed/{space_id}/{now - 1}.ndjson"
    started = time.monotonic()
    first = await client.get(previous)
    assert time.monotonic() - started < 2  # complete (or empty and complete): no waiting
    assert first.status_code == 200
    assert parsed(first.text)[-1] == {"type": "end", "next": now}
    assert int(first.headers["content-length"]) == len(first.content)
    assert (await client.get(previous)).content == first.content
    head = await client.head(previous)
    assert head.status_code == 200 and head.content == b""


async def test_bad_windows(client, node) -> None:
    space_id, _ = await live_space(client, node)
    now = (await client.get(f"/feed/{space_id}/now")).json()["window"]
    for path, status in [
        (f"/feed/{space_id}/{now + 5}.ndjson", 404),  # far in the future: no held connection
        (f"/feed/{space_id}/{now - 10_000}.ndjson", 410),  # long gone: read the space again
        (f"/feed/{space_id}/-1.ndjson", 404),
        (f"/feed/{space_id}/abc.ndjson", 404),
        (f"/feed/{space_id}/{'9' * 13}.ndjson", 404),
        (f"/feed/{space_id}/1.json", 404),
        ("/feed/nosuchspace/1.ndjson", 404),
        ("/feed/../../etc/passwd", 404),
        (f"/feed/{'x' * 40}/now", 404),
    ]:
        started = time.monotonic()
        response = await client.get(path)
        assert response.status_code == status, path
        assert response.json()["message"], path
        assert response.headers["cache-control"] == "no-store"
        assert time.monotonic() - started < 2, path
    assert (await client.post(f"/feed/{space_id}/{now}.ndjson")).status_code == 405


async def test_a_stalled_reader_does_not_hold_the_others(client, node) -> None:
    """One client that reads nothing: the others get every event on time."""
    space_id, host = await live_space(client, node)
    url = (await client.get(f"/feed/{space_id}/now")).json()["url"]
    host_port = node.url.removeprefix("http://")
    address, port = host_port.rsplit(":", 1)
    stalled = socket.create_connection((address, int(port)))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    stalled.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        big = "x" * 1800
        async with client.stream("GET", url) as response:
            lines = response.aiter_lines()
            for i in range(30):  # far more than the stalled socket's buffers hold
                await client.patch(
                    f"/api/spaces/{space_id}", json={"description": f"{i} {big}"}, headers=host
                )
            got = 0
            async with asyncio.timeout(10):
                async for line in lines:
                    if line.strip() and json.loads(line).get("type") == "space":
                        got += 1
                        if got == 30:
                            break
            assert got == 30
    finally:
        stalled.close()


async def test_a_new_run_is_announced(client, node) -> None:
    """Going live starts a run: its id (the LL-DASH Period's) comes in the feed, so players
    reload their manifest when a failover starts another."""
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "Runs"}, headers=host)).json()
    number = (await client.get(f"/feed/{space['id']}/now")).json()["window"]
    await client.post(f"/api/spaces/{space['id']}/start", headers=host)
    runs: list[str] = []
    async with asyncio.timeout(WINDOW_SECONDS + 5):
        while not runs:  # the window of the start, or the next if it ended meanwhile
            async with client.stream("GET", f"/feed/{space['id']}/{number}.ndjson") as response:
                async for line in response.aiter_lines():
                    event = json.loads(line) if line.strip() else {}
                    if event.get("type") == "run":
                        runs.append(event["data"]["run"])
                        break
            number += 1
    manifest = (await client.get(f"/dash/{space['id']}/manifest.mpd")).text
    assert f'<Period id="{runs[0]}"' in manifest
