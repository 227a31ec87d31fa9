"""One `causerie demo` node for the player tests, and what a player is told to play.

The node runs as a process of its own on 127.0.0.1, shared by every test of the package: each
player joins the same live demo space, one after the other.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.harness.causerie_process import CauserieProcess, causerie_process
from tests.harness.polling import wait_until

MPD = "{urn:mpeg:dash:schema:mpd:2011}"


@dataclass(frozen=True)
class LiveSpace:
    """The demo space's published URLs, absolute, and the node that serves them."""

    node: CauserieProcess
    playlist: str
    """`playlist_url`: the multivariant playlist (`/hls/{id}/main.m3u8`)."""
    media_playlist: str
    """`media_playlist_url`: the LL-HLS media playlist it names."""
    manifest: str
    """The LL-DASH manifest (`/dash/{id}/manifest.mpd`)."""
    time: str
    """The node's clock (`/time`), the manifest's UTCTiming source."""

    def run_start(self) -> float:
        """Wall time (Unix seconds) of the run's first sample: the manifest's Period@start.

        Media timestamps (the fMP4 decode time) count samples from there, so a player's
        latency is its wall clock minus (this + the media time it is playing).
        """
        period = ET.fromstring(httpx.get(self.manifest, timeout=5).text).find(f"{MPD}Period")
        assert period is not None
        # An xs:duration the node always writes in seconds (media/dash.py format_duration).
        seconds = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", period.attrib["start"])
        assert seconds is not None, period.attrib["start"]
        return float(seconds[1])

    def stalls(self) -> list[str]:
        """The node's own complaints that its media loop fell behind (an overloaded machine):
        a player's stall at the same time is the node's, not the player's."""
        return re.findall(r".*media loop .* late.*", self.node.log.read_text(errors="replace"))


@pytest.fixture(scope="package")
def space(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSpace]:
    """`causerie demo` with its space live for three segments (~6 s).

    As a listener finds a space that has been live a while: players that ignore LL-HLS parts
    start three segments from the end (RFC 8216bis §6.3.3); GStreamer 1.22 refuses a playlist
    without a whole segment, and a manifest whose Period began less than ~2 s ago.
    """
    folder = tmp_path_factory.mktemp("node")
    with causerie_process(folder, "demo", "--log-level", "warning", parts=1) as node:
        media = node.url + node.playlist_path
        wait_until(
            lambda: httpx.get(media, timeout=5).text.count("#EXTINF") >= 3,
            30,
            "three segments",
            0.2,
        )
        details = httpx.get(f"{node.url}/api/spaces/{node.space_id}", timeout=5).json()
        yield LiveSpace(
            node=node,
            playlist=node.url + details["playlist_url"],
            media_playlist=node.url + details["media_playlist_url"],
            manifest=f"{node.url}/dash/{node.space_id}/manifest.mpd",
            time=f"{node.url}/time",
        )


def assert_speech(samples: np.ndarray) -> None:
    """The demo's two voices, not silence or noise: loud enough overall, and the loudness comes
    and goes (words and pauses) over 20 ms frames."""
    audio = samples.astype(np.float32)
    frames = audio[: len(audio) // 960 * 960].reshape(-1, 960)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    assert np.sqrt(np.mean(audio**2)) > 300, "too quiet for the demo's voices"
    assert np.percentile(rms, 90) > 4 * max(np.percentile(rms, 10), 1.0), "no words and pauses"


def read_samples(path: Path) -> np.ndarray:
    """Mono 48 kHz S16LE samples written by a player."""
    return np.frombuffer(path.read_bytes(), dtype="<i2")
