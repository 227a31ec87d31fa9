"""The join lane (joins and heartbeats answered inside the HTTP protocol) says, byte for byte,
what the ASGI path says: one node, served twice at once, by `causerie serve`'s server (with the
lane) and by the same server without it (FastJoins behind the ASGI guards), raw requests on
real sockets, good and bad, one by one and pipelined."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn

from causerie.api.http_timeouts import timed_http_protocol
from causerie.api.join_lane import Exchange
from causerie.api.joins import FastJoins
from causerie.asgi import Receive, Scope, Send
from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node
from tests.harness.polling import eventually
from tests.harness.ports import HOST

JSON = b"content-type: application/json\r\n"


@asynccontextmanager
async def served_twice(data_dir) -> AsyncIterator[tuple[RunningNode, int]]:
    """The node (with the lane), and the port of the same app served without it."""
    async with run_node(data_dir) as node:
        twin = uvicorn.Server(
            uvicorn.Config(
                node.app,
                host=HOST,
                port=0,
                log_level="warning",
                access_log=False,
                lifespan="off",  # the node's lifespan ran in the first server
                timeout_keep_alive=30,
                proxy_headers=False,
                http=timed_http_protocol(),  # as cli.build_server, without the lane
            )
        )
        task = asyncio.create_task(twin.serve())
        try:
            while not twin.started:
                assert not task.done(), "the second server did not start"
                await asyncio.sleep(0.01)
            yield node, twin.servers[0].sockets[0].getsockname()[1]
        finally:
            twin.should_exit = True
            await asyncio.wait_for(task, 15)


async def exchange(
    port: int, parts: list[bytes], answers: int, wait_for_continue: bool = False
) -> bytes:
    """Send `parts` (after the first, each once the answer so far has arrived when
    `wait_for_continue`), read `answers` final responses and, after one that closes the
    connection, its end; everything received, as received."""
    reader, writer = await asyncio.open_connection(HOST, port)
    received = b""
    try:
        writer.write(parts[0])
        for part in parts[1:]:
            if wait_for_continue:
                while b"\r\n\r\n" not in received:
                    received += await asyncio.wait_for(reader.read(65536), 5)
            writer.write(part)
        finals = 0
        while finals < answers:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            received += chunk
            finals = len(complete_answers(received))
        if b"connection: close" in received:
            while await asyncio.wait_for(reader.read(65536), 5):
                pass
            received += b"<closed>"
    finally:
        writer.close()
    return received


def complete_answers(data: bytes) -> list[bytes]:
    """The final (non-1xx) responses complete in `data`."""
    found, at = [], 0
    while (end := data.find(b"\r\n\r\n", at)) != -1:
        head = data[at:end]
        match = re.search(rb"content-length: (\d+)", head)
        size = int(match[1]) if match else 0
        if len(data) < end + 4 + size:
            break
        if not head.startswith(b"HTTP/1.1 1"):
            found.append(data[at : end + 4 + size])
        at = end + 4 + size
    return found


def same_but_for_chance(data: bytes) -> bytes:
    """Without what differs from one answer to the next: the time, a listener's token and
    id, when it expires, the jittered Retry-After."""
    data = re.sub(rb"date: [^\r]*", b"date: -", data)
    data = re.sub(rb'"(token|listener_id|expires_at)":"[^"]*"', rb'"\1":"-"', data)
    data = re.sub(rb"retry-after: \d", b"retry-after: -", data)
    return re.sub(rb"retry in \d s", b"retry in - s", data)


def post(path: str, body: bytes | None = None, headers: bytes = b"", version: bytes = b"1.1"):
    length = b"" if body is None else b"content-length: %d\r\n" % len(body)
    return (
        b"POST " + path.encode() + b" HTTP/" + version + b"\r\nhost: node\r\n" + headers + length
        + b"\r\n" + (body or b"")
    )  # fmt: skip


def chunked(path: str, chunks: list[bytes], headers: bytes = b"") -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    return post(path, None, headers + b"transfer-encoding: chunked\r\n") + body


async def test_the_lane_answers_as_the_asgi_path_byte_for_byte(tmp_path, monkeypatch) -> None:
    reached: list[tuple[int, bytes]] = []  # (port, request target) of what FastJoins saw
    fast_joins = FastJoins.__call__

    async def spy(self: FastJoins, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = scope["method"].encode() + b" " + scope["raw_path"]
            target += b"?" * bool(scope["query_string"])
            reached.append((scope["server"][1], target))
        await fast_joins(self, scope, receive, send)

    monkeypatch.setattr(FastJoins, "__call__", spy)
    async with served_twice(tmp_path / "data") as (node, asgi_port):
        lane_port = int(node.url.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=node.url) as http:
            host = account(node.data_dir)
            space = (await http.post("/api/spaces", json={"title": "T"}, headers=host)).json()
            ended = (await http.post("/api/spaces", json={"title": "E"}, headers=host)).json()
            await http.post(f"/api/spaces/{ended['id']}/end", headers=host)
            other = (await http.post("/api/spaces", json={"title": "O"}, headers=host)).json()
            token = (await http.post(f"/api/spaces/{space['id']}/join")).json()["token"]
            other_token = (await http.post(f"/api/spaces/{other['id']}/join")).json()["token"]
        join, beat = f"/api/spaces/{space['id']}/join", f"/api/spaces/{space['id']}/heartbeat"
        bearer = b"authorization: Bearer " + token.encode() + b"\r\n"
        good = post(join, b'{"name": "Lou"}', JSON)
        cases: list[tuple[str, list[bytes], int]] = [
            ("join", [good], 1),
            ("join, no body", [post(join)], 1),
            ("join, empty body", [post(join, b"")], 1),
            (
                "join, text body",
                [post(join, b'{"name":"Lou"}', b"content-type: text/plain\r\n")],
                1,
            ),
            ("join, malformed JSON", [post(join, b"{not json", JSON)], 1),
            ("join, not UTF-8", [post(join, b"\xff\xfe", JSON)], 1),
            ("join, a list", [post(join, b"[]", JSON)], 1),
            ("join, a number name", [post(join, b'{"name":5}', JSON)], 1),
            ("join, a lone surrogate", [post(join, b'{"name":"\\ud800"}', JSON)], 1),
            ("join, a bad ticket", [post(join, b'{"ticket":"w1.nope"}', JSON)], 1),
            ("join, deep JSON", [post(join, b"[" * 5000 + b"]" * 5000, JSON)], 1),
            ("join, over the body limit", [post(join, b"x" * 70_000, JSON)], 1),
            ("join, bad length", [post(join, None, b"content-length: 1x\r\n") + b"x"], 1),
            ("join, chunked", [chunked(join, [b'{"name":', b' "Lou"}'], JSON)], 1),
            ("join, chunked over the limit", [chunked(join, [b"x" * 40_000] * 2, JSON)], 1),
            ("join, chunked malformed", [chunked(join, [b"{nope"], JSON)], 1),
            ("join, unknown space", [post("/api/spaces/nope/join")], 1),
            ("join, ended space", [post(f"/api/spaces/{ended['id']}/join")], 1),
            ("join, id too long", [post("/api/spaces/" + "a" * 33 + "/join")], 1),
            ("join, odd id", [post("/api/spaces/a.b/join")], 1),
            ("join, query", [post(join + "?x=1")], 1),
            ("join, percent-encoded", [post(join.replace("/join", "/%6Aoin"))], 1),
            ("join, trailing slash", [post(join + "/")], 1),
            ("join, GET", [f"GET {join} HTTP/1.1\r\nhost: node\r\n\r\n".encode()], 1),
            ("join, HTTP/1.0", [post(join, b'{"name": "Lou"}', JSON, b"1.0")], 1),
            ("join, connection: close", [post(join, None, b"connection: close\r\n")], 1),
            ("join, 101 header fields", [post(join, None, b"x-a: 1\r\n" * 101)], 1),
            (
                "join, 40 KB of header fields",
                [post(join, None, b"x-a: " + b"a" * 40_000 + b"\r\n")],
                1,
            ),
            ("heartbeat", [post(beat, None, bearer)], 1),
            ("heartbeat, no token", [post(beat)], 1),
            ("heartbeat, garbage token", [post(beat, None, b"authorization: Bearer nope\r\n")], 1),
            ("heartbeat, Basic", [post(beat, None, b"authorization: Basic abc\r\n")], 1),
            (
                "heartbeat, other space",
                [post(beat, None, b"authorization: Bearer " + other_token.encode() + b"\r\n")],
                1,
            ),
            (
                "heartbeat, ended space",
                [post(f"/api/spaces/{ended['id']}/heartbeat", None, bearer)],
                1,
            ),
            ("heartbeat, unknown space", [post("/api/spaces/nope/heartbeat", None, bearer)], 1),
            ("heartbeat, a body", [post(beat, b'{"x": 1}', bearer + JSON)], 1),
            ("heartbeat, chunked", [chunked(beat, [b"abc"], bearer)], 1),
            ("heartbeat, HTTP/1.0", [post(beat, None, bearer, b"1.0")], 1),
            (
                "pipelined",
                [
                    good
                    + post(beat, None, bearer)
                    + b"GET /healthz HTTP/1.1\r\nhost: n\r\n\r\n"
                    + post("/api/spaces/nope/join")
                    + chunked(join, [b"{}"], JSON)
                    + good
                ],
                6,
            ),
            (
                "pipelined, then closed",
                [good + post(beat, None, bearer + b"connection: close\r\n") + good],
                2,
            ),
        ]
        taken = {b"POST " + join.encode(), b"POST " + beat.encode()}
        for name, parts, answers in cases:
            reached.clear()
            by_lane = await exchange(lane_port, parts, answers)
            if not name.startswith("pipelined"):  # behind an ASGI request, they queue there
                # The lane took every request for exactly its two paths (the others go on).
                assert not [t for port, t in reached if port == lane_port and t in taken], name
            by_asgi = await exchange(asgi_port, parts, answers)
            if name in ("join", "heartbeat"):  # the spy sees what goes the ASGI way
                assert [t for port, t in reached if port == asgi_port and t in taken], name
            assert same_but_for_chance(by_lane) == same_but_for_chance(by_asgi), name
            assert len(complete_answers(by_lane)) == answers, (name, by_lane[:300])
            assert b"HTTP/1.1 500" not in by_lane, name
        # Expect: 100-continue, the body sent once the server asked for it (or answered).
        expecting = b"expect: 100-continue\r\n"
        for name, head, body, answers in [
            (
                "join",
                post(join, None, JSON + expecting + b"content-length: 15\r\n"),
                b'{"name": "Lou"}',
                1,
            ),
            (
                "join, chunked",
                post(join, None, JSON + expecting + b"transfer-encoding: chunked\r\n"),
                b"2\r\n{}\r\n0\r\n\r\n",
                1,
            ),
            (
                "heartbeat",
                post(beat, None, bearer + expecting + b"content-length: 2\r\n"),
                b"{}" + good,
                2,
            ),
        ]:
            by_lane = await exchange(lane_port, [head, body], answers, wait_for_continue=True)
            by_asgi = await exchange(asgi_port, [head, body], answers, wait_for_continue=True)
            assert same_but_for_chance(by_lane) == same_but_for_chance(by_asgi), name
        assert b"100 Continue" in by_lane or name == "heartbeat"


async def test_refusals_under_overload_are_the_same(tmp_path) -> None:
    async with served_twice(tmp_path / "data") as (node, asgi_port):
        lane_port = int(node.url.rsplit(":", 1)[1])
        admission = node.app.admission
        before = admission.refused_joins
        admission.limit = 0  # everything is refused as overload
        try:
            for path in ("/api/spaces/abc/join", "/api/spaces/abc/heartbeat"):
                by_lane = await exchange(lane_port, [post(path, b"{}", JSON)], 1)
                by_asgi = await exchange(asgi_port, [post(path, b"{}", JSON)], 1)
                assert by_lane.startswith(b"HTTP/1.1 503"), by_lane
                assert b"retry-after: " in by_lane
                assert same_but_for_chance(by_lane) == same_but_for_chance(by_asgi)
        finally:
            admission.limit = node.app.services.config.max_inflight
        assert admission.refused_joins == before + 2  # one join refused each way
        assert admission.in_flight == 0


async def test_joins_count_the_same_either_way(tmp_path) -> None:
    async with served_twice(tmp_path / "data") as (node, asgi_port):
        lane_port = int(node.url.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=node.url) as http:
            space = (
                await http.post("/api/spaces", json={"title": "T"}, headers=account(node.data_dir))
            ).json()
        join = f"/api/spaces/{space['id']}/join"
        stats = node.app.services.stats
        counts = []
        for port in (lane_port, asgi_port):
            before = await stats.summary(space["id"], time.time(), None, None)
            await exchange(port, [post(join, b'{"name": "A"}', JSON) * 3 + post(join, b"{x")], 4)
            after = await stats.summary(space["id"], time.time(), None, None)
            counts.append((after.joins - before.joins, after.join_attempts - before.join_attempts))
        assert counts[0] == counts[1] == (3, 3)


async def test_a_join_that_waits_keeps_pipelined_requests_in_order(tmp_path, monkeypatch) -> None:
    """A use case that has to wait (a store read, Redis) is carried on by a task; what the
    client sent after it is answered after it."""
    async with served_twice(tmp_path / "data") as (node, _):
        lane_port = int(node.url.rsplit(":", 1)[1])
        svc = node.app.services
        async with httpx.AsyncClient(base_url=node.url) as http:
            space = (
                await http.post("/api/spaces", json={"title": "T"}, headers=account(node.data_dir))
            ).json()
        cached = svc.cached_space

        async def slow(space_id: str):
            await asyncio.sleep(0.05)
            return await cached(space_id)

        monkeypatch.setattr(svc, "cached_space", slow)
        join = f"/api/spaces/{space['id']}/join"
        got = await exchange(
            lane_port,
            [post(join, b'{"name": "A"}', JSON) + b"GET /healthz HTTP/1.1\r\nhost: n\r\n\r\n"],
            2,
        )
        first, second = complete_answers(got)
        assert first.startswith(b"HTTP/1.1 200") and b'"token"' in first
        assert second.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in second
        assert node.app.admission.in_flight == 0


def test_an_exchange_stands_in_for_a_cycle() -> None:
    """What uvicorn's protocol reads and sets on its current request's cycle."""
    exchange_ = Exchange("abc", "/api/spaces/abc/join", True, "1.1")
    assert exchange_.response_complete is False and exchange_.disconnected is False
    exchange_.keep_alive = False  # shutdown
    exchange_.message_event.set()  # connection lost


async def test_a_client_gone_mid_body_frees_its_place(tmp_path) -> None:
    async with run_node(tmp_path / "data") as node:
        port = int(node.url.rsplit(":", 1)[1])
        admission = node.app.admission
        _, writer = await asyncio.open_connection(HOST, port)
        writer.write(post("/api/spaces/abc/join", None, JSON + b"content-length: 100\r\n") + b"{")
        await eventually(lambda: admission.in_flight == 1, 5, "the join admitted")
        writer.close()
        await writer.wait_closed()
        await eventually(lambda: admission.in_flight == 0, 5, "its place freed")
