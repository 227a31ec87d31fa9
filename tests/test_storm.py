"""A join storm far above what a node admits: polite refusals, audio keeps flowing.

A real `causerie demo` process is flooded by a crowd of thousands of people pressing "join" at
the same instant, each on a connection of their own, from processes of their own
(bench/_crowd.py: cheap raw-socket clients, connected beforehand), while one listener
follows the live stream with blocking reloads. Refused joins must be 503 with Retry-After
(never another 5xx), the process must survive, the listener must get every part on time, and
everyone who retries as told must get in.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import m3u8
import pytest
from bench._crowd import crowd_in_processes

from tests.harness.causerie_process import causerie_process

JOINERS = 9000
FLOOD_SECONDS = 40.0
PART_SECONDS = 10 * 1024 / 48000


@pytest.fixture
def small_node(tmp_path: Path):
    """`causerie demo` shedding load when its loop runs 50 ms late; yields (URL, process)."""
    with causerie_process(tmp_path, "demo", "--max-lag", "0.05") as node:
        yield node.url, node.process


async def follow(url: str, playlist: str, stop) -> list[tuple[int, int, float]]:
    """Follow the live edge like hls.js until `stop` is set: blocking reload for the next part,
    then fetch it.

    Returns (msn, part, seconds after the part was listed that its bytes arrived)."""
    got: list[tuple[int, int, float]] = []
    end = time.monotonic() + FLOOD_SECONDS + 30
    base = playlist.rsplit("/", 1)[0]
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        parsed = m3u8.loads((await client.get(playlist)).text)
        hint = parsed.preload_hint.uri  # "{run}/{msn}.{part}.m4s": the next part
        msn, part = (int(x) for x in hint.rsplit("/", 1)[1].split(".")[:2])
        while time.monotonic() < end and not stop.is_set():
            listed = await client.get(playlist, params={"_HLS_msn": msn, "_HLS_part": part})
            assert listed.status_code == 200, listed.text
            at = time.monotonic()
            run = hint.split("/")[0]
            media = await client.get(f"{base}/{run}/{msn}.{part}.m4s")
            assert media.status_code == 200
            got.append((msn, part, time.monotonic() - at))
            msn, part = (msn, part + 1) if part + 1 < 9 else (msn + 1, 0)
    return got


def follow_in_own_process(url: str, playlist: str, stop) -> list:
    """The listener runs in a process of its own, so the crowd does not slow it."""
    return asyncio.run(follow(url, playlist, stop))


async def test_join_storm_is_refused_politely_and_media_keeps_flowing(small_node) -> None:
    url, proc = small_node
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        space = (await client.get("/api/spaces")).json()["spaces"][0]
        playlist = space["media_playlist_url"]
        while (await client.get(playlist)).text.count("#EXTINF") < 1:
            await asyncio.sleep(0.2)

    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    stop = manager.Event()
    pool = ProcessPoolExecutor(1, mp_context=context)
    follower = asyncio.get_running_loop().run_in_executor(
        pool, follow_in_own_process, url, playlist, stop
    )
    await asyncio.sleep(3)

    flood_started = time.monotonic()
    address = urlsplit(url)
    crowd = await crowd_in_processes(
        address.hostname,
        address.port,
        f"/api/spaces/{space['id']}/join",
        JOINERS,
        seconds=FLOOD_SECONDS,
        nice=10,
        together=True,
    )
    await asyncio.sleep(1)
    stop.set()
    parts = await asyncio.wait_for(follower, 15)
    pool.shutdown()
    manager.shutdown()

    took = max(crowd.admitted_at, default=0) - min(crowd.arrived_at)
    print(
        f"{JOINERS} joiners at once: answers {dict(crowd.statuses)}, errors {dict(crowd.errors)},"
        f" {len(crowd.admitted_at)} admitted in {took:.1f} s; listener: {len(parts)} parts"
    )
    assert proc.poll() is None, "the node died"
    # The listener was listening through the whole flood.
    assert len(parts) * PART_SECONDS > time.monotonic() - flood_started
    refused = crowd.statuses[503]
    assert refused > 0, "the storm never went over what the node admits: make it bigger"
    assert set(crowd.statuses) == {200, 503}, f"answers: {dict(crowd.statuses)}"
    assert set(crowd.retry_after) <= {"1", "2", "3", "4", "5"}, dict(crowd.retry_after)
    assert not crowd.errors, f"failed requests: {dict(crowd.errors)}"
    assert crowd.gave_up == 0 and len(crowd.admitted_at) == JOINERS
    # The listener already in got every part, in order, each well before the next was due.
    numbers = [(msn, part) for msn, part, _ in parts]
    expected = [numbers[0]]
    while len(expected) < len(numbers):
        msn, part = expected[-1]
        expected.append((msn, part + 1) if part + 1 < 9 else (msn + 1, 0))
    assert numbers == expected
    late = [delay for _, _, delay in parts if delay > PART_SECONDS]
    assert len(late) <= len(parts) // 100, f"{len(late)} of {len(parts)} parts late"
