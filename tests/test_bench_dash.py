"""The simulated LL-DASH listener of the benchmarks (bench/_dash.py): what it reads off the wire,
how it judges lateness, and that it follows a real node's segments chunk by chunk."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import numpy as np
import pytest
from bench import _dash

from tests.harness.causerie_process import causerie_process


def box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def chunked(body: bytes, sizes: list[int]) -> bytes:
    """`body` in HTTP chunks of `sizes` (RFC 9112 §7.1), then the last chunk."""
    out, at = b"", 0
    for size in sizes:
        out += b"%x\r\n" % size + body[at : at + size] + b"\r\n"
        at += size
    assert at == len(body)
    return out + b"0\r\n\r\n"


class Transport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


async def read(
    stream: _dash._Stream, wire: bytes, pieces: list[int], *, head: bool = False
) -> tuple[int, list[float], int]:
    """Feed `wire` to the protocol in `pieces` (their sizes), as the socket would."""
    stream.head_only = head
    waiter = stream.waiter = asyncio.get_running_loop().create_future()
    at = 0
    for size in pieces:
        stream.data_received(wire[at : at + size])
        at += size
    assert at == len(wire)
    return await waiter


SEGMENT = b"".join(
    box(b"moof", bytes(90)) + box(b"mdat", bytes(range(200)) * (n + 1)) for n in range(18)
)
HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: audio/mp4\r\nTransfer-Encoding: chunked\r\n\r\n"


def splits(total: int, rng: random.Random) -> list[int]:
    pieces = []
    while total:
        size = min(total, rng.choice([1, 2, 3, 7, 64, 500, 4096]))
        pieces.append(size)
        total -= size
    return pieces


async def test_a_chunked_segment_cut_anywhere_gives_every_mdat_once() -> None:
    rng = random.Random(7)
    stream = _dash._Stream()
    stream.connection_made(Transport())  # type: ignore[arg-type]
    for _ in range(20):
        wire = HEAD_CHUNKED + chunked(SEGMENT, splits(len(SEGMENT), rng))
        status, times, size = await read(stream, wire, splits(len(wire), rng))
        assert (status, len(times), size) == (200, 18, len(SEGMENT))
        assert times == sorted(times)


async def test_a_response_with_a_length_then_a_head_then_an_error_on_one_connection() -> None:
    stream = _dash._Stream()
    stream.connection_made(Transport())  # type: ignore[arg-type]
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(SEGMENT) + SEGMENT
    status, times, size = await read(stream, whole, [10, 5000, len(whole) - 5010])
    assert (status, len(times), size) == (200, 18, len(SEGMENT))
    status, times, size = await read(stream, HEAD_CHUNKED, [len(HEAD_CHUNKED)], head=True)
    assert (status, times, size) == (200, [], 0)
    error = b'HTTP/1.1 404 Not Found\r\nContent-Length: 15\r\n\r\n{"error": "no"}'
    assert (await read(stream, error, [len(error)]))[0] == 404


async def test_a_closed_connection_fails_the_request_in_progress() -> None:
    stream = _dash._Stream()
    stream.connection_made(Transport())  # type: ignore[arg-type]
    waiter = stream.waiter = asyncio.get_running_loop().create_future()
    stream.data_received(HEAD_CHUNKED + b"1f4\r\n" + bytes(100))
    stream.connection_lost(None)
    with pytest.raises(_dash.HttpError):
        await waiter


def test_judge_counts_a_segment_late_if_one_chunk_is() -> None:
    chunk = 0.2
    ready = {7: [10.0 + k * chunk for k in range(3)], 8: [10.6 + k * chunk for k in range(3)]}
    window = _dash.Window(start=9.0, end=20.0, stop=21.0)
    rows, numbers, indices, times = [], [], [], []
    for row in range(2):
        for number, made in ready.items():
            for index, at in enumerate(made):
                late = 0.5 if (row, number, index) == (1, 8, 2) else 0.05
                rows.append(row)
                numbers.append(number)
                indices.append(index)
                times.append(at + late)
    table = np.array([rows, numbers, indices, times], dtype=np.float64)
    judged = _dash.judge(table, ready, 2, window, chunk)
    assert judged.segments == 2
    assert judged.on_time == 3 / 4  # listener 1's segment 8 had a chunk 0.5 s late
    assert judged.chunks_on_time == 11 / 12
    assert judged.missing == 0
    # A listener that never got anything: all its segments late, its chunks missing.
    judged = _dash.judge(table, ready, 3, window, chunk)
    assert judged.on_time == 3 / 6
    assert judged.missing == pytest.approx(1 / 3)


@pytest.mark.slow
def test_listeners_follow_a_live_node_chunk_by_chunk(tmp_path: Path) -> None:
    """Against a real `causerie demo`: every segment asked for when due arrives as 18 chunks
    ~213 ms apart, the events follower reads windows, and a listener is judged on time."""
    with causerie_process(tmp_path, "demo", "--log-level", "warning", parts=1) as node:
        manifest = _dash.fetch_manifest(node.url, node.space_id)
        assert manifest.chunk_seconds == pytest.approx(0.2133, abs=0.002)
        now = time.time()
        assert (
            manifest.due(manifest.number_at(now)) <= now < manifest.due(manifest.number_at(now) + 1)
        )
        # Long enough for one event window (15 s, closed 1 s after its end) to end inside it:
        # a window request is counted when its stream ends.
        window = _dash.Window(now + 1.0, now + 18.5, now + 19.0)
        tally = _dash.Tally()

        async def run() -> tuple[list[_dash.Listener], dict[int, list[float]]]:
            listeners = [
                _dash.Listener("127.0.0.1", node.port, manifest, window, tally, feed=True)
                for _ in range(3)
            ]
            reference = asyncio.create_task(
                _dash.reference(node.port, "127.0.0.1", manifest, window.stop)
            )
            await asyncio.gather(*(x.run(0.0) for x in listeners))
            return listeners, await reference

        listeners, ready = asyncio.run(run())
    judged_segments = [n for n, t in ready.items() if window.start <= t[0] and t[-1] < window.end]
    assert judged_segments, ready
    for number in judged_segments:
        gaps = np.diff(ready[number])
        assert len(ready[number]) == 18
        assert np.median(gaps) == pytest.approx(0.2133, abs=0.03)
    judged = _dash.judge(_dash.chunk_table(listeners, 0), ready, 3, window, 0.2133)
    assert judged.missing == 0
    assert judged.chunks_on_time >= 0.9  # loopback, three listeners: unless the machine stalls
    assert tally.feed_requests >= 1 and tally.errors == 0
