"""The space page against the real thing: `causerie demo` in its own process, headless Chromium.

Where test_pages.py checks the page's behaviour piece by piece against an in-process node, this
checks it against `causerie demo` as shipped, in a process of its own: the LL-HLS stream plays
close to live through hls.js, the listener count includes the listener, and the host card starts
and ends a space.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.web.live import (
    CHROMIUM,
    Watched,
    chromium,
    demo_space,
    measure_playback,
    phone_page,
    start_listening,
)

pytestmark = pytest.mark.browser

MAX_LATENCY = 2.0  # seconds behind the live edge, at most, once settled


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


async def test_demo_plays_close_to_live(server_process) -> None:
    url, _ = server_process
    space = await demo_space(url)
    watched = Watched()
    async with chromium() as browser:
        page = await phone_page(browser, watched)
        await page.goto(f"{url}/s/{space['id']}")
        await page.locator("#badge").filter(has_text="Live").wait_for()
        # Everyone sees who is on stage: the demo's host and guest.
        names = await page.locator("#stage-list .person-name").all_text_contents()
        roles = await page.locator("#stage-list .person-role").all_text_contents()
        assert names == [person["name"] for person in space["stage"]]
        assert roles[0] == "Host" and set(roles[1:]) <= {"Co-host", "Speaker"}
        assert await page.locator("#host-controls").is_hidden()  # no host link, no host card

        await start_listening(page)
        playback = await measure_playback(page, settle=2.0, seconds=6.0, every=0.5)
        print(
            f"\nreal server: currentTime +{playback.advanced:.2f} s in {playback.wall:.2f} s; "
            f"hls.latency {min(playback.latencies):.2f}–{max(playback.latencies):.2f} s; "
            f"stalls {playback.stalls}"
        )
        assert playback.advanced >= 5.0, playback
        assert all(
            latency is not None and 0 < latency < MAX_LATENCY for latency in playback.latencies
        ), playback

        # The count includes this listener: the server pushes it over the page's event stream.
        listeners = page.locator("#listeners")
        await listeners.filter(has_text=re.compile(r"^[1-9][\d,]* listening now$")).wait_for(
            timeout=10_000
        )
        await page.locator("#latency").filter(has_text=re.compile(r" s behind live$")).wait_for()
        assert await page.evaluate("window.causerie.watching") == "events"

    # The details came from the events endpoint alone: never read, so never polled.
    details = f"/api/spaces/{space['id']}"
    assert watched.requests.count(f"GET {details}/events") == 1, watched.requests
    assert f"GET {details}" not in watched.requests, watched.requests

    assert not watched.page_errors, watched.page_errors
    assert not watched.dialogs, watched.dialogs
    assert not watched.http_errors, watched.http_errors
    assert not watched.console_errors, watched.console_errors


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

    # The listener's page saw the space start and end through its event stream, not by polling.
    details = f"/api/spaces/{space_id}"
    assert listener_watched.requests.count(f"GET {details}/events") == 1
    assert f"GET {details}" not in listener_watched.requests, listener_watched.requests

    state = httpx.get(f"{url}/api/spaces/{space_id}", timeout=5).json()["state"]
    assert state == "ended"
    for watched in (host_watched, listener_watched):
        assert not watched.page_errors, watched.page_errors
        assert not watched.dialogs, watched.dialogs
        assert not watched.http_errors, watched.http_errors
