"""Housekeeping on a real node, with a fake clock: a live space nobody is on the microphone in
is announced to end (a `space` event with `ending_at`, what the studio shows), then ends by
itself; a speaker going on air cancels it; the demo space's voices count as speakers. The
loop's step is run by the test (it would run every 10 s) and reads the node's clock."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from causerie.bus import Event
from causerie.node.demo import open_demo_space
from causerie.node.loops import IdleSpaces, loops
from causerie.node.services import Services
from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node

MINUTE = 60.0


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-3)  # datetimes keep microseconds


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def live_space(client: httpx.AsyncClient, node: RunningNode, title: str) -> str:
    host = account(node.data_dir, user="u-host")
    space_id = (await client.post("/api/spaces", json={"title": title}, headers=host)).json()["id"]
    assert (await client.post(f"/api/spaces/{space_id}/start", headers=host)).is_success
    return space_id


async def next_event(svc: Services, space_id: str, after: int) -> Event:
    async def first() -> Event:
        async for event in svc.bus.subscribe(space_id, after):
            if event is not None:
                return event
        raise AssertionError("the bus closed")

    return await asyncio.wait_for(first(), timeout=5)


async def test_a_space_nobody_speaks_in_is_announced_to_end_then_ends(node: RunningNode):
    svc: Services = node.app.services
    clock = svc.clock = FakeClock()
    started = clock.now
    loop = IdleSpaces(svc)
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        quiet = await live_space(client, node, "Abandoned")
        talking = await live_space(client, node, "Busy")
        svc.broadcasts.get(talking).mixer.add_input("a speaker")  # as a WHIP session does
        demo, _ = await open_demo_space(svc)

        await loop.step()  # the first look: quiet since now
        clock.now += 9 * MINUTE
        await loop.step()
        assert (await client.get(f"/api/spaces/{quiet}")).json()["ending_at"] is None

        # Ten minutes of quiet: the end is announced on the space, five minutes ahead.
        after = await svc.bus.last_id(quiet)
        clock.now = started + 10 * MINUTE
        await loop.step()
        event = await next_event(svc, quiet, after)
        ends = datetime.fromtimestamp(started + 15 * MINUTE, UTC)
        assert event.type == "space"
        assert datetime.fromisoformat(event.data["ending_at"]) == ends
        details = (await client.get(f"/api/spaces/{quiet}")).json()
        assert datetime.fromisoformat(details["ending_at"]) == ends
        assert details["state"] == "live"

        # A speaker comes back: cancelled, and a full wait again once they leave.
        pipeline = svc.broadcasts.get(quiet)
        pipeline.mixer.add_input("back")
        clock.now = started + 12 * MINUTE
        await loop.step()
        assert (await client.get(f"/api/spaces/{quiet}")).json()["ending_at"] is None
        pipeline.mixer.remove_input("back")
        clock.now = started + 13 * MINUTE
        await loop.step()
        clock.now = started + 23 * MINUTE
        await loop.step()
        announced = (await client.get(f"/api/spaces/{quiet}")).json()["ending_at"]
        assert datetime.fromisoformat(announced).timestamp() == approx(started + 28 * MINUTE)

        clock.now = started + 28 * MINUTE
        await loop.step()
        details = (await client.get(f"/api/spaces/{quiet}")).json()
        assert details["state"] == "ended"
        assert datetime.fromisoformat(details["ended_at"]).timestamp() == approx(clock.now)
        assert details["ending_at"] is None
        assert quiet not in svc.broadcasts.live_ids()
        listed = {s["id"] for s in (await client.get("/api/spaces")).json()["spaces"]}
        assert quiet not in listed  # off the home page

        # Hours later, the spaces with someone connected (the demo's voices too) are live.
        clock.now = started + 6 * 60 * MINUTE
        await loop.step()
        for space_id in (talking, demo):
            details = (await client.get(f"/api/spaces/{space_id}")).json()
            assert (details["state"], details["ending_at"]) == ("live", None)
        metrics = (await client.get("/metrics")).text
        assert re.search(r"^causerie_spaces_ended_idle_total 1$", metrics, re.MULTILINE)


async def test_never_with_0_and_an_end_the_host_beat_is_left_alone(tmp_path: Path):
    async with (
        run_node(tmp_path / "never", end_idle_after=0) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as client,
    ):
        assert "end-idle-spaces" not in [loop.name for loop in loops(node.app.services)]
    async with (
        run_node(tmp_path / "data", end_idle_after=3 * MINUTE) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as client,
    ):
        svc: Services = node.app.services
        clock = svc.clock = FakeClock()
        assert "end-idle-spaces" in [loop.name for loop in loops(svc)]
        loop = IdleSpaces(svc)
        space_id = await live_space(client, node, "Short wait")
        await loop.step()
        clock.now += 2 * MINUTE  # a third of 3 minutes before the end: announced
        await loop.step()
        assert (await client.get(f"/api/spaces/{space_id}")).json()["ending_at"] is not None
        ended = await client.post(
            f"/api/spaces/{space_id}/end", headers=account(node.data_dir, user="u-host")
        )
        assert ended.json()["ending_at"] is None
        clock.now += MINUTE
        await loop.step()  # nothing left to do, and nothing fails
        assert (await client.get(f"/api/spaces/{space_id}")).json()["state"] == "ended"
