"""`causerie relay` in front of a scripted origin on 127.0.0.1: what it keeps and passes on as
the origin says (Cache-Control, errors with their headers), the one Host it sends, and an
origin that goes away in the middle of an object."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.api.test_dash import fetch
from tests.harness.edges import run_relay
from tests.harness.ports import HOST

Handler = Callable[[asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class ScriptedOrigin:
    """An HTTP/1.1 origin answering each path with a handler given the request's count."""

    handlers: dict[str, Handler]
    asked: dict[str, int] = field(default_factory=dict)
    heads: list[bytes] = field(default_factory=list)
    port: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                path = head.split(b" ")[1].decode()
                self.asked[path] = self.asked.get(path, 0) + 1
                await self.handlers[path](writer, self.asked[path])
                if writer.is_closing():
                    return

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield f"http://{HOST}:{self.port}"
            for task in self.tasks:  # the relay's idle connections: ended here, not at exit
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)


def answer(status: int, headers: dict[str, str], body: bytes = b"") -> Handler:
    async def handler(writer: asyncio.StreamWriter, _count: int) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()

    return handler


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def dies_once_mid_object(pieces: list[bytes]) -> Handler:
    """The first request gets two pieces, then the connection drops; later ones all of it."""

    async def handler(writer: asyncio.StreamWriter, count: int) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
            b"Cache-Control: public, max-age=60\r\n\r\n"
        )
        for n, piece in enumerate(pieces):
            if count == 1 and n == 2:
                writer.transport.abort()  # type: ignore[attr-defined]
                return
            writer.write(chunk(piece))
            await writer.drain()
            await asyncio.sleep(0.2)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return handler


SEGMENT = "/dash/s/r/7.m4s"
PIECES = [b"moof-mdat-%d;" % n for n in range(5)]


async def test_what_the_origin_says_is_kept_passed_or_cut(tmp_path: Path) -> None:
    cors = {"Access-Control-Allow-Origin": "*"}
    origin = ScriptedOrigin(
        {
            SEGMENT: dies_once_mid_object(PIECES),
            # An error the origin allows to keep (negative caching) ...
            "/dash/s/manifest.mpd": answer(404, {"Cache-Control": "max-age=30", **cors}, b"no"),
            # ... and ones it does not, passed with their headers.
            "/feed/s/1.ndjson": answer(410, {"Cache-Control": "no-store", **cors}, b"gone"),
            "/feed/s/now": answer(
                503, {"Retry-After": "7", "Cache-Control": "no-store", **cors}, b"busy"
            ),
            "/dash/s/r/init.mp4": answer(200, {"Cache-Control": "private, max-age=60"}, b"i"),
            "/time": answer(200, {"Cache-Control": "no-store"}, b"2026-01-01T00:00:00Z"),
        }
    )
    async with origin.running() as url:
        with run_relay(url, tmp_path / "relay") as relay:
            # The origin goes away mid-segment: the listeners get it cut (no last chunk) ...
            cut = await asyncio.gather(
                *(fetch(relay.url, SEGMENT) for _ in range(3)), return_exceptions=True
            )
            # (a reset: the relay drops what it holds for them at once)
            assert all(isinstance(x, ConnectionResetError) for x in cut), cut
            # ... and the next request asks the origin again, and gets it whole.
            whole = await fetch(relay.url, SEGMENT)
            assert whole.status == 200 and whole.body == b"".join(PIECES)
            assert origin.asked[SEGMENT] == 2
            again = await fetch(relay.url, SEGMENT)
            assert again.body == whole.body and again.headers["x-cache"] == "HIT"
            assert origin.asked[SEGMENT] == 2

            async with httpx.AsyncClient(base_url=relay.url, timeout=10) as client:
                for _ in range(2):
                    missing = await client.get("/dash/s/manifest.mpd")
                    assert missing.status_code == 404 and missing.text == "no"
                    assert missing.headers["access-control-allow-origin"] == "*"
                assert missing.headers["x-cache"] == "HIT"
                assert origin.asked["/dash/s/manifest.mpd"] == 1
                for _ in range(2):
                    gone = await client.get("/feed/s/1.ndjson")
                    assert gone.status_code == 410 and gone.headers["x-cache"] == "MISS"
                assert origin.asked["/feed/s/1.ndjson"] == 2
                busy = await client.get("/feed/s/now")
                assert busy.status_code == 503 and busy.text == "busy"
                assert busy.headers["retry-after"] == "7"
                assert busy.headers["access-control-allow-origin"] == "*"
                for _ in range(2):
                    await client.get("/dash/s/r/init.mp4")  # private: a shared cache keeps none
                assert origin.asked["/dash/s/r/init.mp4"] == 2
                # The clock is never shared or kept; the client's headers never reach the origin.
                await client.get("/time", headers={"Host": "evil.example", "Cookie": "a=b"})
                await client.get("/time", headers={"Authorization": "Bearer secret"})
                assert origin.asked["/time"] == 2
    sent = b"".join(origin.heads).lower()
    assert sent.count(b"\r\nhost: " + f"127.0.0.1:{relay.port}".encode()) == len(origin.heads)
    assert b"evil" not in sent and b"cookie" not in sent and b"secret" not in sent


async def test_an_origin_that_does_not_answer(tmp_path: Path) -> None:
    with run_relay("http://127.0.0.1:9", tmp_path / "relay") as relay:  # nobody listens there
        answered = await fetch(relay.url, SEGMENT)
        assert answered.status == 502
        assert answered.headers["cache-control"] == "no-store"
        assert relay.process.poll() is None


def streams(pieces: int, size: int, every: float) -> Handler:
    async def handler(writer: asyncio.StreamWriter, _count: int) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
            b"Cache-Control: public, max-age=60\r\n\r\n"
        )
        for n in range(pieces):
            writer.write(chunk(bytes([n]) * size))
            await writer.drain()
            await asyncio.sleep(every)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return handler


async def test_a_stalled_reader_of_an_object_in_progress_is_dropped(tmp_path: Path) -> None:
    pieces, size = 30, 400_000  # 12 MB over ~3 s: more than the sockets' buffers hold
    origin = ScriptedOrigin({SEGMENT: streams(pieces, size, 0.1)})
    async with origin.running() as url:
        with run_relay(url, tmp_path / "relay") as relay:
            reader, writer = await asyncio.open_connection(HOST, relay.port)
            writer.write(f"GET {SEGMENT} HTTP/1.1\r\nHost: r\r\n\r\n".encode())
            reader._transport.pause_reading()  # type: ignore[attr-defined]  # reads nothing
            follower = await fetch(relay.url, SEGMENT)  # meanwhile, a listener that reads
            assert follower.status == 200 and len(follower.body) == pieces * size
            assert origin.asked[SEGMENT] == 1  # the stalled one held neither it nor the origin
            reader._transport.resume_reading()  # type: ignore[attr-defined]
            got = 0
            with contextlib.suppress(ConnectionError):
                while data := await asyncio.wait_for(reader.read(1 << 20), 10):
                    got += len(data)
            assert got < pieces * size  # dropped: cut off before the end
            writer.close()
