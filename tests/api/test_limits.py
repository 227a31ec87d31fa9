"""Admission control and the body limit, as ASGI components fed raw messages."""

from __future__ import annotations

import asyncio
import json
import time

from causerie.api.admission import Admission, BodyLimit


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def __call__(self, message: dict) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return self.messages[0]["status"]

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def json(self) -> dict:
        return json.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))


def http(path: str = "/api/x", method: str = "POST", headers=()) -> dict:
    return {"type": "http", "path": path, "method": method, "headers": list(headers)}


async def no_body() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_admission_refuses_above_the_bound_with_retry_after() -> None:
    release = asyncio.Event()

    async def slow(scope, receive, send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate = Admission(slow, limit=2, retry_after=(2, 4))
    first, second, third = Recorder(), Recorder(), Recorder()
    running = [asyncio.create_task(gate(http(), no_body, r)) for r in (first, second)]
    await asyncio.sleep(0)
    await gate(http(), no_body, third)  # answered at once, before any work
    assert third.status == 503
    assert 2 <= int(third.headers[b"retry-after"]) <= 4
    assert "busy" in third.json["message"]
    assert gate.in_flight == 2 and gate.refused == 1
    # Health checks are never refused.
    health = Recorder()
    health_task = asyncio.create_task(gate(http("/healthz", "GET"), no_body, health))
    release.set()
    await asyncio.gather(*running, health_task)
    assert first.status == second.status == health.status == 200
    assert gate.in_flight == 0


async def ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def answer(gate: Admission, path: str = "/api/x") -> int:
    recorder = Recorder()
    await gate(http(path), no_body, recorder)
    return recorder.status


async def test_admission_refuses_while_the_loop_is_held_up_by_a_burst() -> None:
    gate = Admission(ok, limit=1000, max_lag=0.05, busy_rate=0)
    assert await answer(gate) == 200  # starts the ticker
    await asyncio.sleep(0.05)
    time.sleep(0.15)  # one turn of the loop busy with a burst: everything behind it waits
    assert await answer(gate) == 503
    assert await answer(gate, "/healthz") == 200  # never refused
    assert gate.refused == gate.refused_for_lag == 1
    await asyncio.sleep(0.2)  # one late tick barely moves the average: admitted again
    assert await answer(gate) == 200
    gate.lag.stop()


async def test_admission_refuses_while_the_loop_stays_behind_then_recovers() -> None:
    gate = Admission(ok, limit=1000, max_lag=0.05, busy_rate=0)
    assert await answer(gate) == 200
    for _ in range(10):  # every turn of the loop takes 80 ms: it stays behind
        await asyncio.sleep(0)
        time.sleep(0.08)
        await asyncio.sleep(0.001)
    assert gate.lag.average() > 0.05
    assert await answer(gate) == 503
    await asyncio.sleep(0.5)
    assert gate.lag.average() < 0.05
    assert await answer(gate) == 200
    gate.lag.stop()


async def test_a_few_requests_a_second_are_never_refused_for_lag() -> None:
    # A late loop with little traffic is the machine busy elsewhere: refusing would not help.
    gate = Admission(ok, limit=1000, max_lag=0.05, busy_rate=100)
    assert await answer(gate) == 200
    await asyncio.sleep(0.05)
    time.sleep(0.15)
    assert [await answer(gate) for _ in range(10)] == [200] * 10
    time.sleep(0.15)  # but a node handling a burst of requests sheds
    assert 503 in [await answer(gate) for _ in range(200)]
    gate.lag.stop()


async def test_admission_without_max_lag_ignores_the_loop() -> None:
    gate = Admission(ok, limit=1000)
    time.sleep(0.15)
    assert await answer(gate) == 200


async def echo(scope, receive, send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_body_limit_by_length_and_by_chunks() -> None:
    limit = BodyLimit(echo, max_bytes=1024)
    announced = Recorder()
    await limit(http(headers=[(b"content-length", b"5000")]), no_body, announced)
    assert announced.status == 413 and announced.json["error"] == "too_large"

    bad = Recorder()
    await limit(http(headers=[(b"content-length", b"12x")]), no_body, bad)
    assert bad.status == 400

    chunks = [b"a" * 600, b"b" * 600]

    async def chunked() -> dict:
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    streamed = Recorder()
    await limit(http(), chunked, streamed)
    assert streamed.status == 413

    small = [b"hello ", b"world"]

    async def small_chunks() -> dict:
        return {"type": "http.request", "body": small.pop(0), "more_body": bool(small)}

    fine = Recorder()
    await limit(http(), small_chunks, fine)
    assert fine.status == 200 and fine.messages[1]["body"] == b"hello world"


async def test_event_streams_are_refused_when_overloaded_but_not_counted_once_open() -> None:
    """Opening an event stream is work (a snapshot, a subscription): a storm of opens once
    starved the media loop because `/events` skipped admission. An open stream is not work."""
    release = asyncio.Event()

    async def stream(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await release.wait()  # a long-lived stream
        await send({"type": "http.response.body", "body": b""})

    gate = Admission(stream, limit=2)
    opened = [Recorder() for _ in range(5)]
    tasks = [
        asyncio.create_task(gate(http("/api/spaces/s/events", "GET"), no_body, r)) for r in opened
    ]
    await asyncio.sleep(0.01)
    assert [r.status for r in opened] == [200] * 5  # open streams hold no slot
    assert gate.in_flight == 0

    # Overloaded (the in-flight bound reached by ordinary requests): new streams are refused.
    held = asyncio.Event()

    async def slow(scope, receive, send) -> None:
        if scope["path"].endswith("/events"):
            await ok(scope, receive, send)
            return
        await held.wait()
        await ok(scope, receive, send)

    busy = Admission(slow, limit=1)
    work = asyncio.create_task(busy(http(), no_body, Recorder()))
    await asyncio.sleep(0)
    refused = Recorder()
    await busy(http("/api/spaces/s/events", "GET"), no_body, refused)
    assert refused.status == 503 and b"retry-after" in refused.headers
    held.set()
    release.set()
    await asyncio.gather(work, *tasks)
