"""The operator's console (/admin) in Chromium, against two real nodes sharing a Redis.

The operator signs in on node one with the token `causerie token --operator` printed, and,
without ever reloading the page: sees both nodes; sees a listener arrive in a space that node
two runs; removes its speaker and ends it; makes a host invite, which another browser opens to
make an account; revokes that account, whose token is then refused. A host's token is not let
in.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.conftest import account
from tests.harness.in_process import run_node
from tests.harness.polling import eventually
from tests.harness.ports import free_port
from tests.web.live import CHROMIUM, Watched, chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_WITHIN = 8_000  # ms: the console follows a change made elsewhere (2 s ticks)


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


def row(page, table: str, key: str, value: str):
    return page.locator(f"#{table} tr[data-{key}='{value}']")


async def test_the_console_follows_two_nodes_and_acts(tmp_path, redis_url) -> None:
    options = {"redis_url": redis_url}
    async with (
        run_node(tmp_path / "one", free_port(), **options) as one,
        run_node(tmp_path / "two", free_port(), **options) as two,
        httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
        chromium() as browser,
    ):
        operator = issue_account_token(one.data_dir, "Olga", "u-op", 1, redis_url, operator=True)
        host = account(two.data_dir, "Hana", user="u-host")
        space = (await http2.post("/api/spaces", json={"title": "Night talk"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http2.post(f"{base}/start", headers=host)).status_code == 200
        await http2.put(f"{base}/cohosts/u-cora", json={"name": "Cora"}, headers=host)

        watched = Watched()
        page = await (await browser.new_context()).new_page()
        watched.watch(page)
        await page.goto(f"{one.url}/admin")

        # A host's token is not an operator's.
        await page.fill("#token-input", host["Authorization"].split()[1])
        await page.click("#signin-form button[type=submit]")
        await page.wait_for_function(
            "document.querySelector('#signin-status').textContent.includes('not an operator')"
        )
        assert await page.locator("#signin").is_visible()

        await page.fill("#token-input", operator)
        await page.click("#signin-form button[type=submit]")
        await page.wait_for_function("window.causerie.state.connected", timeout=LIVE_WITHIN)
        assert await page.locator("#account-name").text_content() == "Olga"
        # Both nodes, each up, with Redis reachable.
        urls = [n.app.services.config.node_url for n in (one, two)]
        for url in urls:
            await (
                row(page, "nodes", "status", "up")
                .filter(has_text=url)
                .wait_for(timeout=LIVE_WITHIN)
            )
        reachable = page.locator("#nodes .redis-cell").filter(has_text="Reachable")
        await reachable.nth(1).wait_for(timeout=LIVE_WITHIN + 5_000)  # PINGs every 5 s
        spaces_before = await page.evaluate("window.causerie.state.renders")

        # A listener arrives at node two: the count moves without a reload.
        listed = row(page, "spaces", "id", space["id"])
        assert await listed.locator(".listening").text_content() == "0"
        joined = (await http2.post(f"{base}/join")).json()
        await http2.post(
            f"{base}/heartbeat", headers={"Authorization": f"Bearer {joined['token']}"}
        )
        await page.wait_for_function(
            f"document.querySelector(\"#spaces tr[data-id='{space['id']}'] .listening\")"
            ".textContent === '1'",
            timeout=LIVE_WITHIN,
        )
        assert await page.evaluate("window.causerie.state.renders") > spaces_before

        # Remove the co-host, then end the space (asked twice), through node one.
        await listed.get_by_role("button", name="Remove Cora from Night talk").click()
        await page.wait_for_function(
            f"!document.querySelector(\"#spaces tr[data-id='{space['id']}'] .stage-cell\")"
            ".textContent.includes('Cora')",
            timeout=LIVE_WITHIN,
        )
        await listed.get_by_role("button", name="End Night talk").click()
        await listed.get_by_role("button", name="Really end Night talk").click()
        await (
            row(page, "spaces", "state", "ended")
            .filter(has_text="Night talk")
            .wait_for(timeout=LIVE_WITHIN)
        )
        assert (await http2.get(base)).json()["state"] == "ended"

        # A host invite, opened in another browser context.
        await page.select_option("#invite-role", "host")
        await page.fill("#invite-note", "for Ada")
        await page.click("#invite-form button[type=submit]")
        await page.locator("#invite-made").wait_for()
        link = await page.input_value("#invite-link")
        assert link.startswith(f"{one.url}/invite/")
        await row(page, "invites", "state", "open").filter(has_text="for Ada").wait_for()

        guest = await (await browser.new_context()).new_page()
        watched.watch(guest)
        await guest.goto(link.replace(one.url, two.url))  # any node serves it
        await guest.fill("#name-input", "Ada")
        await guest.click("#invite-form button[type=submit]")
        await guest.locator("#done").wait_for()
        token = await guest.input_value("#token")
        assert await guest.evaluate("localStorage.getItem('causerie.account')") == token
        assert await guest.get_attribute("#next", "href") == "/studio"
        ada = {"Authorization": f"Bearer {token}"}
        created = await http2.post("/api/spaces", json={"title": "A"}, headers=ada)
        assert created.status_code == 201

        # The console's lists show her account; revoking it refuses her token at once.
        accounts = page.locator("#accounts tr").filter(has_text="Ada")
        await accounts.wait_for(timeout=15_000)  # the lists are read every 10 s
        await accounts.get_by_role("button", name="Revoke Ada's account").click()
        await accounts.filter(has_text="Revoked").wait_for(timeout=LIVE_WITHIN)
        refused = await http2.post("/api/spaces", json={"title": "B"}, headers=ada)
        assert refused.status_code == 401
        await row(page, "invites", "state", "used").filter(has_text="for Ada").wait_for()

        assert not watched.page_errors, watched.page_errors
        # The only refusals the pages met were the host token's, on purpose.
        assert all("/api/admin/" in e and e.startswith("403") for e in watched.http_errors), (
            watched.http_errors
        )


async def test_the_console_keeps_the_token_and_reads_it_from_the_address(tmp_path) -> None:
    async with run_node(tmp_path / "one") as one, chromium() as browser:
        operator = issue_account_token(one.data_dir, "Olga", "u-op", 1, operator=True)
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{one.url}/admin#token={operator}")
        await page.wait_for_function("window.causerie.state.connected", timeout=LIVE_WITHIN)
        assert "token" not in page.url  # taken out of the address bar
        [me] = await page.evaluate("window.causerie.state.overview.nodes")
        assert me["this_node"] and me["redis"] is None
        assert await page.locator("#nodes .redis-cell").text_content() == "Embedded"
        await page.reload()  # kept: no sign-in again
        await page.wait_for_function("window.causerie.state.connected", timeout=LIVE_WITHIN)
        assert await page.locator("#signin").is_hidden()
        await page.click("#sign-out")
        await page.locator("#signin").wait_for()
        assert await page.evaluate("localStorage.getItem('causerie.operator')") is None
        services = one.app.services
        await eventually(lambda: services.event_streams == 0, 5, "the console's stream closing")
