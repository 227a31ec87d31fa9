"""A full space in a real browser: the listener page says where it stands in line, waits, and
plays once let in. A real node (in this test's event loop, with a short heartbeat so that a
listener who leaves is no longer counted within a second) and headless Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import account
from tests.harness.in_process import run_node
from tests.web.live import CHROMIUM, Watched, chromium, phone_page

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


async def test_waiting_message_then_playing(tmp_path) -> None:
    async with (
        run_node(tmp_path / "data", heartbeat_interval=0.5) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
    ):
        host = account(node.data_dir, user="u-host")
        space = (await http.post("/api/spaces", json={"title": "Tiny"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http.post(f"{base}/start", headers=host)).status_code == 200
        # Someone already listens and keeps listening: the space is full.
        first = (await http.post(f"{base}/join")).json()
        listening = asyncio.Event()
        listening.set()

        async def keep_listening() -> None:
            headers = {"Authorization": f"Bearer {first['token']}"}
            while listening.is_set():
                await http.post(f"{base}/heartbeat", headers=headers)
                await asyncio.sleep(0.2)

        beats = asyncio.create_task(keep_listening())
        watched = Watched()
        try:
            async with chromium() as browser:
                # The host sets the listener limit in the studio.
                studio = await phone_page(browser, watched)
                host_token = host["Authorization"].removeprefix("Bearer ")
                await studio.goto(f"{node.url}/studio/{space['id']}#token={host_token}")
                limit = studio.get_by_label("Listener limit", exact=True)
                await limit.fill("0")
                await studio.locator("#capacity-save").click()
                await studio.locator("#capacity-status").filter(has_text="whole number").wait_for()
                await limit.fill("1")
                await studio.locator("#capacity-save").click()
                await (
                    studio.locator("#capacity-status")
                    .filter(has_text="Limit saved: 1 listener.")
                    .wait_for()
                )
                assert (await http.get(base)).json()["capacity"] == 1
                await studio.close()

                page = await phone_page(browser, watched)
                await page.goto(f"{node.url}/s/{space['id']}")
                await page.locator("#play:enabled").click()
                status = page.locator("#status")
                await status.filter(
                    has_text=re.compile(r"You are number 1 in line — about \d+ s")
                ).wait_for(timeout=10_000)
                waiting = await page.evaluate("window.causerie.state.waiting")
                assert waiting["position"] == 1
                assert await page.evaluate("window.causerie.state.phase") == "joining"
                # Still full for a while: the page keeps waiting (and asks politely).
                await asyncio.sleep(2.5)
                assert await page.evaluate("window.causerie.state.phase") == "joining"
                tries = await page.evaluate("window.causerie.state.joinAttempts")
                assert 2 <= tries <= 12  # at most one visit every 0.5 s, at least one more

                listening.clear()  # the first listener leaves
                started = time.monotonic()
                await page.wait_for_function(
                    "window.causerie?.state.phase === 'playing' && window.causerie.player !== null"
                    " && !window.causerie.audio.paused && window.causerie.audio.currentTime > 0",
                    timeout=20_000,
                )
                print(f"\nlet in and playing {time.monotonic() - started:.1f} s after a leave")
                assert await page.evaluate("window.causerie.state.waiting") is None
                assert await page.evaluate("window.causerie.state.token") is not None
                before = await page.evaluate("window.causerie.audio.currentTime")
                await asyncio.sleep(1.5)
                assert await page.evaluate("window.causerie.audio.currentTime") > before + 0.5
        finally:
            listening.clear()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
        assert watched.page_errors == []
        assert watched.http_errors == []
