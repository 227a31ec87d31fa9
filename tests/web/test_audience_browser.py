"""The audience's side of the space page against the real thing: `causerie demo` in its own
process, headless Chromium, two listeners in two browser contexts (two tabs of two people).

Questions (asked, upvoted, ordered the same everywhere, moderated by the host through the HTTP
API), reactions from one listener floating on the other's page, the countdown of a scheduled
space, a raised hand approved onto the stage, and who is talking, all live, without reloads.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.web.live import CHROMIUM, Watched, chromium, demo_space, phone_page

pytestmark = pytest.mark.browser

LIVE_WITHIN = 3_500  # ms: a change made elsewhere shows on a page (events go out once a second)
XSS = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


class Host:
    """The host of spaces made for a test, speaking HTTP to the real server."""

    def __init__(self, url: str, data_dir: Path) -> None:
        token = issue_account_token(data_dir, "Hana", None, days=1)
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def create(self, title: str, **more: Any) -> str:
        created = self.http.post("/api/spaces", json={"title": title, **more})
        assert created.status_code == 201, created.text
        return created.json()["id"]

    def live_space(self, title: str) -> str:
        space_id = self.create(title)
        started = self.http.post(f"/api/spaces/{space_id}/start")
        assert started.status_code == 200, started.text
        return space_id

    def post(self, path: str) -> httpx.Response:
        response = self.http.post(path)
        assert response.status_code in (200, 201), response.text
        return response


@pytest.fixture
def host(server_process) -> Iterator[Host]:
    url, data_dir = server_process
    host = Host(url, data_dir)
    yield host
    host.http.close()


def assert_clean(*watched: Watched) -> None:
    for seen in watched:
        assert not seen.page_errors, seen.page_errors
        assert not seen.dialogs, seen.dialogs
        assert not seen.http_errors, seen.http_errors
        assert not seen.console_errors, seen.console_errors


async def open_space(browser, url: str, space_id: str, watched: Watched):
    page = await phone_page(browser, watched)
    await page.goto(f"{url}/s/{space_id}")
    await page.wait_for_function("window.causerie?.watching === 'events'")
    return page


async def ask(page, text: str) -> None:
    card = page.get_by_role("region", name=re.compile("^Questions"))
    await card.get_by_label("Your question").fill(text)
    await card.get_by_role("button", name="Ask").click()
    await card.locator(".question-text").filter(has_text=text).first.wait_for()


async def upvote(page, text: str) -> None:
    item = page.locator("#question-list .question").filter(
        has=page.locator(".question-text", has_text=text)
    )
    await item.get_by_role("button", name=re.compile("^Upvote,")).click()
    await item.get_by_role("button", name=re.compile("^Upvoted"), pressed=True).wait_for()


async def wait_for_order(page, texts: list[str], timeout: float = LIVE_WITHIN) -> None:
    """Until the page lists exactly these questions, in this order."""
    await page.wait_for_function(
        """(expected) => JSON.stringify(Array.from(
            document.querySelectorAll('#question-list .question-text'), (p) => p.textContent))
            === JSON.stringify(expected)""",
        arg=texts,
        timeout=timeout,
    )


async def test_questions_are_asked_voted_and_moderated_live(server_process, host: Host) -> None:
    url, _ = server_process
    space_id = host.live_space("Friday questions")
    a_first, a_xss = "When does the app ship?", XSS
    b_first, b_second = "Will replays be downloadable?", "Can co-hosts pin questions?"
    watched_a, watched_b = Watched(), Watched()
    async with chromium() as browser:
        a = await open_space(browser, url, space_id, watched_a)
        b = await open_space(browser, url, space_id, watched_b)
        await a.get_by_label("Your name").fill("Ana")
        await b.get_by_label("Your name").fill("Bo")

        # Oldest first: A's two, then B's two.
        await ask(a, a_first)
        await ask(a, a_xss)
        await ask(b, b_first)
        await ask(b, b_second)
        # Upvotes: B for both of A's, A for B's second and (once) its own question.
        await upvote(b, a_xss)
        await upvote(b, a_first)
        await upvote(a, b_second)
        await upvote(a, a_xss)
        expected = [a_xss, a_first, b_second, b_first]  # 2 votes, then 1, 1 by age, then 0
        started = time.monotonic()
        await asyncio.gather(wait_for_order(a, expected), wait_for_order(b, expected))
        print(f"\nvotes reached both pages in {time.monotonic() - started:.1f} s")
        listed = host.http.get(f"/api/spaces/{space_id}/questions").json()["questions"]
        assert [q["text"] for q in listed] == expected  # the API's order too
        assert [q["votes"] for q in listed] == [2, 1, 1, 0]

        # The script-like question is text: no dialog, no script element, on either page.
        for page in (a, b):
            assert await page.locator("#questions script").count() == 0
            # space.js alone (no player is loaded before play is pressed)
            assert await page.evaluate("document.scripts.length") == 1
            counts = await page.locator("#question-list .vote-count").all_text_contents()
            assert counts == ["2", "1", "1", "0"]
        authors = await b.locator("#question-list .question-author").all_text_contents()
        assert authors == ["Ana", "Ana", "Bo (you)", "Bo (you)"]

        # The host moderates through the API: every page follows, the hidden one disappears.
        by_text = {q["text"]: q["id"] for q in listed}
        base = f"/api/spaces/{space_id}/questions"
        host.post(f"{base}/{by_text[b_first]}/pin")
        host.post(f"{base}/{by_text[a_first]}/answer")
        host.post(f"{base}/{by_text[b_second]}/hide")
        started = time.monotonic()
        moderated = [b_first, a_xss, a_first]  # pinned, open, answered
        await asyncio.gather(wait_for_order(a, moderated), wait_for_order(b, moderated))
        print(f"moderation reached both pages in {time.monotonic() - started:.1f} s")
        for page in (a, b):
            flags = await page.locator("#question-list .question-flag").all_text_contents()
            assert flags == ["Now answering", "", "Answered"]
        # An answered question takes no more votes.
        answered = a.locator("#question-list .question").nth(2)
        assert await answered.locator(".vote").is_disabled()
        assert await a.evaluate("window.causerie.state.space.requests_waiting") == 0

    assert_clean(watched_a, watched_b)


async def test_reactions_float_on_the_other_listeners_page(server_process, host: Host) -> None:
    url, _ = server_process
    space_id = host.live_space("Clap along")
    watched_a, watched_b = Watched(), Watched()
    async with chromium() as browser:
        a = await open_space(browser, url, space_id, watched_a)
        b = await open_space(browser, url, space_id, watched_b)
        tray = a.get_by_role("group", name="React")
        started = time.monotonic()
        await tray.get_by_role("button", name="Fire").click()
        await tray.get_by_role("button", name="Fire").click()
        await tray.get_by_role("button", name="Applause").click()
        await (
            b.locator("#reaction-layer .reaction-float")
            .filter(has_text="🔥")
            .first.wait_for(timeout=LIVE_WITHIN)
        )
        print(f"\nreactions floated on the other page after {time.monotonic() - started:.1f} s")
        await b.wait_for_function("window.causerie?.reactions.floated >= 3")
        # The sender saw its own at once, and not twice when the sums came back.
        await asyncio.sleep(1.5)
        assert await a.evaluate("window.causerie.reactions.floated") == 3
        totals = host.http.get(f"/api/spaces/{space_id}/reactions").json()["totals"]
        assert totals == {"🔥": 2, "👏": 1}
    assert_clean(watched_a, watched_b)


async def test_scheduled_space_counts_down(server_process, host: Host) -> None:
    url, _ = server_process
    later = datetime.now(UTC) + timedelta(hours=2, minutes=14, seconds=30)
    soon = datetime.now(UTC) + timedelta(seconds=50)
    later_id = host.create("Next week's chat", scheduled_start=later.isoformat())
    soon_id = host.create("Almost there", scheduled_start=soon.isoformat())
    watched = Watched()
    async with chromium() as browser:
        page = await open_space(browser, url, later_id, watched)
        countdown = page.get_by_role("timer")
        await countdown.filter(has_text="Starts in 2 h 14 min").wait_for()
        calendar = page.get_by_role("link", name="Add to calendar")
        assert await calendar.get_attribute("href") == f"/api/spaces/{later_id}.ics"
        assert await page.locator("#play").is_disabled()
        # Questions may be asked before the start.
        await ask(page, "What will you cover?")

        await page.goto(f"{url}/s/{soon_id}")
        await countdown.filter(has_text=re.compile(r"^Starts in \d\d s$")).wait_for()
        first = int(re.search(r"\d+", await countdown.text_content()).group())
        await asyncio.sleep(1.2)
        assert int(re.search(r"\d+", await countdown.text_content()).group()) < first

        # It goes live: the countdown gives way to the player.
        host.post(f"/api/spaces/{soon_id}/start")
        await page.locator("#badge").filter(has_text="Live").wait_for(timeout=LIVE_WITHIN)
        assert await page.locator("#schedule").is_hidden()
        assert await page.locator("#play").is_enabled()
    assert_clean(watched)


async def test_raised_hand_approved_onto_the_stage(server_process, host: Host) -> None:
    url, _ = server_process
    space_id = host.live_space("Open mic")
    requests_url = f"/api/spaces/{space_id}/speak-requests"
    watched_a, watched_b = Watched(), Watched()
    async with chromium() as browser:
        a = await open_space(browser, url, space_id, watched_a)
        b = await open_space(browser, url, space_id, watched_b)
        await a.get_by_label("Your name").fill("Ana")

        await a.get_by_role("button", name="Request to speak").click()
        await a.get_by_role("button", name="Cancel request").wait_for()
        await b.get_by_role("button", name="Request to speak").click()
        await b.get_by_role("button", name="Cancel request").click()
        await b.get_by_role("button", name="Request to speak").wait_for()

        # The host sees Ana's hand (not B's, which went down again), and approves it.
        me = await a.evaluate("window.causerie.state.listenerId")
        waiting = host.http.get(requests_url).json()["requests"]
        assert [(r["user_id"], r["name"]) for r in waiting] == [(me, "Ana")]
        host.post(f"{requests_url}/{me}/approve")

        link = a.get_by_role("link", name="open the speaker view")
        await link.wait_for(timeout=LIVE_WITHIN)
        assert await link.get_attribute("href") == f"/s/{space_id}/speak"
        assert "You're on stage" in await a.locator("#on-stage").text_content()
        assert await a.locator("#hand").is_hidden()
        # Everyone sees the new speaker on stage; only Ana's page has the note.
        speaker = b.locator("#stage-list .person").filter(
            has=b.locator(".person-name", has_text=re.compile("^Ana$"))
        )
        await speaker.wait_for(timeout=LIVE_WITHIN)
        assert await speaker.locator(".person-role").text_content() == "Speaker"
        assert await b.locator("#on-stage").is_hidden()

        # The listener token was kept for the tab: a reload is still the same listener.
        stored = json.loads(
            await a.evaluate(f"sessionStorage.getItem('causerie.listener.{space_id}')")
        )
        assert stored["listenerId"] == me
        await a.reload()
        await link.wait_for()
    assert_clean(watched_a, watched_b)


async def test_who_is_talking_is_highlighted(server_process) -> None:
    url, _ = server_process
    space = await demo_space(url)
    watched = Watched()
    async with chromium() as browser:
        page = await open_space(browser, url, space["id"], watched)
        await page.locator("#stage-list .person.is-speaking").first.wait_for(timeout=10_000)
        seen = await page.evaluate(
            """() => ({
                ids: window.causerie.state.speaking,
                shown: Array.from(document.querySelectorAll('#stage-list .is-speaking'),
                                  (item) => item.querySelector('.person-name').textContent),
            })"""
        )
        names = {person["id"]: person["name"] for person in space["stage"]}
        assert seen["ids"] and set(seen["ids"]) <= set(names), seen
        assert seen["shown"] == [names[i] for i in names if i in seen["ids"]], seen
    assert_clean(watched)
