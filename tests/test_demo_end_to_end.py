"""`causerie demo` as a separate process, heard by ffmpeg as an independent HLS client."""

from __future__ import annotations

import httpx
import numpy as np

from tests.hls_recording import record_live


def test_ffmpeg_records_ten_seconds_of_speech(server_process, ffmpeg, tmp_path) -> None:
    url, _ = server_process
    spaces = httpx.get(f"{url}/api/spaces", timeout=5).json()["spaces"]
    assert spaces and spaces[0]["state"] == "live"
    assert spaces[0]["stage"][0]["role"] == "host"
    playlist = f"{url}{spaces[0]['playlist_url']}"
    samples = record_live(ffmpeg, playlist, 10, tmp_path).astype(np.float32)
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
