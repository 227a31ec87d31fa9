"""`causerie demo` as a separate process, heard by ffmpeg as an independent HLS client."""

from __future__ import annotations

import subprocess
import time

import httpx
import numpy as np


def test_ffmpeg_records_ten_seconds_of_speech(server_process, ffmpeg, tmp_path) -> None:
    url, _ = server_process
    spaces = httpx.get(f"{url}/api/spaces", timeout=5).json()["spaces"]
    assert spaces and spaces[0]["state"] == "live"
    assert spaces[0]["stage"][0]["role"] == "host"
    playlist = f"{url}{spaces[0]['playlist_url']}"
    # ffmpeg plays LL-HLS as classic HLS (it ignores parts): wait for two whole segments.
    deadline = time.monotonic() + 15
    while httpx.get(playlist, timeout=5).text.count("#EXTINF") < 2:
        assert time.monotonic() < deadline, "no segments after 15 s"
        time.sleep(0.2)
    recording = tmp_path / "recording.m4a"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-i", playlist, "-t", "10", "-c", "copy", str(recording)],
        check=True,
        timeout=40,
    )
    pcm = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-i",
            str(recording),
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            "48000",
            "-",
        ],
        check=True,
        capture_output=True,
        timeout=20,
    ).stdout
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    assert abs(len(samples) / 48000 - 10) < 0.5
    # Speech, not silence: loud enough overall, and its loudness comes and goes (words, pauses).
    frames = samples[: len(samples) // 960 * 960].reshape(-1, 960)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    assert np.sqrt(np.mean(samples**2)) > 300
    assert np.percentile(rms, 90) > 4 * max(np.percentile(rms, 10), 1.0)


def test_pages_are_served(server_process) -> None:
    url, _ = server_process
    index = httpx.get(f"{url}/", timeout=5)
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    space_id = httpx.get(f"{url}/api/spaces", timeout=5).json()["spaces"][0]["id"]
    page = httpx.get(f"{url}/s/{space_id}", timeout=5)
    assert page.status_code == 200
    assert httpx.get(f"{url}/static/vendor/hls.min.js", timeout=5).status_code == 200
