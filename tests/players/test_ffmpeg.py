"""ffmpeg (the Debian CLI, 5.1) plays the space's `playlist_url`, the multivariant playlist.

ffmpeg plays LL-HLS as classic HLS: it ignores parts and reads whole segments (1.92 s) once
the playlist lists them, starting three segments from the end. So it is seconds behind live,
not one; what it must do is follow the stream without a hole and get each segment soon after
it is complete. (Its DASH demuxer cannot play the manifest: it numbers live segments from
MPD@availabilityStartTime and ignores Period@start, README "Players".)
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.hls_recording import media_playlist
from tests.players.conftest import LiveSpace, assert_speech, read_samples
from tests.players.timing import Delivered, gaps, latencies, summary

SECONDS = 12.0
SEGMENT = 1.92
# A segment reaches ffmpeg once it is complete and listed: its first frame is a segment old,
# plus however long ffmpeg waits before reloading the playlist (up to a target duration, 2 s).
MAX_DELIVERY = SEGMENT + 2.0 + 1.0


def test_ffmpeg_follows_the_multivariant_playlist(space: LiveSpace, ffmpeg: str, tmp_path: Path):
    # The variant the multivariant playlist names is the LL-HLS media playlist.
    assert media_playlist(space.playlist) == space.media_playlist
    samples_path = tmp_path / "samples.raw"
    # Two outputs of one decode: per-frame timestamps on stdout (framecrc: one line per
    # frame, flushed at once) and the samples in a file. -copyts keeps the node's timestamps.
    command = [
        ffmpeg, "-v", "error", "-nostdin", "-t", str(SECONDS), "-i", space.playlist,
        "-copyts", "-map", "0:a", "-f", "framecrc", "-flush_packets", "1", "-",
        "-map", "0:a", "-ac", "1", "-ar", "48000", "-f", "s16le", "-y", str(samples_path),
    ]  # fmt: skip
    frames: list[Delivered] = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            fields = line.decode().split(",")
            if line.startswith(b"#") or len(fields) < 6:
                continue
            # stream, dts, pts, duration, size, crc; times in 1/48000 s (the output's time base)
            pts, duration = int(fields[2]), int(fields[3])
            frames.append(Delivered(time.time(), pts / 48000, duration / 48000))
        errors = process.stderr.read().decode() if process.stderr else ""
        assert process.wait(timeout=30) == 0, errors
    finally:
        process.kill()
        process.wait()

    samples = read_samples(samples_path)
    assert abs(len(samples) / 48000 - SECONDS) < 0.1, len(samples)
    assert_speech(samples)
    holes = [gap for gap in gaps(frames) if abs(gap) > 0.001]
    assert not holes, holes
    # Once ffmpeg has read the backlog it started with, it gets each segment promptly.
    behind = latencies(frames, space.run_start())
    live = behind[len(behind) // 2 :]
    print(f"\nffmpeg on {space.playlist}: behind live when decoded (min / p50 / max)")
    print(f"  all frames {summary(behind)}; second half {summary(live)}")
    assert max(live) < MAX_DELIVERY, (summary(live), space.stalls())
