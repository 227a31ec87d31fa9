"""The space page against the real thing: `causerie demo` in its own process, headless Chromium.

Where test_pages.py checks the page's behaviour piece by piece against an in-process node, this
checks it against `causerie demo` as shipped, in a process of its own: the page picks dash.js
(LL-DASH) in Chromium and plays close to live, follows the space through the feed windows (no
event stream of its own) at well under a request a second for everything; a page forced onto
hls.js still plays; the host card starts and ends a space.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.web.live import (
    CHROMIUM,
    COUNT_EVENT_SOURCES_JS,
    DEMO_HOST,
    Watched,
    chromium,
    demo_space,
    measure_playback,
    phone_page,
    player_of,
    start_listening,
)

pytestmark = pytest.mark.browser

MAX_LATENCY = 2.0  # seconds behind the live edge, at most, once settled
STEADY_SECONDS = 16.0  # how long requests are counted, once playing (a window and a heartbeat)
MOST_REQUESTS_PER_SECOND = 0.7  # everything included; ~0.41 expected (docs/listener-page.md)


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


async def test_demo_plays_with_dash_js_and_follows_the_feed(server_process) -> None:
    url, data_dir = server_process
    space = await demo_space(url)
    base = f"/api/spaces/{space['id']}"
    watched = Watched()
    async with chromium() as browser:
        page = await phone_page(browser, watched)
        await page.add_init_script(COUNT_EVENT_SOURCES_JS)
        await page.goto(f"{url}/s/{space['id']}")
        await page.locator("#badge").filter(has_text="Live").wait_for()
        # Everyone sees who is on stage: the demo's host and guest.
        names = await page.locator("#stage-list .person-name").all_text_contents()
        roles = await page.locator("#stage-list .person-role").all_text_contents()
        assert names == [person["name"] for person in space["stage"]]
        assert roles[0] == "Host" and set(roles[1:]) <= {"Co-host", "Speaker"}
        assert await page.locator("#host-controls").is_hidden()  # no host link, no host card
        assert await player_of(page) == "dash.js"  # Chromium has Media Source Extensions

        await start_listening(page)
        assert await player_of(page) == "dash.js"
        assert await page.evaluate("window.causerie.dash !== null && window.causerie.hls === null")
        steady_from = len(watched.requests)
        started = time.monotonic()
        playback = await measure_playback(page, settle=2.0, seconds=STEADY_SECONDS, every=0.5)
        steady = watched.requests[steady_from:]
        rate = len(steady) / (time.monotonic() - started)
        print(
            f"\ndash.js: currentTime +{playback.advanced:.2f} s in {playback.wall:.2f} s; "
            f"latency {min(playback.latencies):.2f}–{max(playback.latencies):.2f} s; "
            f"glass-to-ear {min(playback.glass_to_ear):.2f}–{max(playback.glass_to_ear):.2f} s; "
            f"stalls {playback.stalls}; {rate:.2f} requests/s: {steady}"
        )
        assert playback.advanced >= STEADY_SECONDS - 1.5, playback
        for seconds in playback.latencies + playback.glass_to_ear:
            assert seconds is not None and 0 < seconds < MAX_LATENCY, playback
        # Segments (one per 3.84 s), a feed window, a heartbeat: well under one a second.
        assert rate < MOST_REQUESTS_PER_SECOND, steady
        segments = [r for r in steady if re.fullmatch(r"GET /dash/[^/]+/[^/]+/\d+\.m4s", r)]
        assert 3 <= len(segments) <= STEADY_SECONDS / 3.84 + 2, steady

        # Changes made on the node reach the page through the feed: a question, a new title.
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            joined = (await http.post(f"{base}/join", json={"name": "Ana"})).json()
            listener = {"Authorization": f"Bearer {joined['token']}"}
            asked = await http.post(
                f"{base}/questions", json={"text": "Who mixes the sound?"}, headers=listener
            )
            assert asked.status_code == 201, asked.text
            token = issue_account_token(data_dir, "Demo host", DEMO_HOST, days=1)
            renamed = await http.patch(
                base, json={"title": "Renamed live"}, headers={"Authorization": f"Bearer {token}"}
            )
            assert renamed.status_code == 200, renamed.text
        await (
            page.locator("#question-list .question-text")
            .filter(has_text="Who mixes the sound?")
            .wait_for(timeout=10_000)
        )
        await page.locator("#title").filter(has_text="Renamed live").wait_for(timeout=10_000)

        # The count includes this listener.
        listeners = page.locator("#listeners")
        await listeners.filter(has_text=re.compile(r"^[1-9][\d,]* listening now$")).wait_for(
            timeout=10_000
        )
        await page.locator("#latency").filter(has_text=re.compile(r" s behind live$")).wait_for()
        assert await page.evaluate("window.causerie.watching") == "events"
        assert await page.evaluate("window.__eventSources") == 0

    # The details were read once; then the feed: no event stream, no polling.
    assert f"GET {base}/events" not in watched.requests, watched.requests
    assert watched.requests.count(f"GET {base}") == 1, watched.requests
    feed = [r for r in watched.requests if r.startswith(f"GET /feed/{space['id']}/")]
    assert feed[0] == f"GET /feed/{space['id']}/now" and len(feed) >= 2, feed

    assert not watched.page_errors, watched.page_errors
    assert not watched.dialogs, watched.dialogs
    assert not watched.http_errors, watched.http_errors
    assert not watched.console_errors, watched.console_errors


async def test_a_page_forced_onto_hls_js_still_plays(server_process) -> None:
    url, _ = server_process
    space = await demo_space(url)
    watched = Watched()
    async with chromium() as browser:
        page = await phone_page(browser, watched)
        await page.goto(f"{url}/s/{space['id']}?player=hls.js")
        await page.locator("#badge").filter(has_text="Live").wait_for()
        assert await player_of(page) == "hls.js"
        await start_listening(page)
        assert await page.evaluate("window.causerie.hls !== null && window.causerie.dash === null")
        playback = await measure_playback(page, settle=2.0, seconds=6.0, every=0.5)
        print(
            f"\nhls.js: currentTime +{playback.advanced:.2f} s in {playback.wall:.2f} s; "
            f"latency {min(playback.latencies):.2f}–{max(playback.latencies):.2f} s"
        )
        assert playback.advanced >= 5.0, playback
        for seconds in playback.latencies:
            assert seconds is not None and 0 < seconds < MAX_LATENCY, playback
    paths = {urlsplit(r.split(" ", 1)[1]).path.split("/")[1] for r in watched.requests}
    assert "hls" in paths and "dash" not in paths, watched.requests
    assert not watched.page_errors, watched.page_errors
    assert not watched.http_errors, watched.http_errors


async def test_host_controls_start_and_end_a_space(server_process) -> None:
    url, data_dir = server_process
    token = issue_account_token(data_dir, "Hana", None, days=1)
    stranger = issue_account_token(data_dir, "Someone else", None, days=1)
    created = httpx.post(
        f"{url}/api/spaces",
        json={"title": "Friday questions"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert created.status_code == 201, created.text
    space_id = created.json()["id"]
    page_url = f"{url}/s/{space_id}"

    host_watched, listener_watched = Watched(), Watched()
    async with chromium() as browser:
        # A listener's page, without the fragment: no host controls.
        listener = await phone_page(browser, listener_watched)
        await listener.goto(page_url)
        await listener.locator("#badge").filter(has_text="Scheduled").wait_for()
        assert await listener.locator("#host-controls").is_hidden()
        assert await listener.evaluate("window.causerie.state.hosting") is False

        # Someone else's account token: the API says no, and the page says so politely.
        other = await phone_page(browser)
        await other.goto(f"{page_url}#host={stranger}")
        await other.get_by_role("button", name="Go live").click()
        status = other.locator("#host-status")
        await status.filter(has_text="Couldn't go live").wait_for()
        assert "may not start" in await status.text_content()
        assert await other.get_by_role("button", name="Go live").is_enabled()
        assert await other.locator("#badge").text_content() == "Scheduled"

        # The host: the token leaves the address bar but stays with the tab.
        host = await phone_page(browser, host_watched)
        await host.goto(f"{page_url}#host={token}")
        card = host.get_by_role("region", name="Host controls")
        await card.wait_for()
        assert host.url == page_url
        assert token not in await host.evaluate("location.href")
        assert await host.evaluate(f"sessionStorage.getItem('causerie.host.{space_id}')") == token
        await host.reload()
        await card.wait_for()

        await card.get_by_role("button", name="Go live").click()
        await host.locator("#badge").filter(has_text="Live").wait_for()
        await card.get_by_text("You're live.").wait_for()
        assert await card.get_by_role("button", name="Go live").count() == 0
        assert await host.locator("#play").is_enabled()
        await listener.locator("#badge").filter(has_text="Live").wait_for(timeout=15_000)
        assert await listener.locator("#play").is_enabled()

        # Ending takes a second, deliberate press; Cancel backs out.
        await card.get_by_role("button", name="End space").click()
        await card.get_by_role("button", name="Cancel").click()
        assert await card.get_by_role("button", name="Yes, end it").count() == 0
        await card.get_by_role("button", name="End space").click()
        assert await host.locator("#badge").text_content() == "Live"
        await card.get_by_role("button", name="Yes, end it").click()
        await host.locator("#badge").filter(has_text="Ended").wait_for()
        assert await card.get_by_role("button").count() == 0
        await listener.locator("#badge").filter(has_text="Ended").wait_for(timeout=15_000)
        assert await listener.locator("#host-controls").is_hidden()
        assert await listener.evaluate("window.causerie.watching") == "events"

    # The listener's page read the details once, then saw the space start and end through the
    # feed, not by polling.
    details = f"/api/spaces/{space_id}"
    assert f"GET {details}/events" not in listener_watched.requests
    assert listener_watched.requests.count(f"GET {details}") == 1, listener_watched.requests

    state = httpx.get(f"{url}/api/spaces/{space_id}", timeout=5).json()["state"]
    assert state == "ended"
    for watched in (host_watched, listener_watched):
        assert not watched.page_errors, watched.page_errors
        assert not watched.dialogs, watched.dialogs
        assert not watched.http_errors, watched.http_errors
