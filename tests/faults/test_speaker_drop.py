"""A speaker's connection drops without a goodbye (their process is killed: no WHIP DELETE, no
DTLS close): the mix goes on, the speaker is shown off air within seconds, and can publish again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from causerie.media.speakers import AUDIO_TIMEOUT
from tests.conftest import account
from tests.fixtures.rtc import ToneTrack, loopback_only, publish
from tests.harness.in_process import RunningNode, run_node
from tests.harness.polling import eventually
from tests.harness.processes import kill9

pytestmark = pytest.mark.slow


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    loopback_only()
    async with run_node(tmp_path / "data", rtc_host_addresses=("127.0.0.1",)) as running:
        yield running


async def test_a_dropped_speaker_goes_off_air_and_can_come_back(node: RunningNode) -> None:
    host = account(node.data_dir, "Hana", user="u-host")
    token = host["Authorization"].split()[1]
    svc = node.app.services
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        space = (await http.post("/api/spaces", json={"title": "Drop"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http.post(f"{base}/start", headers=host)).status_code == 200
        pipeline = svc.broadcasts.get(space["id"])

        speaker = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.speaker", node.url, space["id"], token],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            line = await asyncio.wait_for(asyncio.to_thread(speaker.stdout.readline), 20)
            assert line.strip() == b"connected", line
            await eventually(
                lambda: any(s.frames_received > 25 for s in svc.speakers.sessions(space["id"])),
                10,
                "audio from the speaker",
            )
            levels = (await http.get(f"{base}/levels", headers=host)).json()["levels"]
            assert "u-host" in levels, levels

            parts_before, before_at = pipeline.packager.last_part(), time.monotonic()
            kill9(speaker)
            gone_after = await eventually(
                lambda: not svc.speakers.sessions(space["id"]),
                AUDIO_TIMEOUT + 3,
                "the dropped session to end",
            )
            print(f"\ndropped speaker off air after {gone_after:.1f} s")
        finally:
            if speaker.poll() is None:
                speaker.kill()
            speaker.wait()
            speaker.stdout.close()

        # The mix went on all along: parts kept coming (one every 213 ms).
        parts_after, elapsed = pipeline.packager.last_part(), time.monotonic() - before_at
        assert svc.broadcasts.get(space["id"]) is pipeline
        advanced = (parts_after[0] - parts_before[0]) * 9 + parts_after[1] - parts_before[1]
        assert advanced >= 0.5 * elapsed / 0.2133 - 3, (parts_before, parts_after, elapsed)

        # The studio shows them off air: a moderator's levels no longer list them.
        levels = (await http.get(f"{base}/levels", headers=host)).json()["levels"]
        assert "u-host" not in levels, levels

        # And they can publish again, at once.
        again = await publish(http, space["id"], token, ToneTrack(440), receive=False)
        try:
            await again.wait_connected()
            await eventually(
                lambda: any(s.frames_received > 10 for s in svc.speakers.sessions(space["id"])),
                10,
                "audio after publishing again",
            )
            levels = (await http.get(f"{base}/levels", headers=host)).json()["levels"]
            assert "u-host" in levels, levels
        finally:
            await again.close()
