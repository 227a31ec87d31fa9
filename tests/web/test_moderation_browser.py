"""Report → review → takedown, end to end in Chromium against a real node.

A listener reports the space, two speakers and two questions from the listener page. The
operator's console, open all along and never reloaded, shows them as they come; the operator
decides each with a reason (an empty reason is refused with a message, and nothing is sent):
hides a question, removes a speaker, bans a question's author, ends the space, and takes its
replay down after a report of the ended space; a dismissal made meanwhile elsewhere is
refused with a message. The listener page follows each act live; the replay answers 410; the
audit log holds every act with who, what, to whom and why, shows the latest entries in the
console and exports as CSV and JSON.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.conftest import account
from tests.harness.in_process import run_node
from tests.web.live import CHROMIUM, Watched, chromium
from tests.web.test_audience_browser import ask, open_space
from tests.web.test_reporting_browser import report

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_WITHIN = 8_000  # ms: the console's overview ticks every 2 s; the pages follow events


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


async def decide(console, box, action: str, reason: str, *, twice: bool = False) -> None:
    """Write the reason in a report's box and press the action's button (again if asked)."""
    await box.get_by_label("Why (kept in the audit log)").fill(reason)
    await box.locator(f"button[data-action='{action}']").click()
    if twice:
        await box.get_by_role("button", name="Really").click()
    await box.wait_for(state="detached", timeout=LIVE_WITHIN)
    await console.locator(f"#decided li[data-action='{action}']").wait_for()


async def test_report_review_takedown_in_the_browser(tmp_path) -> None:
    async with (
        run_node(tmp_path / "node") as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
        chromium() as browser,
    ):
        operator = issue_account_token(node.data_dir, "Olga", "u-op", 1, operator=True)
        op = {"Authorization": f"Bearer {operator}"}
        host = account(node.data_dir, "Hana", user="u-host")
        space = (await http.post("/api/spaces", json={"title": "Town hall"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http.post(f"{base}/start", headers=host)).status_code == 200
        await http.put(f"{base}/cohosts/u-cora", json={"name": "Cora"}, headers=host)

        # The console, open before anything is reported.
        seen = Watched()
        console = await (await browser.new_context(accept_downloads=True)).new_page()
        seen.watch(console)
        await console.goto(f"{node.url}/admin#token={operator}")
        await console.wait_for_function("window.causerie.state.connected", timeout=LIVE_WITHIN)
        assert await console.get_attribute("#transparency-link", "href") == "/transparency"
        await console.locator("#reports-summary").filter(has_text="No open reports").wait_for()
        await console.evaluate("window.notReloaded = true")

        # A troll asks two questions; a listener reports them, both speakers and the space.
        listening = Watched()
        listener = await open_space(browser, node.url, space["id"], listening)
        troll = await open_space(browser, node.url, space["id"], Watched())
        await ask(troll, "Buy followers at spam.example")
        await ask(troll, "Cheap pills, DM me")
        questions = listener.locator("#question-list .question")
        stage = listener.locator("#stage-list .person")
        for name, reason in (("Cora", "Harassment or bullying"), ("Hana", "Spam or scam")):
            person = stage.filter(has_text=name)
            await person.wait_for()
            await report(listener, person.get_by_role("button", name="Report"), reason)
        for text, reason in (("Buy followers", "Spam or scam"), ("Cheap pills", "Illegal content")):
            item = questions.filter(has_text=text)
            await item.wait_for()
            await report(listener, item.get_by_role("button", name="Report"), reason)
        await report(
            listener,
            listener.get_by_role("button", name="Report this space"),
            "Hate speech",
            "slurs at 12:03",
        )

        # The console shows the five reported things, without a reload.
        boxes = console.locator("#reports article")
        await console.wait_for_function(
            "document.querySelectorAll('#reports article').length === 5", timeout=LIVE_WITHIN
        )
        assert await console.evaluate("window.notReloaded")
        question_box = boxes.filter(has_text="“Buy followers at spam.example”")
        assert await question_box.get_attribute("data-kind") == "question"
        space_box = boxes.filter(has_text="The space “Town hall”")
        assert "slurs at 12:03" in await space_box.text_content()

        # A reason being typed survives the queue's refresh when another report comes in.
        hana_box = boxes.filter(has_text="The speaker “Hana”")
        why_hana = hana_box.get_by_label("Why (kept in the audit log)")
        await why_hana.fill("The host's own")
        reporter = account(node.data_dir, "Rita", user="u-rita")
        cora = {"target": "speaker", "target_id": "u-cora", "reason": "harassment"}
        assert (await http.post(f"{base}/reports", json=cora, headers=reporter)).is_success
        await (
            boxes.filter(has_text="The speaker “Cora”")
            .filter(has_text="2 reports")
            .wait_for(timeout=LIVE_WITHIN)
        )
        assert await why_hana.input_value() == "The host's own"
        assert await why_hana.evaluate("input => document.activeElement === input")

        # An empty reason: a message beside the reason, and nothing sent.
        await question_box.locator("button[data-action='hide_question']").click()
        status = question_box.get_by_role("status")
        await status.filter(has_text="Say why").wait_for()
        assert (
            await question_box.get_by_label("Why (kept in the audit log)").get_attribute(
                "aria-invalid"
            )
            == "true"
        )
        assert not [r for r in seen.requests if r.endswith("/actions")]

        # Hide the question: gone from the listener's page.
        await decide(console, question_box, "hide_question", "Selling followers: spam")
        await questions.filter(has_text="Buy followers").wait_for(
            state="detached", timeout=LIVE_WITHIN
        )
        # Remove the speaker: off the listener's stage.
        await decide(
            console, boxes.filter(has_text="The speaker “Cora”"), "remove_speaker", "Harassment"
        )
        await stage.filter(has_text="Cora").wait_for(state="detached", timeout=LIVE_WITHIN)
        # Dismissed meanwhile from elsewhere (the console's queue not read again yet): the
        # console's own dismissal is refused, and the box says why.
        hana_ref = await hana_box.get_attribute("data-ref")
        await console.route("**/api/admin/reports", lambda route: route.abort())
        dismissed = await http.post(
            f"/api/admin/reports/{hana_ref}/actions",
            json={"action": "dismiss", "reason": "The host's own event"},
            headers=op,
        )
        assert dismissed.status_code == 200
        await why_hana.fill("Not spam")
        await hana_box.locator("button[data-action='dismiss']").click()
        await hana_box.get_by_role("status").filter(has_text="decided already").wait_for()
        await console.unroute("**/api/admin/reports")
        await hana_box.wait_for(state="detached", timeout=15_000)  # read again every 10 s
        assert await stage.filter(has_text="Hana").count() == 1  # the host stays
        # Ban the second question's author (asked twice): the troll's token is refused.
        author = next(
            q["author_id"]
            for q in (await http.get(f"{base}/questions")).json()["questions"]
            if q["text"].startswith("Cheap pills")
        )
        await decide(
            console,
            boxes.filter(has_text="Cheap pills"),
            "ban_account",
            "Selling drugs",
            twice=True,
        )
        # End the space (asked twice): the listener's page says it ended.
        await decide(console, space_box, "end_space", "Hate speech on air", twice=True)
        await listener.wait_for_function(
            "window.causerie.state.space?.state === 'ended'", timeout=LIVE_WITHIN
        )
        assert not listening.page_errors and not listening.dialogs
        assert not listening.http_errors, listening.http_errors

        # The ended space's replay, reported by an account, is taken down from the console.
        late = await http.post(f"{base}/reports", json={"reason": "hate"}, headers=reporter)
        assert late.status_code == 201, late.text
        assert (await http.get(f"/replay/{space['id']}/index.m3u8")).status_code != 410
        replay_box = boxes.filter(has_text="The space “Town hall”")
        await replay_box.wait_for(timeout=LIVE_WITHIN)
        await decide(console, replay_box, "take_down_replay", "Hate speech", twice=True)
        gone = await http.get(f"/replay/{space['id']}/index.m3u8")
        assert gone.status_code == 410 and gone.json()["error"]
        await console.locator("#reports-summary").filter(has_text="No open reports").wait_for()

        # The audit log: who, what, to whom, why, and which report.
        entries = (await http.get("/api/admin/audit", headers=op)).json()["entries"]
        acts = [(e["action"], e["target"], e["reason"]) for e in entries]
        assert acts == [
            ("hide_question", acts[0][1], "Selling followers: spam"),
            ("remove_speaker", "user:u-cora", "Harassment"),
            ("dismiss_reports", f"speaker:{space['id']}:u-host", "The host's own event"),
            ("ban_account", f"user:{author}", "Selling drugs"),
            ("end_space", f"space:{space['id']}", "Hate speech on air"),
            ("take_down_replay", f"space:{space['id']}", "Hate speech"),
        ]
        assert acts[0][1].startswith("question:")
        assert {(e["actor"], e["actor_role"]) for e in entries} == {("u-op", "operator")}
        assert all(e["report_ref"].startswith("R-") for e in entries)
        assert entries[-1]["report_ref"] == late.json()["ref"]
        troll_said = await http.post(
            f"{base}/reports",
            json={"reason": "spam"},
            headers={"Authorization": f"Bearer {await troll_token(troll)}"},
        )
        assert troll_said.status_code == 403

        # The console shows the latest entries, newest first, and exports the whole log.
        await console.wait_for_function(
            "document.querySelectorAll('#audit tr').length === 6", timeout=LIVE_WITHIN
        )
        shown = await console.locator("#audit tr").evaluate_all(
            "rows => rows.map(r => r.dataset.action)"
        )
        assert shown == [a for a, _, _ in reversed(acts)]
        async with console.expect_download() as made:
            await console.click("#audit-csv")
        rows = list(csv.DictReader(io.StringIO(Path(await (await made.value).path()).read_text())))
        assert [(r["action"], r["target"], r["reason"]) for r in rows] == acts
        async with console.expect_download() as made:
            await console.click("#audit-json")
        exported = json.loads(Path(await (await made.value).path()).read_text())
        assert exported["entries"] == entries
        assert "Exported" in await console.locator("#audit-status").text_content()

        assert not seen.page_errors, seen.page_errors
        assert seen.http_errors == [f"409 POST {node.url}/api/admin/reports/{hana_ref}/actions"]


async def troll_token(page) -> str:
    """The listener token a page joined with (kept in its sessionStorage)."""
    return await page.evaluate("window.causerie.state.token")
