"""Retention on a real node: a recording kept its time is removed, and its replay (playlist,
segments, download, clips) answers 410 Gone with a sentence; over the disk budget the
recordings that ended first go first, never a live one. The node's clock is a fake one the
test moves on; the loop's step is run by the test (it would run every 5 minutes)."""

from __future__ import annotations

import logging
import re
import time

import httpx
import pytest

from causerie.cli import issue_account_token
from causerie.media import retention
from causerie.node.loops import RecordingRetention
from causerie.node.services import Services
from tests.api.test_clip_limits import record
from tests.harness.in_process import RunningNode

DAY = 86400.0


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match[1])


async def replay_answers(client: httpx.AsyncClient, space_id: str) -> dict[str, int]:
    """The status of every way of reaching a recording: playlist, media, download, clips."""
    clip = await client.post(f"/api/spaces/{space_id}/clips", json={"start": 0, "end": 5})
    return {
        "playlist": (await client.get(f"/replay/{space_id}/index.m3u8")).status_code,
        "init": (await client.get(f"/replay/{space_id}/r1/init.mp4")).status_code,
        "segment": (await client.get(f"/replay/{space_id}/r1/0.m4s")).status_code,
        "download": (await client.get(f"/replay/{space_id}.m4a")).status_code,
        "new clip": clip.status_code,
        "clip": (await client.get(f"/clips/{space_id}.0-5000.m4a")).status_code,
    }


async def recorded_space(client: httpx.AsyncClient, node: RunningNode, end: bool = True) -> str:
    """A space with 20 s recorded (written fast by the real packager and recorder, not in real
    time: its own pipeline runs without recording), ended unless `end` is False."""
    token = issue_account_token(node.data_dir, "Host", "u-host", days=365)
    host = {"Authorization": f"Bearer {token}"}  # valid whatever the fake clock says
    body = {"title": "Recorded", "recording": False}
    space_id = (await client.post("/api/spaces", json=body, headers=host)).json()["id"]
    assert (await client.post(f"/api/spaces/{space_id}/start", headers=host)).is_success
    if end:
        assert (await client.post(f"/api/spaces/{space_id}/end", headers=host)).is_success
    record(node.data_dir / "recordings", space_id, 20)
    return space_id


async def test_a_recording_past_its_age_is_removed_and_its_replay_answers_410(node: RunningNode):
    svc: Services = node.app.services
    clock = svc.clock = FakeClock()
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
        old = await recorded_space(client, node)
        clock.now += 10 * DAY
        young = await recorded_space(client, node)
        assert await replay_answers(client, old) == {
            "playlist": 200,
            "init": 200,
            "segment": 200,
            "download": 200,
            "new clip": 201,
            "clip": 200,
        }
        clock.now += 20 * DAY + 1  # old: 30 days and a second since it ended; young: 20 days
        await RecordingRetention(svc).step()

        gone = await replay_answers(client, old)
        assert set(gone.values()) == {410}, gone
        answer = await client.get(f"/replay/{old}/index.m3u8")
        assert answer.json()["error"] == "gone"
        assert answer.json()["message"].endswith("this server keeps them 30 days")
        assert answer.headers["cache-control"] == "no-store"
        details = (await client.get(f"/api/spaces/{old}")).json()
        assert details["replay_url"] is None and details["download_url"] is None
        assert (await client.get(f"/replay/{young}/index.m3u8")).status_code == 200

        metrics = (await client.get("/metrics")).text
        assert metric(metrics, 'causerie_recordings_removed_total{reason="age"}') == 1
        assert metric(metrics, "causerie_recordings") == 1
        assert metric(metrics, "causerie_recordings_bytes") > 100_000  # young's 20 s
        assert metric(metrics, "causerie_recordings_disk_free_bytes") > 0
        # A space with no recording at all still says 404, not 410.
        assert (await client.get("/replay/never-here/index.m3u8")).status_code == 404


async def test_over_the_budget_the_first_ended_go_first_and_a_live_one_never(
    node: RunningNode, caplog: pytest.LogCaptureFixture
):
    svc: Services = node.app.services
    clock = svc.clock = FakeClock()
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
        first = await recorded_space(client, node)
        clock.now += 60
        second = await recorded_space(client, node)
        live = await recorded_space(client, node, end=False)
        sizes = {r.space_id: r.bytes for r in retention.measure(node.data_dir / "recordings")}
        loop = RecordingRetention(svc)

        svc.recordings.max_bytes = sizes[second] + sizes[live]
        await loop.step()
        assert (await client.get(f"/replay/{first}/index.m3u8")).status_code == 410
        assert (await client.get(f"/replay/{second}/index.m3u8")).status_code == 200
        assert svc.recordings.removed == {"age": 0, "budget": 1, "takedown": 0}
        assert not svc.recordings.over_budget

        svc.recordings.max_bytes = 1
        with caplog.at_level(logging.WARNING):
            await loop.step()
        gone = (await client.get(f"/replay/{second}/index.m3u8")).json()
        assert "disk budget" in gone["message"]
        assert (node.data_dir / "recordings" / live / "index.jsonl").is_file()
        metrics = (await client.get("/metrics")).text
        assert metric(metrics, "causerie_recordings_over_budget") == 1
        assert metric(metrics, "causerie_recordings_live_bytes") == sizes[live]
        assert metric(metrics, "causerie_recordings_max_bytes") == 1
        assert any("Live recordings are never cut short" in r.message for r in caplog.records)
