"""ffmpeg (the CLI) as an independent HLS client: record a live stream, get its samples."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urljoin

import httpx
import numpy as np

from tests.harness.polling import wait_until


def media_playlist(playlist: str) -> str:
    """The media playlist `playlist` is, or the first variant it names (RFC 8216bis §4.4.6.2)."""
    text = httpx.get(playlist, timeout=5).text
    if "#EXT-X-STREAM-INF" not in text:
        return playlist
    lines = text.splitlines()
    variant = next(
        lines[i + 1] for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF")
    )
    return urljoin(playlist, variant)


def record_live(ffmpeg: str, playlist: str, seconds: float, folder: Path) -> np.ndarray:
    """Record `seconds` of the live playlist and return it as mono 48 kHz int16 samples.

    ffmpeg plays LL-HLS as classic HLS (it ignores parts), so this first waits until two whole
    segments are listed. `playlist` may be the multivariant playlist players are given: ffmpeg
    then follows its variant, and the wait reads the media playlist it names.
    """
    media = media_playlist(playlist)
    wait_until(
        lambda: httpx.get(media, timeout=5).text.count("#EXTINF") >= 2, 15, "two segments", 0.2
    )
    recording = folder / "recording.m4a"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-y",
            "-i",
            playlist,
            "-t",
            str(seconds),
            "-c",
            "copy",
            str(recording),
        ],
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
        timeout=30,
    ).stdout
    return np.frombuffer(pcm, dtype=np.int16)
