"""GStreamer (Debian's 1.22 packages) plays the multivariant playlist and the DASH manifest.

An application plays a URL with `uridecodebin3` (or `playbin3`): souphttpsrc, then hlsdemux2
or dashdemux2 (gst-plugins-good's adaptivedemux2). The script (gst_record.py) runs with
Debian's Python and PyGObject and renders in real time into a file; the test checks that what
it played is the space's audio, without a hole, at a steady distance from live.

What 1.22 cannot do (README "Players"): LL-HLS parts and chunked DASH segments are unknown to
its adaptivedemux2, so it plays from whole segments, several seconds behind live; and the
classic `uridecodebin`/`playbin` (decodebin2) cannot host hlsdemux2 and falls back to the old
hlsdemux, which never plays live fMP4 (it waits for the media timestamps to come round).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from tests.players.conftest import LiveSpace, assert_speech, read_samples
from tests.players.timing import Delivered, gaps, latencies, summary

PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi: the venv has no PyGObject
SCRIPT = Path(__file__).with_name("gst_record.py")
SECONDS = 8.0


def gstreamer_ready() -> None:
    """Fail with what to install when Debian's GStreamer is missing."""
    probe = subprocess.run(
        [
            PYTHON,
            "-c",
            "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst; "
            "Gst.init(None); import sys; sys.exit(any(Gst.ElementFactory.find(e) is None "
            "for e in ('uridecodebin3', 'souphttpsrc', 'hlsdemux2', 'dashdemux2', 'faad')))",
        ],
        capture_output=True,
        timeout=30,
    )
    if shutil.which(PYTHON) is None or probe.returncode != 0:
        pytest.fail(
            "GStreamer is missing: `make test-deps` installs python3-gi, gstreamer1.0-plugins-"
            f"good and -bad (Debian packages). {probe.stderr.decode()[-500:]}"
        )


@pytest.mark.parametrize("url", ["playlist", "manifest"])
def test_gstreamer_plays_in_real_time(space: LiveSpace, url: str, tmp_path: Path) -> None:
    gstreamer_ready()
    uri = getattr(space, url)
    samples_path, times_path = tmp_path / "samples.raw", tmp_path / "times.txt"
    played = subprocess.run(
        [PYTHON, str(SCRIPT), uri, str(SECONDS), str(samples_path), str(times_path)],
        capture_output=True,
        timeout=SECONDS + 60,
    )
    assert played.returncode == 0, (played.stderr.decode()[-2000:], space.stalls())

    samples = read_samples(samples_path)
    assert abs(len(samples) / 48000 - SECONDS) < 0.1, len(samples)
    assert_speech(samples)
    buffers = [
        Delivered(float(wall), float(media), float(duration))
        for wall, media, duration in (line.split() for line in times_path.read_text().splitlines())
    ]
    holes = [gap for gap in gaps(buffers) if abs(gap) > 0.001]
    assert not holes, holes
    # Rendered against the clock, which GStreamer never catches up with: a stall would leave
    # every later buffer further behind (a busy machine may make one buffer late, not all).
    behind = latencies(buffers, space.run_start())
    print(f"\nGStreamer uridecodebin3 on {uri}: behind live (min / p50 / max) {summary(behind)}")
    drift = statistics.median(behind[-10:]) - statistics.median(behind[:10])
    assert abs(drift) < 0.1, (drift, summary(behind), space.stalls())
