"""Reporting from the listener page, against `causerie demo` in its own process and headless
Chromium: the space, a speaker and a question are reported from their "Report" buttons (a
reason from the server's list, a note); the page shows each reference; the operator's queue
holds exactly those reports."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.web.live import CHROMIUM, Watched, chromium, phone_page
from tests.web.test_audience_browser import Host, ask, assert_clean

pytestmark = pytest.mark.browser

REF = re.compile(r"^R-[A-Z0-9]{12}$")


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


async def report(page, opener, reason: str, note: str = "") -> str:
    """Open the dialog with `opener`, pick `reason`, write `note`, send; the reference shown."""
    await opener.click()
    dialog = page.get_by_role("dialog")
    await dialog.wait_for()
    await dialog.get_by_label(reason).check()
    await dialog.get_by_label(re.compile("^A note for the moderators")).fill(note)
    await dialog.get_by_role("button", name="Send report").click()
    ref = dialog.locator("#flag-ref")
    await ref.wait_for()
    text = (await ref.text_content() or "").strip()
    await dialog.get_by_role("button", name="Close").click()
    await dialog.wait_for(state="hidden")
    return text


async def test_a_listener_reports_the_space_a_speaker_and_a_question(server_process) -> None:
    url, data_dir = server_process
    host = Host(url, data_dir)
    space_id = host.live_space("Reported live")
    watched = Watched()
    try:
        async with chromium() as browser:
            page = await phone_page(browser, watched)
            await page.goto(f"{url}/s/{space_id}")
            await page.wait_for_function("window.causerie?.watching === 'events'")

            space_button = page.get_by_role("button", name="Report this space")
            space_ref = await report(page, space_button, "Hate speech", "slurs at 12:03")
            assert REF.match(space_ref), space_ref

            # The host, on stage: a speaker like any other to report.
            speaker = page.locator("#stage-list .person").filter(has_text="Hana")
            await speaker.wait_for()
            opener = speaker.get_by_role("button", name="Report")
            # "Something else" needs a note: the server says so, the page shows it.
            await opener.click()
            dialog = page.get_by_role("dialog")
            await dialog.get_by_label("Something else").check()
            await dialog.get_by_role("button", name="Send report").click()
            await dialog.get_by_role("status").filter(has_text="needs a note").wait_for()
            await dialog.get_by_role("button", name="Cancel").click()
            speaker_ref = await report(page, opener, "Something else", "plays loud music")
            assert REF.match(speaker_ref) and speaker_ref != space_ref

            await ask(page, "Where can I buy followers?")
            item = page.locator("#question-list .question").filter(has_text="buy followers")
            question_ref = await report(
                page, item.get_by_role("button", name="Report"), "Spam or scam"
            )
            assert REF.match(question_ref)
            # The same report again is the same report: the same reference.
            again = await report(page, item.get_by_role("button", name="Report"), "Spam or scam")
            assert again == question_ref
            assert await page.evaluate("window.causerie.state.notFound") is False
        # The one refusal was the note left out on purpose; nothing else went wrong.
        assert watched.http_errors == [f"422 POST {url}/api/spaces/{space_id}/reports"]
        assert len(watched.console_errors) == 1 and "422" in watched.console_errors[0]
        watched.http_errors.clear()
        watched.console_errors.clear()
        assert_clean(watched)

        operator = issue_account_token(data_dir, "Olga", "u-op", days=1, operator=True)
        queue = httpx.get(
            f"{url}/api/admin/reports", headers={"Authorization": f"Bearer {operator}"}
        ).json()["groups"]
        mine = {g["ref"]: g for g in queue if g["target"]["space_id"] == space_id}
        assert set(mine) == {space_ref, speaker_ref, question_ref}
        assert mine[space_ref]["reports"][0]["note"] == "slurs at 12:03"
        assert mine[speaker_ref]["target"] == {
            "space_id": space_id,
            "kind": "speaker",
            "id": mine[speaker_ref]["target"]["id"],
        }
        assert mine[speaker_ref]["reasons"] == {"other": 1}
        assert mine[question_ref]["target"]["kind"] == "question"
    finally:
        host.http.close()
