"""The recording disk fills: the host is told (the space's `recording_error`, and the log), the
live stream goes on, and recording resumes by itself once there is room again.

DATA/recordings is a 96 KiB tmpfs, nearly filled beforehand (a silent space's segments are small):
mounting needs root, so the test is skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import account
from tests.faults.playlists import last_complete_msn
from tests.harness.causerie_process import causerie_process
from tests.harness.polling import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """DATA/recordings on a tiny tmpfs of its own."""
    recordings = tmp_path / "data" / "recordings"
    recordings.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(recordings)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        # Leave room for the init section and a few seconds of segments only.
        stat = os.statvfs(recordings)
        (recordings / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 12 * 1024))
        yield recordings
    finally:
        subprocess.run(["umount", "-l", str(recordings)], check=False)


def _media_sequence(http: httpx.Client, space_id: str) -> int:
    return last_complete_msn(http.get(f"/hls/{space_id}/index.m3u8").text)


def _details(http: httpx.Client, path: str) -> dict:
    reply = http.get(path)
    assert reply.status_code == 200, (reply.status_code, reply.text)
    return reply.json()


def _pushed_recording_error(http: httpx.Client, path: str) -> str:
    """The `recording_error` of the first `space` event that carries one, from the start of
    the space's event stream (Last-Event-ID: 0 replays what was published)."""
    with http.stream("GET", f"{path}/events", headers={"Last-Event-ID": "0"}) as events:
        kind = None
        for line in events.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind == "space":
                error = json.loads(line.removeprefix("data: ")).get("recording_error")
                if error:
                    return error
    raise AssertionError("no space event carried the recording error")


def test_a_full_recording_disk_is_reported_and_the_stream_goes_on(
    tmp_path: Path, small_disk: Path
) -> None:
    host = account(tmp_path / "data", "Hana")
    with (
        causerie_process(tmp_path, "serve", "--rtc-host", "127.0.0.1") as node,
        httpx.Client(base_url=node.url, timeout=10) as http,
    ):
        log = node.log
        space = http.post("/api/spaces", json={"title": "Full disk"}, headers=host).json()
        base = f"/api/spaces/{space['id']}"
        assert http.post(f"{base}/start", headers=host).status_code == 200

        # The disk fills within a few segments; the host sees why in the space's details.
        wait_until(lambda: _details(http, base)["recording_error"], 30, "a recording error")
        error = _details(http, base)["recording_error"]
        assert "No space left on device" in error, error
        # ... and it was pushed to the pages (the studio shows it): a `space` event carrying it.
        assert "No space left on device" in _pushed_recording_error(http, base)
        assert "recording into" in log.read_text() and "failed" in log.read_text()

        # The live stream goes on: new segments keep coming after the failure.
        first = _media_sequence(http, space["id"])
        wait_until(lambda: _media_sequence(http, space["id"]) >= first + 2, 10, "new segments")
        assert http.get("/healthz").status_code == 200

        # Room again (an operator cleans up): the recorder resumes by itself.
        assert list((small_disk / space["id"]).glob("*/*.m4s")), "nothing recorded at all"
        (small_disk / "filler").unlink()
        wait_until(lambda: "recording resumed" in log.read_text(), 10, "the recording resuming")
        details = _details(http, base)
        assert details["state"] == "live" and details["recording_error"], details
        assert http.post(f"{base}/end", headers=host).status_code == 200
