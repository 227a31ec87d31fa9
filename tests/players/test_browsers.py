"""hls.js, Shaka Player and dash.js play the space's published URLs in headless Chromium.

Each player runs in a page of its own, served from another origin than the node's (pages.py:
another port of 127.0.0.1), so the node's CORS headers are what lets it play. It must start,
then play continuously for 20 s (the audio clock moving all along, no `waiting` event and no
buffer running dry by the player's own account), close to live by the player's own measure:

| player | URL | its latency measure | median under |
| --- | --- | --- | --- |
| hls.js (lowLatencyMode) | `playlist_url`, the multivariant playlist | `hls.latency` | 1.4 s |
| Shaka Player (lowLatencyMode) | the same | `getStats().liveLatency` | 2 s |
| dash.js | `/dash/{id}/manifest.mpd`, UTCTiming `/time` | `getCurrentLiveLatency()` | 1.2 s |

and every sample under 2 s. hls.js never plays faster with less than a second buffered, so its
latency stays where it started: PART-HOLD-BACK (0.64 s) plus the parts it took to start, which
on a busy machine is one more part (1.25 s seen at the 1.2 s bound) — the listener page steers
it closer itself (web/static/player.js). The players come from npm (package.json; `make install`
runs `npm ci`), never from a CDN: the test touches nothing but 127.0.0.1.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.harness.edges import run_relay
from tests.players.conftest import LiveSpace
from tests.players.pages import serve_pages
from tests.web.live import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

SETTLE = 2.0  # seconds of playing before the measurement: start-up is not playback
SECONDS = 20.0
EVERY = 0.5
MAX_LATENCY = 2.0


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    """The player pages' origin."""
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-deps` installs Debian's chromium")
    with serve_pages() as origin:
        yield origin


@dataclass
class Playing:
    """What a page's probe said every `EVERY` seconds of the measurement."""

    samples: list[dict] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)

    def latencies(self) -> list[float]:
        return [sample["latency"] for sample in self.samples]

    def wall_latencies(self) -> list[float]:
        return [sample["wallLatency"] for sample in self.samples]

    def advanced(self) -> float:
        return self.samples[-1]["currentTime"] - self.samples[0]["currentTime"]

    def steps(self) -> list[float]:
        times = [sample["currentTime"] for sample in self.samples]
        return [after - before for before, after in itertools.pairwise(times)]

    def stalls(self, kind: str) -> int:
        return self.samples[-1][kind] - self.samples[0][kind]


@pytest.mark.parametrize(
    ("player", "url", "bound"),
    [("hls.js", "playlist", 1.4), ("shaka", "playlist", 2.0), ("dash.js", "manifest", 1.2)],
)
def test_player_plays_close_to_live(
    space: LiveSpace, pages: str, player: str, url: str, bound: float
) -> None:
    plays_close_to_live(space, pages, player, getattr(space, url), space.time, bound)


def test_dash_js_plays_through_the_relay(space: LiveSpace, pages: str, tmp_path: Path) -> None:
    """dash.js with everything it fetches (manifest, init, segments, clock) from `causerie relay`
    in front of the node (docs/edges.md)."""
    with run_relay(space.node.url, tmp_path / "relay") as relay:
        manifest = relay.url + urlsplit(space.manifest).path
        plays_close_to_live(space, pages, "dash.js", manifest, f"{relay.url}/time", 1.2)


def plays_close_to_live(
    space: LiveSpace, pages: str, player: str, source: str, clock: str, bound: float
) -> None:
    """`player` in a page of `pages` plays `source` (its clock `clock`) for SECONDS without a
    stall, its own latency's median under `bound`."""
    from playwright.sync_api import sync_playwright

    assert urlsplit(pages).netloc != urlsplit(source).netloc  # cross-origin, for real
    requested: list[str] = []
    failed: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("pageerror", lambda error: failed.append(str(error)))
            page.on(
                "response",
                lambda response: response.status >= 400 and failed.append(response.url),
            )
            page.goto(f"{pages}/{player}.html?src={quote(source)}&time={quote(clock)}")
            page.wait_for_function("window.probe.started !== null", timeout=20_000)
            page.wait_for_timeout(SETTLE * 1000)
            playing = Playing()
            for _ in range(round(SECONDS / EVERY) + 1):
                playing.walls.append(time.monotonic())
                playing.samples.append(page.evaluate("window.probe.sample()"))
                page.wait_for_timeout(EVERY * 1000)
            failed = list(failed)  # closing the browser aborts the requests still waiting
        finally:
            browser.close()

    wall = playing.walls[-1] - playing.walls[0]
    latencies = playing.latencies()
    print(
        f"\n{player} on {source}: audio +{playing.advanced():.2f} s in {wall:.2f} s; "
        f"latency (its own) min {min(latencies):.2f} / median {statistics.median(latencies):.2f}"
        f" / max {max(latencies):.2f} s; wall clock median "
        f"{statistics.median(playing.wall_latencies()):.2f} s; waiting {playing.stalls('waiting')}"
        f", buffer empty {playing.stalls('bufferEmpty')}"
    )
    # What explains a stall or a late player on a busy machine: the node's media loop falling
    # behind, or more work than cores.
    stalls = (space.stalls(), f"load average {os.getloadavg()} on {os.cpu_count()} cores")
    assert not playing.samples[-1]["errors"], playing.samples[-1]["errors"]
    assert not failed, failed
    # Nothing but the node and the pages' origin: no public time server, no CDN.
    hosts = {urlsplit(url).netloc for url in requested if url.startswith("http")}
    assert hosts == {urlsplit(pages).netloc, urlsplit(source).netloc}, requested
    if player == "dash.js":
        assert clock in requested  # its clock is the node's

    assert all(step > 0 for step in playing.steps()), (playing.steps(), stalls)
    assert playing.advanced() > 0.9 * wall, (playing.advanced(), wall, stalls)
    assert playing.stalls("waiting") == 0, stalls
    assert playing.stalls("bufferEmpty") == 0, stalls
    assert statistics.median(latencies) < bound, (latencies, stalls)
    assert max(latencies) < MAX_LATENCY, (latencies, stalls)
