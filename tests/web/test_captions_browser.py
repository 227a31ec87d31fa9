"""Captions in the pages, in headless Chromium against a captioning node: the listener turns
captions on and reads the speaker's words while listening, each line shown once the audio
reaches it; after the end the replay shows the transcript, and a click plays from a line; the
home page's search box finds the space at the minute it was said."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from causerie.captions.wer import word_error_rate
from tests.captions.test_live_captions import captioning_node, live_space, ready
from tests.fixtures.rtc import publish
from tests.fixtures.speech import SENTENCES, SpeechTrack
from tests.harness.in_process import run_node
from tests.harness.polling import eventually
from tests.web.live import Watched, chromium, phone_page, start_listening

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_captions_live_then_the_transcript_and_search(tmp_path: Path) -> None:
    async with (
        await captioning_node(tmp_path / "data") as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as http,
        chromium() as browser,
    ):
        await ready(node)
        space_id, host = await live_space(http, node)
        watched = Watched()
        page = await phone_page(browser, watched)
        await page.goto(f"{node.url}/s/{space_id}")
        await page.locator("#captions-button").click()
        assert await page.locator("#captions-button").get_attribute("aria-pressed") == "true"
        await start_listening(page)
        # Every line the page shows, with the player's position when it was shown.
        await page.evaluate(
            """() => {
              window.shownLines = [];
              const lines = document.getElementById('caption-lines');
              new MutationObserver(() => {
                for (const p of lines.querySelectorAll('p')) {
                  if (!window.shownLines.some((s) => s.text === p.textContent)) {
                    window.shownLines.push({
                      text: p.textContent,
                      playing: window.causerie.player?.playingAt() ?? null,
                      queued: window.causerie.captions.queue.find(
                        (l) => l.text === p.textContent)?.start ?? null,
                    });
                  }
                }
              }).observe(lines, {childList: true, subtree: true});
            }"""
        )
        track = SpeechTrack()
        session = await publish(http, space_id, host["Authorization"].split()[1], track)
        try:
            await session.wait_connected()
            await page.wait_for_function(
                f"window.shownLines.length >= {len(SENTENCES)}", timeout=45_000
            )
        finally:
            await session.close()
        shown = await page.evaluate("window.shownLines")
        heard = " ".join(line["text"] for line in shown)
        assert word_error_rate(" ".join(SENTENCES), heard) < 0.15, heard
        for line in shown:
            # In step with the audio: never before the listener hears the line's start.
            assert line["playing"] is not None and line["queued"] is not None, line
            assert line["playing"] >= line["queued"] - 250, line

        assert (await http.post(f"/api/spaces/{space_id}/end", headers=host)).status_code == 200
        await page.locator("#transcript-lines li").nth(len(SENTENCES) - 1).wait_for(timeout=30_000)
        texts = await page.locator("#transcript-lines li").all_inner_texts()
        assert "border" in texts[0].lower()
        cues = (await http.get(f"/replay/{space_id}/transcript.json")).json()["cues"]
        await page.locator("#transcript-lines li button").nth(1).click()
        await page.wait_for_function(
            f"() => {{ const a = document.getElementById('replay-audio');"
            f" return !a.paused && a.currentTime >= {cues[1]['start']}"
            f" && a.currentTime < {cues[1]['start'] + 3}; }}",
            timeout=20_000,
        )
        await page.wait_for_function(
            "document.querySelector('#transcript-lines .is-current')?.dataset.index === '1'"
        )
        assert await page.locator("#transcript-vtt").get_attribute("href") == (
            f"/replay/{space_id}/transcript.vtt"
        )

        home = await phone_page(browser, watched)
        await home.goto(node.url)

        async def found() -> bool:
            await home.fill("#search-input", "farmers delays")
            await home.locator("#search button").click()
            await home.wait_for_function(
                "window.causerie.search !== null || "
                "document.getElementById('search-status').textContent"
                " !== 'Searching…'"
            )
            return await home.locator("#search-results a.title").count() == 1

        await eventually(found, 20, "the search finding the space", every=0.5)
        href = await home.locator("#search-results a.hit").first.get_attribute("href")
        assert href == f"/s/{space_id}?t={int(cues[1]['start'])}"
        assert watched.page_errors == [], watched.page_errors


async def test_the_host_switches_captions_in_the_studio(tmp_path: Path) -> None:
    async with (
        run_node(
            tmp_path / "data", captions_model=str(tmp_path / "no-model"), captions_max=1
        ) as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as http,
        chromium() as browser,
    ):
        space_id, host = await live_space(http, node)
        watched = Watched()
        studio = await phone_page(browser, watched)
        token = host["Authorization"].split()[1]
        await studio.goto(f"{node.url}/studio/{space_id}#token={token}")
        switch = studio.locator("#captions-switch")
        await switch.wait_for()
        assert await switch.is_checked()
        # This node has no model: the host is told why, beside the switch.
        await studio.wait_for_function(
            "document.getElementById('captions-status').textContent.includes('does not exist')"
        )
        await switch.click()

        async def off() -> bool:
            return (await http.get(f"/api/spaces/{space_id}")).json()["captions"] is False

        await eventually(off, 10, "captions off")
        await studio.wait_for_function(
            "document.getElementById('captions-status').textContent === 'Captions off.'"
        )
        assert not await switch.is_checked()
        assert watched.page_errors == [], watched.page_errors
