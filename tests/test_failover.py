"""Owner failover: kill -9 the node that runs a space's media; another node takes it over.

Two real `causerie serve --redis` processes, a real nginx edge in front of both, and ffmpeg
listening through the edge (decoding to raw PCM as it goes). The owner is killed with SIGKILL:
its lease expires (5 s), the other node claims the space at its next tick and starts a new run;
the edge's requests for the space reach the surviving node, which holds them until it runs the
space, and ffmpeg keeps receiving audio. The gap is measured and printed (docs/failover.md).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from causerie.media.broadcasts import SEGMENT_SECONDS
from tests.conftest import account
from tests.edge.conftest import require
from tests.edge.servers import run_edge
from tests.harness.causerie_process import causerie_process
from tests.harness.polling import wait_until
from tests.harness.processes import stop

SAMPLE_RATE = 48000


class PcmListener:
    """ffmpeg following a live playlist, decoding to mono 48 kHz s16 PCM on a pipe; remembers
    when each chunk arrived."""

    def __init__(self, ffmpeg: str, playlist: str) -> None:
        self.process = subprocess.Popen(
            [ffmpeg, "-v", "error", "-i", playlist, "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.arrivals: list[tuple[float, int]] = []  # (monotonic time, total samples so far)
        self._samples = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(65536):
            self._samples += len(chunk) // 2
            self.arrivals.append((time.monotonic(), self._samples))

    @property
    def seconds(self) -> float:
        return self._samples / SAMPLE_RATE

    def seconds_since(self, when: float) -> float:
        before = [total for t, total in self.arrivals if t <= when]
        return (self._samples - (before[-1] if before else 0)) / SAMPLE_RATE

    def longest_stall_after(self, when: float) -> float:
        times = [when] + [t for t, _ in self.arrivals if t > when]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def stop(self) -> str:
        stop(self.process, timeout=5)
        self._reader.join(timeout=5)
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")


def live_here(url: str) -> int:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/healthz", timeout=2).json()["live"]
    return -1


def media_sequence(playlist: str) -> int:
    return int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist)[1])


@pytest.mark.slow
def test_the_owner_dies_another_node_takes_over_and_listeners_keep_hearing(
    tmp_path: Path, redis_url: str, ffmpeg: str
) -> None:
    require("nginx")
    serve = ("serve", "--redis", redis_url, "--log-level", "warning")
    with (
        causerie_process(tmp_path / "one", *serve) as node_one,
        causerie_process(tmp_path / "two", *serve) as node_two,
        run_edge("nginx", [node_one.url, node_two.url], tmp_path / "edge") as edge,
    ):
        one, two = node_one.url, node_two.url
        host = account(node_one.data_dir, user="u-host")
        space = httpx.post(f"{one}/api/spaces", json={"title": "Failover"}, headers=host).json()
        started = httpx.post(f"{one}/api/spaces/{space['id']}/start", headers=host)
        assert started.status_code == 200
        assert (live_here(one), live_here(two)) == (1, 0)  # node one owns it

        playlist = space["media_playlist_url"]
        wait_until(
            lambda: httpx.get(edge.url + playlist, timeout=10).text.count("#EXTINF") >= 2,
            15,
            "two segments",
        )
        listener = PcmListener(ffmpeg, edge.url + playlist)
        try:
            wait_until(lambda: listener.seconds >= 6, 20, "ffmpeg heard the first run")
            time.sleep(1.0)  # past ffmpeg's start-up burst: now it receives at real time
            old_playlist = httpx.get(two + playlist, timeout=10).text
            old_last = media_sequence(old_playlist) + old_playlist.count("#EXTINF") - 1

            node_one.kill9()  # no lease released, no ENDLIST
            killed = time.monotonic()
            takeover = wait_until(lambda: live_here(two) == 1, 10, "node two took the space over")
            new_playlist = httpx.get(two + playlist, timeout=10).text
            assert "#EXT-X-ENDLIST" not in new_playlist
            assert re.search(r"#EXT-X-DISCONTINUITY-SEQUENCE:1\b", new_playlist)
            new_first = media_sequence(new_playlist)
            assert new_first > old_last  # wall-clock numbering keeps increasing

            # The listener goes on: the edge's requests reach node two, which serves the new run.
            wait_until(lambda: listener.seconds_since(killed) >= 8, 25, "ffmpeg hears the new run")
            received = listener.seconds_since(killed)
            wall = time.monotonic() - killed
            stall = listener.longest_stall_after(killed)
            assert listener.process.poll() is None, "ffmpeg gave up"
        finally:
            errors = listener.stop()
        skipped = new_first - old_last - 1
        print(
            f"\nfailover: node two owned the space {takeover:.1f} s after the kill; "
            f"the listener's longest stall: {stall:.1f} s; it received {received:.1f} s of audio "
            f"in the {wall:.1f} s after the kill (about {wall - received:.1f} s lost); "
            f"segments never made: {skipped} ({skipped * SEGMENT_SECONDS:.1f} s, "
            f"counted from the last one listed before the kill)"
        )
        assert takeover < 8.0
        assert stall < 10.0, errors
