"""A join storm far above what a node admits at once: polite refusals, audio keeps flowing.

A real `causerie demo` process with a small admission bound (`--max-inflight 16`) is flooded
with a bounded burst of joins from hundreds of connections at once, while one listener follows
the live stream with blocking reloads. Refused joins must be 503 with Retry-After (never another
5xx), the process must survive, the listener must get every part on time, and everyone who
retries as told must get in.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import m3u8
import pytest

from tests.conftest import causerie_process

JOINERS = 800
CONNECTIONS = 200
PART_SECONDS = 10 * 1024 / 48000
FOLLOW_SECONDS = 40.0


@pytest.fixture
def small_node(tmp_path: Path):
    """`causerie demo` with a small admission bound; yields (URL, process)."""
    with causerie_process(tmp_path, "demo", "--max-inflight", "16") as (url, _, proc):
        yield url, proc


async def follow(url: str, playlist: str, seconds: float) -> list[tuple[int, int, float]]:
    """Follow the live edge like hls.js: blocking reload for the next part, then fetch it.

    Returns (msn, part, seconds after the part was listed that its bytes arrived)."""
    got: list[tuple[int, int, float]] = []
    end = time.monotonic() + seconds
    base = playlist.rsplit("/", 1)[0]
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        parsed = m3u8.loads((await client.get(playlist)).text)
        hint = parsed.preload_hint.uri  # "{run}/{msn}.{part}.m4s": the next part
        msn, part = (int(x) for x in hint.rsplit("/", 1)[1].split(".")[:2])
        while time.monotonic() < end:
            listed = await client.get(playlist, params={"_HLS_msn": msn, "_HLS_part": part})
            assert listed.status_code == 200, listed.text
            at = time.monotonic()
            run = hint.split("/")[0]
            media = await client.get(f"{base}/{run}/{msn}.{part}.m4s")
            assert media.status_code == 200
            got.append((msn, part, time.monotonic() - at))
            msn, part = (msn, part + 1) if part + 1 < 9 else (msn + 1, 0)
    return got


def follow_in_own_process(url: str, playlist: str, seconds: float) -> list:
    """The listener runs in a process of its own, so the flood's client does not slow it."""
    return asyncio.run(follow(url, playlist, seconds))


async def join_until_admitted(
    client: httpx.AsyncClient, path: str, refusals: list[httpx.Response], deadline: float
) -> bool:
    while time.monotonic() < deadline:
        response = await client.post(path)
        if response.status_code == 200:
            return True
        refusals.append(response)
        if response.status_code != 503:
            return False
        # Honour Retry-After, with full jitter below it so retries do not come back together.
        wait = float(response.headers["retry-after"])
        await asyncio.sleep(wait * (0.5 + 0.5 * (hash(id(response)) % 100) / 100))
    return False


async def test_join_storm_is_refused_politely_and_media_keeps_flowing(small_node) -> None:
    url, proc = small_node
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        space = (await client.get("/api/spaces")).json()["spaces"][0]
        playlist = space["playlist_url"]
        while (await client.get(playlist)).text.count("#EXTINF") < 1:
            await asyncio.sleep(0.2)

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    follower = asyncio.get_running_loop().run_in_executor(
        pool, follow_in_own_process, url, playlist, FOLLOW_SECONDS
    )
    await asyncio.sleep(2)

    refusals: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    flood_started = time.monotonic()
    deadline = flood_started + 60
    timeout = httpx.Timeout(20, pool=None)  # waiting for a free connection is the client's queue
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        admitted = await asyncio.gather(
            *(
                join_until_admitted(client, f"/api/spaces/{space['id']}/join", refusals, deadline)
                for _ in range(JOINERS)
            )
        )
    flood_seconds = time.monotonic() - flood_started
    parts = await asyncio.wait_for(follower, FOLLOW_SECONDS + 15)
    pool.shutdown()

    assert proc.poll() is None, "the node died"
    assert flood_seconds < FOLLOW_SECONDS - 2, "the listener must be listening during the flood"
    assert refusals, "the storm never went over the admission bound: make it bigger"
    assert {r.status_code for r in refusals} == {503}
    assert all(1 <= int(r.headers["retry-after"]) <= 5 for r in refusals)
    assert all(admitted), f"{admitted.count(False)} joiners never got in"
    # The listener already in got every part, in order, each well before the next was due.
    numbers = [(msn, part) for msn, part, _ in parts]
    expected = [numbers[0]]
    while len(expected) < len(numbers):
        msn, part = expected[-1]
        expected.append((msn, part + 1) if part + 1 < 9 else (msn + 1, 0))
    assert numbers == expected
    late = [delay for _, _, delay in parts if delay > PART_SECONDS]
    assert len(late) <= len(parts) // 100, f"{len(late)} of {len(parts)} parts late"
