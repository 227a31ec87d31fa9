"""What one listener costs, all included: the project's own listener page in headless Chromium.

A `causerie demo` node; a fresh Chromium page opens the demo space's page (`/s/{space}`),
presses play and, once sound plays, listens for `--seconds` (60). Every request the page makes
and every byte it receives are counted from the browser's own network log (the DevTools
protocol: response headers as received, then each piece of body as it arrives, chunked
transfer framing included), split by kind:

    segments   media: LL-DASH segments and init sections, LL-HLS parts/segments and init
    manifests  the MPD, HLS playlists, the node's clock (/time)
    events     the feed windows (/feed/…) and, for pages that still use it, SSE
    presence   joins and heartbeats
    page       the page, its scripts and styles, the space's details, settings, questions

"steady" is what the page made in the `--seconds` after sound began (no one-off page load);
"visit" is everything from opening the page to the end, over that whole time. Bytes are the
responses' (headers and bodies) received in the steady window, divided by what the audio
itself is (64 kbit/s over the same time).

Glass-to-ear, every 250 ms while listening: the wall clock minus the wall time at which what
is playing now was live (`player.playingAt()` in the page). For dash.js that is
`timeAsUTC()`: the MPD's availabilityStartTime is the Unix epoch and each run's Period starts at
the wall time of its first sample, so the presentation time of the audio playing is the Unix
time at which it was captured (give or take the mixer's 20 ms frame). For hls.js it is the
EXT-X-PROGRAM-DATE-TIME of the fragment playing plus the position in it (`hls.playingDate`).
The browser, the node and this script share one clock (one machine). Audio output latency of
a real device is not included (headless Chromium has none).

The default player (what the page picks: dash.js in Chromium) and the same page forced onto
hls.js (`?player=hls.js`, the reference: LL-HLS) are measured in turn, `--runs` times each
(fresh pages), and the medians reported.

    .venv/bin/python -m bench.listener_cost [--seconds 60] [--runs 3] [--players default,hls.js]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench._common import (
    command_line,
    load_average,
    median,
    percentile,
    print_table,
    run_causerie,
    write_result,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
]
BIT_RATE = 64_000  # the encoder's AAC bit rate (media/encoder.py), bits per second
KINDS = ("segments", "manifests", "events", "presence", "page")
TARGETS = {
    "requests_per_s": 0.6,  # aim 0.33
    "bytes_ratio": 1.25,
    "glass_to_ear_p50": 1.0,
    "glass_to_ear_p99": 1.5,
}

_PLAYING = """() => {
  const c = window.causerie;
  return !!(c && c.player && c.player.playingAt() !== null && !c.audio.paused
    && c.audio.currentTime > 0);
}"""
_SAMPLE = """() => {
  const c = window.causerie, p = c.player, a = c.audio;
  const at = p ? p.playingAt() : null;
  return {
    glass_to_ear: at === null ? null : (Date.now() - at) / 1000,
    latency: p ? p.latency() : null,
    rate: a.playbackRate,
    waiting: window.__waiting || 0,
    player: document.getElementById("player").dataset.player || null,
  };
}"""
_COUNT_WAITING = """() => {
  window.__waiting = 0;
  window.causerie.audio.addEventListener("waiting", () => { window.__waiting += 1; });
}"""


def kind_of(path: str) -> str:
    """Which kind of request a path is (see the module's docstring)."""
    if re.search(r"\.(m4s|mp4)$", path) and path.startswith(("/dash/", "/hls/")):
        return "segments"
    if path.endswith((".mpd", ".m3u8")) or path == "/time":
        return "manifests"
    if path.startswith("/feed/") or re.search(r"^/api/spaces/[^/]+/events$", path):
        return "events"
    if re.search(r"^/api/spaces/[^/]+/(join|heartbeat)$", path):
        return "presence"
    return "page"


@dataclass
class Request:
    path: str
    kind: str
    sent: float  # time.monotonic() when the browser sent it
    received: list[tuple[float, int]] = field(default_factory=list)  # (when, bytes on the wire)


@dataclass
class NetworkLog:
    """Every request of one page and the bytes of its responses as they arrived."""

    requests: dict[str, Request] = field(default_factory=dict)

    def attach(self, cdp: Any) -> None:
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._headers)
        cdp.on("Network.dataReceived", self._data)

    def _sent(self, event: dict[str, Any]) -> None:
        if event.get("redirectResponse"):
            return  # the same request id goes on
        url = event["request"]["url"]
        if not url.startswith("http"):
            return  # data: and blob: URLs never reach the network
        path = urlsplit(url).path
        self.requests[event["requestId"]] = Request(path, kind_of(path), time.monotonic())

    def _headers(self, event: dict[str, Any]) -> None:
        request = self.requests.get(event["requestId"])
        # At this point, the response's encodedDataLength is its status line and headers.
        size = int(event["response"].get("encodedDataLength") or 0)
        if request is not None and size > 0:
            request.received.append((time.monotonic(), size))

    def _data(self, event: dict[str, Any]) -> None:
        # The body as it arrives, with the transfer's framing (chunk sizes); Chromium sometimes
        # reports a piece's wire bytes with the next one (then 0 here): the sum is exact.
        request = self.requests.get(event["requestId"])
        size = int(event.get("encodedDataLength") or 0)
        if request is not None and size > 0:
            request.received.append((time.monotonic(), size))

    def between(self, start: float, end: float) -> tuple[Counter[str], Counter[str]]:
        """Requests sent and bytes received in [start, end), by kind."""
        requests: Counter[str] = Counter()
        received: Counter[str] = Counter()
        for request in self.requests.values():
            if start <= request.sent < end:
                requests[request.kind] += 1
            received[request.kind] += sum(n for at, n in request.received if start <= at < end)
        return requests, received


async def one_run(browser: Any, url: str, seconds: float) -> dict[str, Any]:
    """A fresh page: open, play, listen for `seconds`; what it cost."""
    context = await browser.new_context()
    log = NetworkLog()
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        log.attach(cdp)
        await cdp.send("Network.enable")
        opened = time.monotonic()
        await page.goto(url)
        await page.wait_for_selector("#play:not([disabled])", timeout=15_000)
        clicked = time.monotonic()
        await page.click("#play")
        await page.wait_for_function(_PLAYING, timeout=30_000, polling=50)
        playing = time.monotonic()
        await page.evaluate(_COUNT_WAITING)
        samples: list[dict[str, Any]] = []
        tick = playing
        while tick < playing + seconds:
            samples.append(await page.evaluate(_SAMPLE))
            tick += 0.25
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
        ended = time.monotonic()
    finally:
        await context.close()
    steady_requests, steady_bytes = log.between(playing, ended)
    visit_requests, _ = log.between(opened, ended)
    steady_seconds = ended - playing
    glass = [s["glass_to_ear"] for s in samples if s["glass_to_ear"] is not None]
    audio_bytes = BIT_RATE / 8 * steady_seconds
    return {
        "player": samples[-1]["player"] if samples else None,
        "click_to_playing_s": playing - clicked,
        "steady_seconds": steady_seconds,
        "visit_seconds": ended - opened,
        "requests_per_s": sum(steady_requests.values()) / steady_seconds,
        "requests_per_s_by_kind": {k: steady_requests[k] / steady_seconds for k in KINDS},
        "visit_requests_per_s": sum(visit_requests.values()) / (ended - opened),
        "visit_requests": dict(visit_requests),
        "bytes_ratio": sum(steady_bytes.values()) / audio_bytes,
        "bytes_ratio_by_kind": {k: steady_bytes[k] / audio_bytes for k in KINDS},
        "glass_to_ear_p50": percentile(glass, 50),
        "glass_to_ear_p99": percentile(glass, 99),
        "glass_to_ear_max": max(glass, default=float("nan")),
        "stalls": samples[-1]["waiting"] if samples else None,
        "stalled_at_s": [
            round(i * 0.25, 2)
            for i in range(1, len(samples))
            if samples[i]["waiting"] > samples[i - 1]["waiting"]
        ],
        "samples": len(samples),
    }


async def measure(
    url: str, players: list[str], runs: int, seconds: float
) -> dict[str, list[dict[str, Any]]]:
    """`runs` fresh pages per player, taking turns, in one headless Chromium."""
    from playwright.async_api import async_playwright

    results: dict[str, list[dict[str, Any]]] = {player: [] for player in players}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for n in range(runs):
                for player in players:
                    query = "" if player == "default" else f"?player={player}"
                    run = await one_run(browser, url + query, seconds)
                    print(
                        f"run {n + 1}/{runs} {player} ({run['player']}): "
                        f"{run['requests_per_s']:.3f} requests/s, "
                        f"{run['bytes_ratio']:.2f}x the bit rate, glass-to-ear p50 "
                        f"{run['glass_to_ear_p50']:.2f} s p99 {run['glass_to_ear_p99']:.2f} s",
                        flush=True,
                    )
                    results[player].append(run)
        finally:
            await browser.close()
    return results


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the runs."""

    def of(key: str, kind: str | None = None) -> float:
        return median([r[key][kind] if kind else r[key] for r in runs])

    return {
        "player": runs[0]["player"],
        "requests_per_s": of("requests_per_s"),
        "requests_per_s_by_kind": {k: of("requests_per_s_by_kind", k) for k in KINDS},
        "visit_requests_per_s": of("visit_requests_per_s"),
        "bytes_ratio": of("bytes_ratio"),
        "bytes_ratio_by_kind": {k: of("bytes_ratio_by_kind", k) for k in KINDS},
        "glass_to_ear_p50": of("glass_to_ear_p50"),
        "glass_to_ear_p99": of("glass_to_ear_p99"),
        "stalls": of("stalls"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="listening, once playing")
    parser.add_argument("--runs", type=int, default=3, help="fresh pages per player")
    parser.add_argument(
        "--players",
        default="default,hls.js",
        help="comma-separated: default (the page's choice), dash.js, hls.js",
    )
    args = parser.parse_args()
    players = [p.strip() for p in args.players.split(",") if p.strip()]
    load_before = load_average()
    with run_causerie() as server:
        url = f"{server.url}/s/{server.space_id}"
        results = asyncio.run(measure(url, players, args.runs, args.seconds))
    summaries = {player: summarize(runs) for player, runs in results.items()}

    print(f"\nWhat one listener costs, medians of {args.runs} runs of {args.seconds:.0f} s:")
    rows = []
    for player, s in summaries.items():
        name = f"{player} ({s['player']})" if player == "default" else player
        rows.append(
            [
                name,
                s["requests_per_s"],
                s["visit_requests_per_s"],
                s["bytes_ratio"],
                s["glass_to_ear_p50"],
                s["glass_to_ear_p99"],
                s["stalls"],
            ]
        )
    print_table(
        [
            "player",
            "requests/s",
            "visit req/s",
            "bytes/bit rate",
            "g2e p50 s",
            "g2e p99 s",
            "stalls",
        ],
        rows,
    )
    print("\nSteady requests/s by kind:")
    print_table(
        ["player", *KINDS],
        [[p, *(s["requests_per_s_by_kind"][k] for k in KINDS)] for p, s in summaries.items()],
    )
    print("\nBytes on the wire / audio bit rate, by kind:")
    print_table(
        ["player", *KINDS],
        [[p, *(s["bytes_ratio_by_kind"][k] for k in KINDS)] for p, s in summaries.items()],
    )
    print(
        "\nTargets (the default player): requests/s <= 0.6 (aim 0.33), bytes <= 1.25x the bit "
        "rate, glass-to-ear p50 <= 1.0 s, p99 <= 1.5 s."
    )
    path = write_result(
        "listener_cost",
        {
            "seconds": args.seconds,
            "runs": args.runs,
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "targets": TARGETS,
            "summaries": summaries,
            "runs_detail": results,
        },
    )
    print(f"\n{command_line('listener_cost')}\n(details: {path})")


if __name__ == "__main__":
    main()
