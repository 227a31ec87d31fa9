"""Helpers for driving the listener page against a real `causerie demo` in headless Chromium.

Shared by tests/web/test_listener_live.py and the screenshot script (tests/web/screenshot.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.harness.polling import eventually

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DEMO_HOST = "demo-host"  # the host id of the demo space (causerie.node.demo)


async def demo_space(url: str, timeout: float = 30) -> dict[str, Any]:
    """The live demo space's details, once `causerie demo` has put it on the air."""
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:

        async def on_the_air() -> bool:
            spaces = (await http.get("/api/spaces")).json()["spaces"]
            found[:] = [s for s in spaces if s["host"]["id"] == DEMO_HOST and s["state"] == "live"]
            return bool(found)

        await eventually(on_the_air, timeout, "a live demo space", every=0.2)
    return found[0]


@dataclass
class Watched:
    """What a page said that it should not have: JavaScript errors, console errors, HTTP errors.

    And what it asked for (`requests`: "GET /api/spaces/x", without the host), to check how.
    """

    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def watch(self, page) -> None:
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on(
            "request",
            lambda request: self.requests.append(f"{request.method} {urlsplit(request.url).path}"),
        )
        page.on(
            "console",
            lambda message: (
                message.type == "error"
                and self.console_errors.append(f"{message.text} ({message.location.get('url')})")
            ),
        )
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and self.http_errors.append(
                    f"{response.status} {response.request.method} {response.url}"
                )
            ),
        )

        async def on_dialog(dialog) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Headless Chromium (the Debian one: tests never download browsers)."""
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing (Debian package chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def phone_page(browser, watched: Watched | None = None):
    """A new phone-sized page in its own context (its own sessionStorage)."""
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    if watched is not None:
        watched.watch(page)
    return page


async def start_listening(page, timeout: float = 20) -> None:
    """Press play on a loaded space page and wait until sound really plays."""
    await page.locator("#play:enabled").click()
    await page.wait_for_function(
        "window.causerie?.state.phase === 'playing' && window.causerie.player !== null"
        " && !window.causerie.audio.paused && window.causerie.audio.currentTime > 0",
        timeout=timeout * 1000,
    )


async def player_of(page) -> str | None:
    """The player the listener page chose ("dash.js", "hls.js", "native"): its data-player."""
    return await page.locator("#player").get_attribute("data-player")


COUNT_EVENT_SOURCES_JS = """
window.__eventSources = 0;
if (window.EventSource) {
    const Original = window.EventSource;
    window.EventSource = class extends Original {
        constructor(...args) {
            super(...args);
            window.__eventSources += 1;
        }
    };
}
"""
"""An init script: `window.__eventSources` counts the EventSource streams the page opens."""

SAMPLE_JS = """() => {
    const audio = window.causerie.audio;
    const player = window.causerie.player;
    const at = player ? player.playingAt() : null;
    return {
        currentTime: audio.currentTime,
        latency: player ? player.latency() : null,
        glassToEar: at === null ? null : (Date.now() - at) / 1000,
        paused: audio.paused,
        playbackRate: audio.playbackRate,
        waiting: window.__waiting || 0,
    };
}"""

COUNT_WAITING_JS = """() => {
    window.__waiting = 0;
    window.causerie.audio.addEventListener("waiting", () => { window.__waiting += 1; });
}"""


@dataclass
class Playback:
    """What playing looked like over a stretch of wall time."""

    wall: float  # seconds of wall time measured
    advanced: float  # seconds the audio clock moved in that time
    latencies: list[float]  # the player's latency, sampled every `every` seconds
    glass_to_ear: list[float]  # wall clock − when what plays was live, sampled alike
    stalls: int  # 'waiting' events during the measurement


async def measure_playback(
    page, settle: float = 2.0, seconds: float = 6.0, every: float = 0.5
) -> Playback:
    """Let playback settle, then sample the player's latency every `every` s for `seconds` s."""
    await page.evaluate(COUNT_WAITING_JS)
    await asyncio.sleep(settle)
    first = await page.evaluate(SAMPLE_JS)
    started = time.monotonic()
    latencies, glass_to_ear = [], []
    for _ in range(round(seconds / every)):
        await asyncio.sleep(every)
        sample = await page.evaluate(SAMPLE_JS)
        latencies.append(sample["latency"])
        glass_to_ear.append(sample["glassToEar"])
    wall = time.monotonic() - started
    return Playback(
        wall=wall,
        advanced=sample["currentTime"] - first["currentTime"],
        latencies=latencies,
        glass_to_ear=glass_to_ear,
        stalls=sample["waiting"] - first["waiting"],
    )
