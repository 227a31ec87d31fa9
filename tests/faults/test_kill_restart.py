"""`kill -9` of the single embedded-mode process mid-space, then a restart on the same data
directory and port: the space comes back on the air by itself, the recording misses at most the
segment in progress, the questions and the audience numbers are intact, and a listener's page
(dash.js in headless Chromium) plays again by itself within 10 s.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from causerie.media.recorder import Recording
from tests.conftest import account
from tests.faults.playlists import last_complete_msn
from tests.harness.causerie_process import CauserieProcess
from tests.harness.ports import stable_port
from tests.web.live import CHROMIUM, Watched, chromium, phone_page, start_listening

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RESUME_WITHIN = 10.0  # seconds from the restarted node's first healthy answer

# Seconds of sound played, counting only the playhead's small steps: a new run's timeline
# starts later (LL-DASH media time is wall time), and that jump is not sound heard.
COUNT_HEARD_JS = """() => {
    const audio = window.causerie.audio;
    window.__heard = 0;
    let last = audio.currentTime;
    audio.addEventListener("timeupdate", () => {
        const step = audio.currentTime - last;
        last = audio.currentTime;
        if (step > 0 && step < 0.5 && !audio.paused) window.__heard += step;
    });
}"""


async def test_kill_9_mid_space_then_restart(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    pytest.importorskip("playwright.async_api")
    # On a port it can bind again after the kill, with the same data directory.
    node = CauserieProcess(tmp_path, "serve", ("--rtc-host", "127.0.0.1"), port=stable_port())
    url, data_dir = node.url, node.data_dir
    host = account(data_dir, "Hana")
    node.start()
    try:
        node.wait_healthy()
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            space = (await http.post("/api/spaces", json={"title": "Crash"}, headers=host)).json()
            base = f"/api/spaces/{space['id']}"
            assert (await http.post(f"{base}/start", headers=host)).status_code == 200
            # Listeners join and ask; one question gets a vote.
            asked = []
            tokens = []
            for i in range(5):
                token = (await http.post(f"{base}/join", json={"name": f"L{i}"})).json()["token"]
                tokens.append({"Authorization": f"Bearer {token}"})
            for i, who in enumerate(tokens[:3]):
                reply = await http.post(f"{base}/questions", json={"text": f"Q{i}?"}, headers=who)
                assert reply.status_code == 201, reply.text
                asked.append(reply.json()["id"])
            vote = await http.post(f"{base}/questions/{asked[0]}/votes", headers=tokens[4])
            assert vote.status_code in (200, 201, 204), vote.text
            questions_before = (await http.get(f"{base}/questions")).json()["questions"]

            async with chromium() as browser:
                watched = Watched()
                page = await phone_page(browser, watched)
                await page.goto(f"{url}/s/{space['id']}")
                await start_listening(page)
                await page.evaluate(COUNT_HEARD_JS)
                await asyncio.sleep(3.0)  # more than one segment recorded, and the snapshot
                stats_before = (await http.get(f"{base}/stats", headers=host)).json()
                playlist = (await http.get(f"/hls/{space['id']}/index.m3u8")).text
                last_before = last_complete_msn(playlist)

                node.kill9()
                node.start()
                healthy_at = await asyncio.to_thread(node.wait_healthy)
                heard_at_restart = await page.evaluate("window.__heard")

                # The space is back on the air by itself, on a new run.
                details = (await http.get(base)).json()
                assert details["state"] == "live", details
                assert (await http.get(f"/hls/{space['id']}/index.m3u8")).status_code == 200

                # The listener's page plays again by itself: a second of new sound, within
                # RESUME_WITHIN of the node answering again.
                await page.wait_for_function(
                    f"!window.causerie.audio.paused && window.__heard > {heard_at_restart + 1.0}",
                    timeout=RESUME_WITHIN * 1000,
                )
                resumed_after = time.monotonic() - healthy_at
                print(f"\nlistener playing again {resumed_after:.1f} s after the restart")
                assert resumed_after <= RESUME_WITHIN
                assert not watched.page_errors, watched.page_errors

            # Questions and votes are intact.
            questions_after = (await http.get(f"{base}/questions")).json()["questions"]
            assert questions_after == questions_before
            # So are the numbers shown to the host: nothing counted before the kill is lost (the
            # page may count again since, so "at least").
            stats_after = (await http.get(f"{base}/stats", headers=host)).json()
            assert stats_before["joins"] and stats_before["unique_listeners"] >= 6
            for key, value in stats_before["joins"].items():
                assert stats_after["joins"][key] >= value, (stats_before, stats_after)
            assert stats_after["unique_listeners"] >= stats_before["unique_listeners"]
            assert stats_after["heartbeats"] >= stats_before["heartbeats"]
            # Listeners' tokens signed before the crash are still good.
            beat = await http.post(f"{base}/heartbeat", headers=tokens[0])
            assert beat.status_code == 204, beat.text

            await asyncio.sleep(2.5)  # a segment of the new run
            assert (await http.post(f"{base}/end", headers=host)).status_code == 200
    finally:
        node.stop()

    # The recording: every segment of the first run up to the last one listed before the kill,
    # but at most one (the one in progress), then the new run after a discontinuity.
    recording = Recording.load(data_dir / "recordings", space["id"])
    runs = [piece[0].run_id for piece in recording.pieces()]
    assert len(runs) == 2 and runs[0] != runs[1], runs
    first = recording.pieces()[0]
    assert [s.msn for s in first] == list(range(first[0].msn, first[-1].msn + 1))
    assert first[-1].msn >= last_before - 1, (first[-1].msn, last_before)
    assert len(recording.pieces()[1]) >= 1
