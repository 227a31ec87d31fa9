"""Text people typed, shown as text in a real browser: `causerie serve` in its own process and
headless Chromium. Titles, descriptions, names and questions in right-to-left scripts, with
zero-width and bidirectional characters, emoji, and HTML/JavaScript that tries to get out of its
element: each page shows exactly what was typed, and nothing typed ever becomes an element or
runs (an injected handler would set `window.__pwned`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import account
from tests.harness.causerie_process import causerie_process
from tests.web.live import CHROMIUM, Watched, chromium, phone_page

pytestmark = pytest.mark.browser

INJECT = '<img src=x onerror="window.__pwned=1">'
TITLE = f"שלום \u202eevil\u202c ze\u200bro\u200dwidth 👩🏽‍💻 {INJECT}</script>"
DESCRIPTION = f"مرحبا بالعالم\nline two: </title><svg onload=window.__pwned=2>\n\u200f{INJECT}"
HOST_NAME = '"><script>window.__pwned=3</script>'
QUESTION = f"{INJECT}</script><script>window.__pwned=4</script> ‏؟ 🎙️\u200b אבג"
ASKER = "<b onmouseover=window.__pwned=5>Zoë</b>"
# No handler ran, no element carries one, the elements showing typed text hold text only, and
# every script is one of the page's own files.
NOTHING_INJECTED = """() => window.__pwned === undefined
    && document.querySelectorAll('[onerror], [onload], [onmouseover], img[src="x"]').length === 0
    && Array.from(document.querySelectorAll('.title, .host, #description, .question-text'))
        .every((element) => element.children.length === 0)
    && Array.from(document.scripts).every((script) => script.src !== '')"""


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with causerie_process(tmp_path, "serve") as node:
        yield node.url, node.data_dir


def test_the_texts_are_what_the_domain_keeps() -> None:
    """The strings above are NFC already, so pages must show them character for character."""
    for text in (TITLE, DESCRIPTION, HOST_NAME, QUESTION, ASKER):
        assert unicodedata.is_normalized("NFC", text)


async def test_typed_text_is_shown_as_text(server: tuple[str, Path]) -> None:
    url, data_dir = server
    with httpx.Client(base_url=url, headers=account(data_dir, HOST_NAME), timeout=10) as http:
        created = http.post("/api/spaces", json={"title": TITLE, "description": DESCRIPTION})
        assert created.status_code == 201, created.text
        space_id = created.json()["id"]
        assert created.json()["title"] == TITLE
        assert http.post(f"/api/spaces/{space_id}/start").status_code == 200

    watched = Watched()
    async with chromium() as browser:
        page = await phone_page(browser, watched)
        await page.goto(f"{url}/s/{space_id}")
        await page.wait_for_function("window.causerie?.watching === 'events'")
        assert await page.locator("#title").text_content() == TITLE
        assert await page.title() == f"{TITLE} · causerie"
        assert await page.locator("#description").text_content() == DESCRIPTION
        assert HOST_NAME in await page.locator("#host").text_content()

        # A listener types a name and a question; everyone's page shows them as typed.
        card = page.get_by_role("region", name=re.compile("^Questions"))
        await page.get_by_label("Your name").fill(ASKER)
        await card.get_by_label("Your question").fill(QUESTION)
        await card.get_by_role("button", name="Ask").click()
        await page.wait_for_function(
            """(expected) => Array.from(document.querySelectorAll('#question-list .question-text'),
                (p) => p.textContent).includes(expected)""",
            arg=QUESTION,
        )
        author = await page.locator("#question-list .question-author").first.text_content()
        assert author.startswith(ASKER)

        # The list of spaces shows the title as text too.
        index = await phone_page(browser, watched)
        await index.goto(url)
        await index.get_by_text(TITLE, exact=True).wait_for()

        await page.wait_for_timeout(500)  # an image that fails to load fires onerror by now
        for shown in (page, index):
            assert await shown.evaluate(NOTHING_INJECTED)
    assert not watched.page_errors, watched.page_errors
    assert not watched.dialogs, watched.dialogs
