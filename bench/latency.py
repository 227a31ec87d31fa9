"""Latency of causerie's LL-HLS: at the origin, and glass-to-ear in headless Chromium.

a. Origin latency. One client follows the live playlist like hls.js (blocking reload for the next
   part, then GET the part) for ~30 s. For each part: (time its bytes were fully received) minus
   the wall time of its first sample and of its last sample, where a part's first sample is at
   its segment's EXT-X-PROGRAM-DATE-TIME + index x part duration.
b. Glass-to-ear. Headless Chromium opens the listener page forced onto hls.js
   (`?player=hls.js`; its default player, dash.js, is measured by bench.listener_cost), presses
   play, waits for playback, then samples every 500 ms for ~20 s: hls.js's `latency` and wall
   clock minus the PROGRAM-DATE-TIME of what is playing (`hls.playingDate`). Repeated on fresh
   pages.

    .venv/bin/python -m bench.latency [--origin-seconds 30] [--browser-seconds 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from tests.harness.causerie_process import CauserieProcess
from tests.harness.ports import HOST

from bench._common import (
    command_line,
    median,
    percentile,
    print_table,
    run_causerie,
    write_result,
)
from bench._hls import PartEvent, follow_live
from bench._http import Connection

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
]
TARGET_GLASS_TO_EAR = 1.0  # seconds, p50 (shared/TARGETS.md)

_PLAYING = """() => {
  const c = window.causerie;
  return !!(c && c.hls && c.hls.playingDate && !c.audio.paused && c.audio.currentTime > 0);
}"""
_SAMPLE = """() => {
  const c = window.causerie, h = c.hls, a = c.audio;
  return {
    latency: h.latency,
    glass_to_ear: (Date.now() - h.playingDate.getTime()) / 1000,
    target_latency: h.targetLatency,
    rate: a.playbackRate,
    buffered_ahead: a.buffered.length ? a.buffered.end(a.buffered.length - 1) - a.currentTime : 0,
  };
}"""


async def origin_latency(server: CauserieProcess, seconds: float) -> dict[str, Any]:
    """Follow the live edge for `seconds`; latency of every part fetched."""
    events: list[PartEvent] = []
    conn = Connection(HOST, server.port)
    errors = await follow_live(conn, server.playlist_path, time.time() + seconds, events.append)
    conn.close()
    first = [e.received - e.part.first_sample for e in events]
    last = [e.received - e.part.last_sample for e in events]
    ready = [e.listed - e.part.last_sample for e in events]
    return {
        "parts": len(events),
        "errors": errors,
        "received_minus_first_sample": _summary(first),
        "received_minus_last_sample": _summary(last),
        "listed_minus_last_sample": _summary(ready),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "n": len(values)}


async def browser_run(browser: Any, url: str, seconds: float) -> dict[str, Any]:
    """One fresh page: press play, wait for playback, sample every 500 ms for `seconds`."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_selector("#play:not([disabled])", timeout=15_000)
        clicked = time.monotonic()
        await page.click("#play")
        await page.wait_for_function(_PLAYING, timeout=20_000, polling=50)
        started = time.monotonic() - clicked
        samples: list[dict[str, float]] = []
        deadline = time.monotonic()
        end = deadline + seconds
        while deadline < end:
            samples.append(await page.evaluate(_SAMPLE))
            deadline += 0.5
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        await context.close()
    latency = [s["latency"] for s in samples if s["latency"] is not None]
    glass = [s["glass_to_ear"] for s in samples]
    return {
        "click_to_playing_s": started,
        "samples": len(samples),
        "hls_latency": _summary(latency),
        "glass_to_ear": _summary(glass),
        "target_latency_last": samples[-1]["target_latency"] if samples else None,
        "playback_rates_seen": sorted({round(s["rate"], 3) for s in samples}),
        "buffered_ahead_p50": median([s["buffered_ahead"] for s in samples]),
        "raw": [[round(s["latency"] or 0, 3), round(s["glass_to_ear"], 3)] for s in samples],
    }


async def browser_latency(
    server: CauserieProcess, runs: int, seconds: float
) -> list[dict[str, Any]]:
    """`runs` fresh pages, one after the other, in one headless Chromium."""
    from playwright.async_api import async_playwright

    # The page plays LL-DASH by default; this measures its LL-HLS player (hls.js).
    # bench.listener_cost measures the default player beside it.
    url = f"{server.url}/s/{server.space_id}?player=hls.js"
    results = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                results.append(await browser_run(browser, url, seconds))
        finally:
            await browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--origin-seconds", type=float, default=30.0)
    parser.add_argument("--browser-seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3, help="browser runs, a fresh page each")
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()

    with run_causerie() as server:
        origin = asyncio.run(origin_latency(server, args.origin_seconds))
        runs = (
            []
            if args.skip_browser
            else asyncio.run(browser_latency(server, args.runs, args.browser_seconds))
        )

    rows: list[list[object]] = []
    for key, label in (
        ("received_minus_first_sample", "origin: part received − its first sample"),
        ("received_minus_last_sample", "origin: part received − its last sample"),
        ("listed_minus_last_sample", "origin: blocking reload returned − last sample"),
    ):
        rows.append([label, origin[key]["p50"], origin[key]["p99"], origin[key]["n"]])
    for n, run in enumerate(runs, 1):
        rows.append([f"browser run {n}: hls.latency", *_cells(run["hls_latency"])])
        rows.append([f"browser run {n}: glass-to-ear", *_cells(run["glass_to_ear"])])
    print()
    print_table(["figure (seconds)", "p50", "p99", "n"], rows)

    result: dict[str, Any] = {"origin": origin, "browser_runs": runs}
    if runs:
        glass = median([r["glass_to_ear"]["p50"] for r in runs])
        hls_latency = median([r["hls_latency"]["p50"] for r in runs])
        verdict = "meets" if glass <= TARGET_GLASS_TO_EAR else "MISSES"
        result |= {
            "glass_to_ear_p50_median": glass,
            "hls_latency_p50_median": hls_latency,
            "click_to_playing_median_s": median([r["click_to_playing_s"] for r in runs]),
            "target_glass_to_ear_p50_s": TARGET_GLASS_TO_EAR,
            "meets_target": glass <= TARGET_GLASS_TO_EAR,
        }
        print(
            f"\nglass-to-ear p50, median of {len(runs)} runs: {glass:.3f} s "
            f"({verdict} the target ≤ {TARGET_GLASS_TO_EAR} s); hls.latency p50: "
            f"{hls_latency:.3f} s; click → playing: {result['click_to_playing_median_s']:.2f} s"
        )
    result["command"] = command_line("latency")
    path = write_result("latency", result)
    print(f"\nwrote {path.relative_to(path.parents[2])}")
    print(f"reproduce: {result['command']}")


def _cells(summary: dict[str, float]) -> list[object]:
    return [summary["p50"], summary["p99"], summary["n"]]


if __name__ == "__main__":
    main()
