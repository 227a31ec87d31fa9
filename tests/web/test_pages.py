"""The pages in headless Chromium against a real node: the list of spaces, the listener page
(details, playing, the host card, live events and their fallbacks, questions, reactions, raised
hands, countdown, replay) and what the settings make of them.

One node serves the module (in its event loop, on a real socket); each test makes its own spaces
through the HTTP API, as hosts and listeners would. The audience's writes carry an
`X-Forwarded-For` of their own (the node trusts 127.0.0.1 as its edge), as people behind many
addresses do, so the per-address limits see a crowd, not one machine. Tests that need other
settings (short heartbeats, short-lived tokens, a restart) run a node of their own.

Faults the node cannot be asked for — an overloaded join, a feed (or an events endpoint) that
fails or hangs up or never delivers, a stale cached copy of the details — are made at the
browser's edge with Playwright's routing; a dropped connection by a TCP relay between the
browser and the node; a restart by restarting the node. Everything else the pages see is the
node's own JSON. Waits are for conditions; a few checks that something does *not* happen watch
for it over a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from causerie.media.demo import DemoSpeaker
from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node
from tests.media.conftest import make_tone
from tests.web.live import CHROMIUM, COUNT_EVENT_SOURCES_JS, PHONE, chromium

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

XSS_TITLE = "Launch night <img src=x onerror=alert(1)>"
XSS_NAME = "<i>Basile</i>"
XSS_QUESTION = "<script>alert(1)</script> <b>bold?</b>"
LIVE_WITHIN = 5_000  # ms: a change made through the API shows on a page (events: once a second)
FEED_NOW = re.compile(r"^/feed/[^/]+/now$")
FEED_WINDOW = re.compile(r"^/feed/[^/]+/(\d+)\.ndjson$")
RECORD_SECONDS = 12.0  # how long the module's recorded space is live before its replay is tried


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


# ---- talking to the node, as hosts and listeners do ---------------------------------------------


@dataclass
class Listener:
    id: str
    token: str
    headers: dict[str, str]


class Api:
    """The node's HTTP API, for the people around a page: the host Ada, her co-host Cy, and
    listeners, each listener from an address of their own."""

    def __init__(self, node: RunningNode, http: httpx.AsyncClient) -> None:
        self.node = node
        self.http = http
        self.host = account(node.data_dir, "Ada", "ada")
        self.cohost = account(node.data_dir, "Cy", "cy")
        self.addresses = 0

    @staticmethod
    def token(headers: dict[str, str]) -> str:
        return headers["Authorization"].removeprefix("Bearer ")

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        """One call that must succeed: its JSON (None when empty)."""
        response = await self.http.request(method, path, headers=headers, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def space(self, title: str = "A space", *, start: bool = True, **more: Any) -> dict:
        """A new space of Ada's (live unless `start` is false): its details."""
        space = await self.call("POST", "/api/spaces", self.host, json={"title": title, **more})
        if start:
            space = await self.call("POST", f"/api/spaces/{space['id']}/start", self.host)
        return space

    async def join(self, space_id: str, name: str = "") -> Listener:
        self.addresses += 1
        n = self.addresses
        address = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
        body = {"name": name} if name else None
        joined = await self.call(
            "POST", f"/api/spaces/{space_id}/join", {"X-Forwarded-For": address}, json=body
        )
        headers = {"Authorization": f"Bearer {joined['token']}", "X-Forwarded-For": address}
        return Listener(joined["listener_id"], joined["token"], headers)

    async def speaker(self, space_id: str, name: str) -> Listener:
        """A listener brought on stage: hand raised, approved by the host."""
        listener = await self.join(space_id, name)
        base = f"/api/spaces/{space_id}/speak-requests"
        await self.call("POST", base, listener.headers, json={"name": name})
        await self.call("POST", f"{base}/{listener.id}/approve", self.host)
        return listener

    async def with_cohost(self, space_id: str) -> None:
        await self.call("PUT", f"/api/spaces/{space_id}/cohosts/cy", self.host, json={"name": "Cy"})

    async def ask(self, space_id: str, text: str, name: str = "Ana") -> tuple[dict, Listener]:
        listener = await self.join(space_id, name)
        question = await self.call(
            "POST", f"/api/spaces/{space_id}/questions", listener.headers, json={"text": text}
        )
        return question, listener

    async def votes(self, space_id: str, question_id: str, count: int) -> None:
        for _ in range(count):
            voter = await self.join(space_id)
            path = f"/api/spaces/{space_id}/questions/{question_id}/votes"
            await self.call("POST", path, voter.headers)

    async def moderate(self, space_id: str, question_id: str, action: str) -> None:
        path = f"/api/spaces/{space_id}/questions/{question_id}/{action}"
        await self.call("POST", path, self.host)

    async def crowd(self, space_id: str, count: int) -> None:
        """`count` listeners counted by the node's presence, as their joins would be (a
        thousand joins over HTTP would take this test seconds)."""
        svc = self.node.app.services
        for i in range(count):
            await svc.presence.seen(space_id, f"crowd-{space_id}-{i}", svc.clock())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    data = tmp_path_factory.mktemp("pages") / "data"
    async with run_node(data, trusted_proxies=("127.0.0.1",)) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=node.url, timeout=15) as http:
        yield Api(node, http)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    async with chromium() as running:
        yield running


@dataclass
class Recorded:
    space: dict
    started: float  # time.monotonic() when it went live


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def recorded(api: Api) -> Recorded:
    """A recorded space, live from the module's first test on, for the replay's test to end."""
    return Recorded(await api.space("Recorded"), time.monotonic())


# ---- a page, and what it asks of the server ----------------------------------------------------


@dataclass
class Sent:
    method: str
    path: str
    body: str | None
    headers: dict[str, str] = field(default_factory=dict)  # all of them, once read


@dataclass
class Answered:
    method: str
    path: str
    status: int
    authorization: str | None


class Seen:
    """What a page asked for (and was answered), and what went wrong in it."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.answered: list[Answered] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self._reading: set[asyncio.Task[None]] = set()

    def watch(self, page) -> None:
        page.on("pageerror", lambda error: self.errors.append(str(error)))

        async def on_dialog(dialog) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        def on_request(request) -> None:
            sent = Sent(request.method, path_of(request.url), request.post_data)
            self.sent.append(sent)
            self._read(self._headers(request, sent))

        def on_response(response) -> None:
            self._read(self._answer(response))

        page.on("dialog", on_dialog)
        page.on("request", on_request)
        page.on("response", on_response)

    def _read(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _headers(self, request, sent: Sent) -> None:
        with contextlib.suppress(Exception):  # the page may close meanwhile
            sent.headers = await request.all_headers()  # with Authorization, Last-Event-ID

    async def _answer(self, response) -> None:
        try:
            authorization = await response.request.header_value("authorization")
        except Exception:
            authorization = None
        request = response.request
        self.answered.append(
            Answered(request.method, path_of(request.url), response.status, authorization)
        )

    async def settled(self) -> None:
        """Until every request's headers and every answer seen so far are read."""
        while self._reading:
            await asyncio.gather(*self._reading, return_exceptions=True)

    def requests(self, method: str, path: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.method == method and sent.path == path]

    def count(self, method: str, path: str) -> int:
        return len(self.requests(method, path))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def request_to(method: str, path: str) -> Callable[[Any], bool]:
    """A predicate on Playwright requests: this method, this path (without the query)."""
    return lambda request: request.method == method and urlsplit(request.url).path == path


@asynccontextmanager
async def phone(browser, **options: Any) -> AsyncIterator[tuple[Any, Seen]]:
    """A phone-sized page in a context of its own (its own storage); fails the test on any
    JavaScript error or dialog."""
    context = await browser.new_context(**(PHONE | options))
    page = await context.new_page()
    seen = Seen()
    seen.watch(page)
    try:
        yield page, seen
    finally:
        await context.close()
    assert not seen.dialogs, f"a dialog opened: {seen.dialogs}"
    assert not seen.errors, f"JavaScript errors: {seen.errors}"


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until `check()` holds (what the page asked for is recorded as it goes)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def no_request(page, matches: Callable[[Any], bool], seconds: float) -> None:
    """The page sends no request that `matches` for `seconds`."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    with pytest.raises(PlaywrightTimeout):
        request = await page.wait_for_event("request", predicate=matches, timeout=seconds * 1000)
        print(f"unexpected: {request.method} {request.url}")


async def never(page, condition: str, seconds: float) -> None:
    """`condition` (JavaScript) does not become true in the page for `seconds`."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    with pytest.raises(PlaywrightTimeout):
        await page.wait_for_function(condition, timeout=seconds * 1000)


async def events_following(page) -> None:
    await page.wait_for_function("window.causerie?.watching === 'events'")


# ---- the list of spaces ------------------------------------------------------------------------


async def test_index_lists_spaces_live_first(browser, tmp_path: Path) -> None:
    # A node of its own: the list is every live and scheduled space on the node.
    async with (
        run_node(tmp_path / "data", trusted_proxies=("127.0.0.1",)) as own,
        httpx.AsyncClient(base_url=own.url, timeout=15) as http,
    ):
        api = Api(own, http)
        later = await api.space(
            "Next week's chat",
            start=False,
            scheduled_start=(datetime.now(UTC) + timedelta(days=2)).isoformat(),
        )
        demo = await api.space(XSS_TITLE)
        busy = await api.space("The busy one")
        await api.join(demo["id"])
        await api.crowd(busy["id"], 1234)
        async with phone(browser) as (page, _):
            await page.goto(own.url + "/")
            items = page.locator("#spaces li")
            await items.first.wait_for()
            assert await items.count() == 3
            hrefs = [await items.nth(i).locator("a").get_attribute("href") for i in range(3)]
            # Live (busiest first), then scheduled.
            assert hrefs == [f"/s/{busy['id']}", f"/s/{demo['id']}", f"/s/{later['id']}"]
            badges = await page.locator("#spaces .badge").all_text_contents()
            assert badges == ["Live", "Live", "Scheduled"]
            # A thousand and more, as the listener's locale writes it (a sketch counts them).
            busiest = await items.nth(0).locator(".listeners").text_content()
            assert re.fullmatch(r"1,2\d\d listening now", busiest), busiest
            assert await items.nth(1).locator(".listeners").text_content() == "1 listening now"
            assert await items.nth(1).locator(".host").text_content() == "with Ada"
            # A title that looks like HTML is shown as text.
            assert await items.nth(1).locator(".title").text_content() == XSS_TITLE
            assert await page.locator("#spaces img").count() == 0
            summary = await page.locator("#summary").text_content()
            assert summary == "2 spaces live now, 1 coming up."

            await items.nth(1).locator("a").click()
            await page.wait_for_url(f"{own.url}/s/{demo['id']}")


# ---- the listener page: details ------------------------------------------------------------------


async def test_space_page_shows_api_text_as_text(node, api: Api, browser) -> None:
    space = await api.space(XSS_TITLE, description="Bring <b>questions</b>.\nSecond line.")
    await api.join(space["id"])
    async with phone(browser) as (page, seen):
        await page.goto(f"{node.url}/s/{space['id']}")
        await page.locator("#title").filter(has_text="Launch night").wait_for()
        assert await page.locator("#title").text_content() == XSS_TITLE
        assert await page.title() == f"{XSS_TITLE} · causerie"
        assert await page.locator("#space img, #space b").count() == 0
        description = await page.locator("#description").text_content()
        assert description == "Bring <b>questions</b>.\nSecond line."
        assert await page.locator("#badge").text_content() == "Live"
        assert await page.locator("#host").text_content() == "Hosted by Ada"
        assert await page.locator("#host-controls").is_hidden()  # no host link, no host card
        assert await page.locator("#listeners").text_content() == "1 listening now"
        assert await page.locator("#listeners").get_attribute("aria-live") == "polite"
        playlist = await page.locator("#playlist").input_value()
        assert playlist == f"{node.url}/hls/{space['id']}/main.m3u8"
        assert await page.locator("#play").is_enabled()

        # refresh() reads the details again, at once.
        await events_following(page)
        details = f"/api/spaces/{space['id']}"
        assert seen.count("GET", details) == 1  # read once, then the feed
        await api.join(space["id"])
        async with page.expect_request(request_to("GET", details)):
            await page.evaluate("window.causerie.refresh()")
        await page.locator("#listeners").filter(has_text="2 listening now").wait_for()
        assert seen.count("GET", details) == 2


async def test_play_joins_with_backoff_plays_and_sends_heartbeats(browser, tmp_path: Path) -> None:
    # Heartbeats every second (the default is 15 s).
    async with (
        run_node(tmp_path / "data", heartbeat_interval=1.0) as own,
        httpx.AsyncClient(base_url=own.url, timeout=15) as http,
    ):
        space = await Api(own, http).space("Listen in")
        join = f"/api/spaces/{space['id']}/join"
        heartbeat = f"/api/spaces/{space['id']}/heartbeat"
        async with phone(browser) as (page, seen):
            # The node is overloaded for the first join: 503 with Retry-After, as it would
            # answer under a storm (admission control).
            refused: list[float] = []

            async def overloaded_once(route) -> None:
                if refused:
                    await route.continue_()
                    return
                refused.append(time.monotonic())
                await route.fulfill(
                    status=503,
                    headers={"Retry-After": "1"},
                    json={"error": "overloaded", "message": "Too many people are joining."},
                )

            await page.route(f"**{join}", overloaded_once)
            await page.goto(f"{own.url}/s/{space['id']}")
            play = page.locator("#play")
            await play.and_(page.locator(":enabled")).wait_for()

            # Keyboard only: focus the button and press Enter.
            await play.focus()
            async with page.expect_request(lambda r: r.url.endswith(join) and refused) as second:
                await page.keyboard.press("Enter")
            await page.wait_for_function("window.causerie?.state.phase === 'playing'")
            # The page waited at least what Retry-After asked before joining again.
            assert time.monotonic() - refused[0] >= 1.0
            assert (await second.value).method == "POST"
            assert seen.count("POST", join) == 2
            assert await page.evaluate("window.causerie.state.joinAttempts") == 2

            # Sound plays, with dash.js: the audio element's clock advances.
            await page.wait_for_function("window.causerie?.audio.currentTime > 1.5", timeout=20_000)
            assert await page.evaluate("window.causerie.dash !== null")
            assert await page.locator("#player").get_attribute("data-player") == "dash.js"
            assert not await page.evaluate("window.causerie.audio.paused")

            # Heartbeats every heartbeat_interval, with the token from the join.
            await page.wait_for_function("window.causerie?.state.heartbeatsSent >= 2")
            await seen.settled()
            token = await page.evaluate("window.causerie.state.token")
            beats = [a for a in seen.answered if a.path == heartbeat]
            assert [(a.status, a.authorization) for a in beats[:2]] == [
                (204, f"Bearer {token}"),
                (204, f"Bearer {token}"),
            ]

            # The delay behind live is shown.
            behind = re.compile(r"^\d+\.\d s behind live$")
            await page.locator("#latency").filter(has_text=behind).wait_for()
            assert await play.get_attribute("aria-label") == "Stop listening"

            # Stop: sound stops and so do heartbeats.
            await play.click()
            await page.wait_for_function("window.causerie?.state.phase === 'idle'")
            assert await page.evaluate("window.causerie.audio.paused")
            assert await page.evaluate("window.causerie.player") is None
            await no_request(page, request_to("POST", heartbeat), seconds=1.5)


async def test_expired_token_is_renewed(browser, tmp_path: Path) -> None:
    # Listener tokens that last two seconds, heartbeats every second: the first token expires
    # while the page plays.
    async with (
        run_node(tmp_path / "data", heartbeat_interval=1.0, listener_token_ttl=2) as own,
        httpx.AsyncClient(base_url=own.url, timeout=15) as http,
    ):
        space = await Api(own, http).space("Short tokens")
        heartbeat = f"/api/spaces/{space['id']}/heartbeat"
        async with phone(browser) as (page, seen):
            await page.goto(f"{own.url}/s/{space['id']}")
            await page.locator("#play:enabled").click()
            await page.wait_for_function("window.causerie?.state.phase === 'playing'")
            first = await page.evaluate("window.causerie.state.token")

            def renewed() -> bool:
                beats = [a for a in seen.answered if a.path == heartbeat]
                refused = [i for i, a in enumerate(beats) if a.status == 401]
                return bool(refused) and any(
                    a.status == 204 and a.authorization != f"Bearer {first}"
                    for a in beats[refused[0] :]
                )

            await until(renewed, timeout=15)
            beats = [a for a in seen.answered if a.path == heartbeat]
            # The refused heartbeat carried the first token; the page joined again and went on
            # with the new one.
            refused = next(a for a in beats if a.status == 401)
            assert refused.authorization == f"Bearer {first}"
            assert seen.count("POST", f"/api/spaces/{space['id']}/join") >= 2
            now = await page.evaluate("window.causerie.state.token")
            assert now != first
            assert await page.evaluate("window.causerie.state.phase") == "playing"


async def test_volume_control(node, api: Api, browser) -> None:
    space = await api.space("Loud")
    async with phone(browser) as (page, _):
        await page.goto(f"{node.url}/s/{space['id']}")
        volume = page.get_by_label("Volume")
        await volume.fill("0.3")
        assert await page.evaluate("window.causerie.audio.volume") == pytest.approx(0.3)
        # Remembered for the next visit.
        await page.reload()
        await page.locator("#badge").filter(has_text="Live").wait_for()
        assert await volume.input_value() == "0.3"


async def test_scheduled_space_says_when_and_plays_once_live(node, api: Api, browser) -> None:
    space = await api.space("Tomorrow", start=False)
    async with phone(browser) as (page, _):
        await page.goto(f"{node.url}/s/{space['id']}")
        notice = page.locator("#notice")
        await notice.filter(has_text="hasn't started yet").wait_for()
        assert await page.locator("#badge").text_content() == "Scheduled"
        assert await page.locator("#play").is_disabled()
        assert await page.locator("#elsewhere").is_hidden()

        # It goes live: the page says so (the live events bring it), and play works.
        await api.call("POST", f"/api/spaces/{space['id']}/start", api.host)
        await (
            page.locator("#status")
            .filter(has_text="The space is live")
            .wait_for(timeout=LIVE_WITHIN)
        )
        assert await page.locator("#play").is_enabled()
        assert await notice.is_hidden()
        assert await page.locator("#badge").text_content() == "Live"


async def test_a_missing_segment_reads_the_manifest_again(node, api: Api, browser) -> None:
    """A 404 for a segment means the run changed (a failover: a new Period, new URLs) or the
    space ended: the page has dash.js read the manifest at once."""
    space = await api.space("Failing over")
    manifest = f"/dash/{space['id']}/manifest.mpd"
    refused: list[str] = []

    async def one_missing(route) -> None:
        if refused:
            await route.continue_()
            return
        refused.append(route.request.url)
        await route.fulfill(status=404, json={"error": "not_found", "message": "No such run."})

    async with phone(browser) as (page, seen):
        await page.goto(f"{node.url}/s/{space['id']}")
        await page.locator("#play:enabled").click()
        await page.wait_for_function(
            "window.causerie.dash !== null && window.causerie.audio.currentTime > 0.5",
            timeout=20_000,
        )
        manifests = seen.count("GET", manifest)
        await page.route(f"**/dash/{space['id']}/*/*.m4s", one_missing)
        await until(lambda: bool(refused), timeout=10)
        missed_at = time.monotonic()
        await until(lambda: seen.count("GET", manifest) > manifests, timeout=3)
        assert time.monotonic() - missed_at < 1.5  # at once, not at the next minute's update
        # And it plays on.
        played = await page.evaluate("window.causerie.audio.currentTime")
        await page.wait_for_function(
            f"window.causerie.audio.currentTime > {played + 1}", timeout=10_000
        )


async def test_listening_until_the_space_ends(node, api: Api, browser) -> None:
    """dash.js plays what it has, then stops: the feed says the space ended and the page asks
    the manifest again (its final form ends the Period), without waiting for dash.js's own
    update a minute later."""
    space = await api.space("To the end")
    manifest = f"/dash/{space['id']}/manifest.mpd"
    async with phone(browser) as (page, seen):
        await page.goto(f"{node.url}/s/{space['id']}")
        await page.locator("#play:enabled").click()
        await page.wait_for_function(
            "window.causerie.dash !== null && window.causerie.audio.currentTime > 1",
            timeout=20_000,
        )
        manifests = seen.count("GET", manifest)
        await api.call("POST", f"/api/spaces/{space['id']}/end", api.host)
        await page.locator("#badge").filter(has_text="Ended").wait_for(timeout=LIVE_WITHIN)
        await until(lambda: seen.count("GET", manifest) > manifests, timeout=5)
        await page.wait_for_function("window.causerie.state.phase === 'idle'")
        # The last second plays out, then the stream is let go.
        await page.wait_for_function(
            "window.causerie.audio.paused || window.causerie.audio.ended", timeout=20_000
        )
        assert await page.locator("#play").is_hidden()


async def test_ended_space_says_so(node, api: Api, browser) -> None:
    space = await api.space("Over")
    await api.call("POST", f"/api/spaces/{space['id']}/end", api.host)
    async with phone(browser) as (page, _):
        await page.goto(f"{node.url}/s/{space['id']}")
        await page.locator("#notice").filter(has_text="has ended").wait_for()
        assert await page.locator("#play").is_hidden()
        assert await page.locator("#play").is_disabled()
        assert await page.locator("#stage").is_hidden()  # nobody is on the stage of a past space


async def test_unknown_space_is_not_found(node, browser) -> None:
    async with phone(browser) as (page, seen):
        await page.goto(f"{node.url}/s/nope")
        await page.locator("#title").filter(has_text="Space not found").wait_for()
        assert await page.locator("#notice").is_visible()
        assert await page.locator("#play").is_disabled()
        # The details said 404: the page stops asking (and never follows a feed).
        await page.wait_for_function("window.causerie.watching === 'stopped'")
        await no_request(page, lambda r: "/nope" in r.url, seconds=1.5)
        asked = [(s.method, s.path) for s in seen.sent if s.path.startswith(("/api/", "/feed/"))]
        assert asked == [("GET", "/api/settings"), ("GET", "/api/spaces/nope")]


async def test_retry_helpers(node, browser) -> None:
    async with phone(browser) as (page, _):
        await page.goto(node.url + "/")
        result = await page.evaluate(
            """async () => {
            const api = await import("/static/api.js");
            const date = api.retryAfterSeconds(new Date(Date.now() + 3000).toUTCString());
            const delays = Array.from({ length: 200 }, () => api.backoffSeconds(3));
            let notFoundTries = 0;
            let notFound = null;
            try {
                await api.withRetry(async () => {
                    notFoundTries += 1;
                    throw new api.ApiError(404, "not_found", "gone", null);
                });
            } catch (error) {
                notFound = error.code;
            }
            let busyTries = 0;
            const value = await api.withRetry(async () => {
                busyTries += 1;
                if (busyTries < 3) throw new api.ApiError(503, "overloaded", "busy", 0);
                return "joined";
            });
            return {
                seconds: api.retryAfterSeconds("2"),
                date,
                missing: api.retryAfterSeconds(null),
                minDelay: Math.min(...delays),
                maxDelay: Math.max(...delays),
                afterRetryAfter: api.retryDelaySeconds({ retryAfter: 5 }, 0),
                notFound, notFoundTries, value, busyTries,
            };
        }"""
        )
    assert result["seconds"] == 2
    assert 1 <= result["date"] <= 3  # an HTTP date has whole seconds
    assert result["missing"] is None
    # Full jitter: anywhere from 0 up to base·2^attempt (0.5·8 = 4 s), not all the same.
    assert 0 <= result["minDelay"] < 1 and 3 < result["maxDelay"] < 4
    assert 5 <= result["afterRetryAfter"] < 5.5  # at least what Retry-After asks
    assert (result["notFound"], result["notFoundTries"]) == ("not_found", 1)  # never retried
    assert (result["value"], result["busyTries"]) == ("joined", 3)


async def test_stage_shows_who_is_on_stage(node, api: Api, browser) -> None:
    space = await api.space("On stage")
    await api.with_cohost(space["id"])
    basile = await api.speaker(space["id"], XSS_NAME)
    base = f"/api/spaces/{space['id']}"
    await api.call("PUT", f"{base}/stage/{basile.id}/muted", api.host, json={"muted": True})
    async with phone(browser) as (page, _):
        await page.goto(f"{node.url}/s/{space['id']}")
        stage = page.get_by_role("region", name="On stage")
        await stage.wait_for()
        people = stage.get_by_role("listitem")
        assert await people.count() == 3
        assert await stage.locator(".person-name").all_text_contents() == ["Ada", "Cy", XSS_NAME]
        roles = await stage.locator(".person-role").all_text_contents()
        assert roles == ["Host", "Co-host", "Speaker"]
        assert await stage.locator("i").count() == 0  # a name that looks like HTML stays text
        # Only the muted speaker carries the marker, in words (not just an icon).
        assert await stage.locator(".person-muted:visible").count() == 1
        assert "Muted" in await people.nth(2).inner_text()
        assert "Muted" not in await people.nth(0).inner_text()

        # It follows the space: someone leaves the stage.
        await api.call("DELETE", f"{base}/stage/{basile.id}", api.host)
        await page.wait_for_function(
            "document.querySelectorAll('#stage-list li').length === 2", timeout=LIVE_WITHIN
        )

        # Nobody is "on stage" in a space that is over.
        await api.call("POST", f"{base}/end", api.host)
        await page.locator("#badge").filter(has_text="Ended").wait_for(timeout=LIVE_WITHIN)
        assert await page.locator("#stage").is_hidden()


# ---- the host card -------------------------------------------------------------------------------


async def test_host_link_starts_and_ends_the_space(node, api: Api, browser) -> None:
    space = await api.space("Hosted here", start=False)
    base = f"/api/spaces/{space['id']}"
    token = api.token(api.host)
    async with phone(browser) as (page, seen):
        await page.goto(f"{node.url}/s/{space['id']}#host={token}")
        card = page.get_by_role("region", name="Host controls")
        await card.wait_for()
        # The token leaves the address bar (so copying the URL does not share it), not the tab.
        assert page.url == f"{node.url}/s/{space['id']}"
        stored = await page.evaluate(f"sessionStorage.getItem('causerie.host.{space['id']}')")
        assert stored == token
        assert await page.evaluate("window.causerie.state.hosting") is True
        assert token not in await page.content()
        await page.reload()
        await card.wait_for()

        await card.get_by_role("button", name="Go live").click()
        await page.locator("#badge").filter(has_text="Live").wait_for()
        await seen.settled()
        started = seen.requests("POST", f"{base}/start")
        assert [sent.headers.get("authorization") for sent in started] == [f"Bearer {token}"]
        assert await card.get_by_role("status").text_content() == "You're live."
        assert await page.locator("#play").is_enabled()

        # A stale copy of the details (read before the click, or an edge's cached one) does
        # not undo it: the node's own scheduled details, served once more.
        async def stale(route) -> None:
            await route.fulfill(json=space)

        await page.route(f"**{base}", stale)
        async with page.expect_response(lambda r: urlsplit(r.url).path == base):
            await page.evaluate("window.causerie.refresh()")
        assert await page.locator("#badge").text_content() == "Live"
        await page.unroute(f"**{base}", stale)

        # Ending asks first; Cancel (which has the focus) backs out, Escape too.
        await card.get_by_role("button", name="End space").click()
        cancel = card.get_by_role("button", name="Cancel")
        assert await cancel.evaluate("button => button === document.activeElement")
        await cancel.click()
        await card.get_by_role("button", name="End space").click()
        await page.keyboard.press("Escape")
        assert await card.get_by_role("button", name="Yes, end it").count() == 0
        assert seen.count("POST", f"{base}/end") == 0

        await card.get_by_role("button", name="End space").click()
        await card.get_by_role("button", name="Yes, end it").click()
        await page.locator("#badge").filter(has_text="Ended").wait_for()
        await seen.settled()
        ended = seen.requests("POST", f"{base}/end")
        assert [sent.headers.get("authorization") for sent in ended] == [f"Bearer {token}"]
        assert await card.get_by_role("status").text_content() == "The space has ended."
        assert await card.get_by_role("button").count() == 0
    assert (await api.call("GET", base))["state"] == "ended"


async def test_host_errors_are_shown_politely(node, api: Api, browser) -> None:
    live = await api.space("Co-hosted")
    await api.with_cohost(live["id"])
    later = await api.space("Not yet", start=False)
    # A co-host may start a space but not end it: the node's 403 message is shown in the card.
    refused = await api.http.post(f"/api/spaces/{live['id']}/end", headers=api.cohost)
    assert refused.status_code == 403
    why = refused.json()["message"]
    sentence = why[0].upper() + why[1:] + ("" if why.endswith(".") else ".")
    async with phone(browser) as (page, _):
        await page.goto(f"{node.url}/s/{live['id']}#host={api.token(api.cohost)}")
        card = page.get_by_role("region", name="Host controls")
        await card.get_by_role("button", name="End space").click()
        await card.get_by_role("button", name="Yes, end it").click()
        status = card.get_by_role("status")
        await status.filter(has_text="Couldn't end the space").wait_for()
        assert await status.text_content() == (
            f"Couldn't end the space: your host link doesn't allow it. {sentence}"
        )
        assert await page.locator("#badge").text_content() == "Live"
        assert await card.get_by_role("button", name="End space").is_enabled()

        # A bad token: 401, said as such.
        await page.goto(f"{node.url}/s/{later['id']}#host=nonsense")
        await card.get_by_role("button", name="Go live").click()
        await status.filter(has_text="this host link isn't valid").wait_for()
        assert await page.locator("#badge").text_content() == "Scheduled"


async def test_no_host_controls_without_a_host_link(node, api: Api, browser) -> None:
    space = await api.space("Just listening", start=False)
    async with phone(browser) as (page, _):
        await page.goto(f"{node.url}/s/{space['id']}#something-else")
        await page.locator("#badge").filter(has_text="Scheduled").wait_for()
        assert await page.locator("#host-controls").is_hidden()
        assert await page.evaluate("window.causerie.state.hosting") is False
        assert page.url.endswith("#something-else")  # other fragments are left alone


# ---- live events -------------------------------------------------------------------------------


class Relay:
    """A TCP relay in front of a node, as an edge or a load balancer is: it can cut every open
    connection (a restart, a proxy's timeout), hold new ones back, and send them to another
    node."""

    def __init__(self, upstream: str) -> None:
        self.port = 0
        self._upstream = urlsplit(upstream).port
        self._open: set[asyncio.StreamWriter] = set()
        self._passing = asyncio.Event()
        self._passing.set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        await self._passing.wait()
        if writer.is_closing():  # cut while held
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        except OSError:
            writer.close()
            return
        self._open.add(up_writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open.difference_update({writer, up_writer})

    def cut(self, *, hold: bool = False) -> None:
        """Close every connection; with `hold`, new ones wait for `let_through()`."""
        if hold:
            self._passing.clear()
        for writer in list(self._open):
            writer.close()

    def let_through(self, upstream: str) -> None:
        self._upstream = urlsplit(upstream).port
        self._passing.set()

    async def close(self) -> None:
        self.cut()
        self._passing.set()  # what was held ends (its connection is closed)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def windows_asked(seen: Seen) -> list[int]:
    """The feed windows a page asked for, in order."""
    return [int(m[1]) for sent in seen.sent if (m := FEED_WINDOW.match(sent.path))]


async def test_space_page_follows_live_events_without_polling(browser, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with phone(browser) as (page, seen):
        await page.add_init_script(COUNT_EVENT_SOURCES_JS)
        async with run_node(data) as first, httpx.AsyncClient(base_url=first.url) as http:
            api = Api(first, http)
            space = await api.space("Launch night")
            basile = await api.speaker(space["id"], "Basile")
            base = f"/api/spaces/{space['id']}"
            relay = Relay(first.url)
            url = await relay.start()
            await page.goto(f"{url}/s/{space['id']}")
            await page.locator("#listeners").filter(has_text="1 listening now").wait_for()
            await events_following(page)
            # The details were read once; then the feed: the window in progress, no stream.
            assert seen.count("GET", base) == 1
            assert seen.count("GET", f"/feed/{space['id']}/now") == 1
            assert seen.count("GET", f"{base}/events") == 0
            assert await page.evaluate("window.__eventSources") == 0

            # What the node publishes reaches the page: the listener count…
            await api.join(space["id"])
            await (
                page.locator("#listeners")
                .filter(has_text="2 listening now")
                .wait_for(timeout=LIVE_WITHIN)
            )
            # … and the space's new details.
            await api.call("PATCH", base, api.host, json={"title": "Launch night <b>2</b>"})
            await api.call("DELETE", f"{base}/stage/{basile.id}", api.host)
            title = page.locator("#title").filter(has_text="Launch night <b>2</b>")
            await title.wait_for(timeout=LIVE_WITHIN)
            assert await page.locator("#space b").count() == 0  # pushed text is text too
            await page.wait_for_function(
                "document.querySelectorAll('#stage-list li').length === 1", timeout=LIVE_WITHIN
            )

            # The connection drops (an edge restarts, say): the page asks for the window again
            # and gets what it missed meanwhile, nothing twice, without reading the details.
            before = windows_asked(seen)
            async with page.expect_request(
                lambda r: FEED_WINDOW.match(urlsplit(r.url).path) is not None, timeout=10_000
            ):
                relay.cut()
                await api.call("PATCH", base, api.host, json={"title": "While away"})
            await page.locator("#title").filter(has_text="While away").wait_for(timeout=LIVE_WITHIN)
            again = windows_asked(seen)[len(before) :]
            assert again and again[0] in (before[-1], before[-1] + 1), (before, again)
            assert seen.count("GET", base) == 1

            # The node restarts: its in-process events start over, so the window in progress
            # says that what came before may be missing (or is gone: 410). A change made just
            # before is read with the details.
            relay.cut(hold=True)
            await api.call("PATCH", base, api.host, json={"title": "Read again"})
        async with run_node(data) as second, httpx.AsyncClient(base_url=second.url) as http:
            api = Api(second, http)
            relay.let_through(second.url)
            await page.locator("#title").filter(has_text="Read again").wait_for(timeout=15_000)

            # The space ends.
            await api.call("POST", f"{base}/end", api.host)
            await page.locator("#badge").filter(has_text="Ended").wait_for(timeout=LIVE_WITHIN)
            await page.locator("#notice").filter(has_text="has ended").wait_for()
            assert await page.locator("#play").is_hidden()
            assert await page.locator("#play").is_disabled()

            # Read again after the restart (the reset line, or a 410 for a window the node no
            # longer has), perhaps polled while the node was away: a few reads, no more.
            reads = seen.count("GET", base)
            assert 2 <= reads <= 4, [(s.method, s.path) for s in seen.sent]
            # Longer than the polling period: no other read of the details, no event stream.
            await no_request(page, lambda r: base in r.url, seconds=6)
            assert seen.count("GET", base) == reads
            assert seen.count("GET", f"{base}/events") == 0
            assert await page.evaluate("window.causerie.watching") == "events"
            await relay.close()  # the page's window ends here, and the node can stop


@pytest.mark.parametrize("status", [404, 500])
async def test_space_page_polls_when_the_feed_fails(node, api: Api, browser, status: int) -> None:
    space = await api.space("No feed here")
    base = f"/api/spaces/{space['id']}"
    async with phone(browser) as (page, seen):
        # Something between the browser and the node refuses the feed.
        await page.route(
            f"**/feed/{space['id']}/**",
            lambda route: route.fulfill(
                status=status, json={"error": "unavailable", "message": "No feed here."}
            ),
        )
        await page.goto(f"{node.url}/s/{space['id']}")
        await page.locator("#listeners").filter(has_text="0 listening now").wait_for()
        await page.wait_for_function("window.causerie.watching === 'polling'")
        assert seen.count("GET", base) == 1  # read once, before the feed

        # Changes reach the page by polling, without refresh().
        await api.call("PATCH", base, api.host, json={"title": "Polled"})
        await api.join(space["id"])
        await page.locator("#listeners").filter(has_text="1 listening now").wait_for(timeout=10_000)
        assert await page.locator("#title").text_content() == "Polled"
        assert seen.count("GET", base) >= 2
        # The feed is retried politely: waits of about 1, 2, 4, 8 s (jittered).
        tries = seen.count("GET", f"/feed/{space['id']}/now")
        assert 1 <= tries <= 6, tries


FOLLOW_JS = """async ({ id, seconds }) => {
    const feed = await import("/static/feed.js");
    window.seen = [];
    window.resyncs = 0;
    window.follower = feed.followSpace(
        id,
        (space) => window.seen.push(`space ${space.title}`),
        (error) => window.seen.push(`error ${error.status}`),
        {
            interval: 0.5, retry: 0.2, maxRetry: 1, silence: seconds,
            on: { questions: (data) => window.seen.push(`questions ${data.n}`) },
            onResync: () => { window.resyncs += 1; },
        },
    );
}"""


def ndjson(*lines: dict) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


async def test_follow_space_resumes_without_repeats_and_reads_again_when_told(
    node, api: Api, browser
) -> None:
    """followSpace itself, against a feed made up at the browser's edge with short windows: a
    window cut short is read again without repeating its events; empty lines are nothing; a
    `reset` line and a 410 read the details again; a stream that never delivers is given up,
    and the details polled meanwhile."""
    followed = await api.space("Followed")
    other = await api.space("Where the page is", start=False)
    seconds = 2
    first = int(time.time() // seconds) + 1  # the next window: the page asks for it as it starts
    served: dict[int, int] = {}  # window → times asked
    held = []

    def question(n: int, window: int) -> dict:
        return {"id": n, "type": "questions", "at": window * seconds + 0.1, "data": {"n": n}}

    end = {"type": "end", "next": first + 1}
    answers: dict[int, list] = {
        first: [  # cut short (no end line), then whole, with an empty line
            ndjson(question(1, first)),
            ndjson(question(1, first)) + "\n" + ndjson(question(2, first), end),
        ],
        # Events before the reset line may be missing (it is far ahead of any details read).
        first + 1: [
            ndjson(
                {"type": "reset", "at": time.time() + 3600},
                question(3, first + 1),
                {"type": "end", "next": first + 2},
            )
        ],
        first + 2: [410],
    }

    async def feed(route) -> None:
        path = urlsplit(route.request.url).path
        if FEED_NOW.match(path):
            window = max(first, int(time.time() // seconds))
            await route.fulfill(json={"window": window, "seconds": seconds})
            return
        number = int(FEED_WINDOW.match(path)[1])
        served[number] = served.get(number, 0) + 1
        queue = answers.get(number)
        if not queue:
            held.append(route)  # opens and never delivers
            return
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if answer == 410:
            await route.fulfill(status=410, json={"error": "gone", "message": "Gone."})
        else:
            await route.fulfill(status=200, body=answer, content_type="application/x-ndjson")

    async with phone(browser) as (page, seen):
        await page.route(f"**/feed/{followed['id']}/**", feed)
        await page.goto(f"{node.url}/s/{other['id']}")
        await page.evaluate(FOLLOW_JS, {"id": followed["id"], "seconds": seconds})
        details = f"/api/spaces/{followed['id']}"

        # The details, then window `first` (cut short, read again: event 1 once), then the next.
        await page.wait_for_function("window.seen.includes('questions 3')", timeout=10_000)
        got = await page.evaluate("window.seen")
        assert got[:3] == ["space Followed", "questions 1", "questions 2"], got
        assert served[first] == 2
        # The reset line: the details are read again.
        await page.wait_for_function("window.resyncs >= 1")
        # Window first + 2 is gone (410): read again, then on from the window in progress.
        await page.wait_for_function("window.resyncs >= 2", timeout=10_000)
        await until(lambda: seen.count("GET", f"/feed/{followed['id']}/now") >= 2, timeout=10)
        assert seen.count("GET", details) >= 3
        # From there, windows that open and never deliver: given up after `silence`, and the
        # details polled meanwhile.
        reads = seen.count("GET", details)
        await page.wait_for_function("window.follower.mode === 'polling'", timeout=15_000)
        await until(lambda: seen.count("GET", details) > reads, timeout=10)

        await page.evaluate("window.follower.stop()")
        assert await page.evaluate("window.follower.mode") == "stopped"
        got = await page.evaluate("window.seen")
        assert [s for s in got if s.startswith("questions")] == [
            "questions 1",
            "questions 2",
            "questions 3",
        ]
        assert not [s for s in got if s.startswith("error")], got
        for route in held:
            await route.abort()


async def test_watch_space_falls_back_to_polling_and_back(node, api: Api, browser) -> None:
    """watchSpace itself, with short timings: the ways a stream fails, and its return."""
    busy = await api.space("Followed")
    other = await api.space("Where the page is", start=False)
    events = f"/api/spaces/{busy['id']}/events"
    details = f"/api/spaces/{busy['id']}"
    mode = "hangup"
    held = []  # the streams that never answer ("silent")

    async def stream(route) -> None:
        if mode == "hangup":  # a 200 that ends at once: the browser comes back, again…
            await route.fulfill(
                status=200, headers={"Content-Type": "text/event-stream"}, body="retry: 100\n\n"
            )
        elif mode == "live":
            await route.continue_()
        else:  # opens and never delivers (a proxy that buffers it)
            held.append(route)

    async with phone(browser) as (page, seen):
        await page.route(f"**{events}", stream)
        await page.goto(f"{node.url}/s/{other['id']}")
        await page.evaluate(
            """async (id) => {
            const api = await import("/static/api.js");
            window.seen = [];
            window.watcher = api.watchSpace(
                id,
                (space) => window.seen.push(space.listeners_now),
                (error) => window.seen.push(`error ${error.status}`),
                { interval: 0.3, retry: 1, silence: 2 },
            );
        }""",
            busy["id"],
        )
        watching = "window.watcher.mode"
        reads = lambda: seen.count("GET", details)  # noqa: E731

        # A stream that hangs up at once, again and again: after three tries, polling.
        await page.wait_for_function(f"{watching} === 'polling'")
        assert seen.count("GET", events) == 3
        await until(lambda: reads() >= 3)

        # The stream works again: the next try (after a second or so) takes over from polling.
        mode = "live"
        await page.wait_for_function(f"{watching} === 'events'", timeout=10_000)
        await no_request(page, request_to("GET", details), seconds=1.3)
        await api.join(busy["id"])
        await page.wait_for_function("window.seen.at(-1) === 1", timeout=LIVE_WITHIN)

        # Nothing to say for a while (a quiet space): after `silence`, a fresh stream, whose
        # snapshot shows all is well. No polling meanwhile.
        streams, delivered = seen.count("GET", events), await page.evaluate("window.seen.length")
        await until(lambda: seen.count("GET", events) > streams, timeout=5)
        await page.wait_for_function(f"window.seen.length > {delivered}")
        assert await page.evaluate(watching) == "events"
        polled = reads()

        # A stream that opens but never delivers: polling meanwhile, and after `silence` it
        # counts as failed.
        mode = "silent"
        await until(lambda: reads() > polled, timeout=6)
        assert await page.evaluate(watching) == "connecting"
        await page.wait_for_function(f"{watching} === 'polling'", timeout=6000)

        await page.evaluate("window.watcher.stop()")
        assert await page.evaluate(watching) == "stopped"
        await no_request(page, request_to("GET", details), seconds=1.3)
        assert not [s for s in await page.evaluate("window.seen") if isinstance(s, str)]
        for route in held:
            with contextlib.suppress(Exception):  # the page may have given it up already
                await route.abort()


# ---- the audience: questions, reactions, a raised hand, before and after ------------------------


async def question_texts(page) -> list[str]:
    return await page.locator("#question-list .question-text").all_text_contents()


async def wait_for_questions(page, texts: list[str]) -> None:
    await page.wait_for_function(
        """(expected) => JSON.stringify(Array.from(
            document.querySelectorAll('#question-list .question-text'), (p) => p.textContent))
            === JSON.stringify(expected)""",
        arg=texts,
        timeout=LIVE_WITHIN,
    )


async def test_questions_are_text_follow_events_and_take_votes(node, api: Api, browser) -> None:
    space = await api.space("Questions")
    base = f"/api/spaces/{space['id']}"
    pinned, _ = await api.ask(space["id"], "Pinned one")
    xss, _ = await api.ask(space["id"], XSS_QUESTION, name=XSS_NAME)
    older, _ = await api.ask(space["id"], "Older, two votes")
    newer, _ = await api.ask(space["id"], "Newer, two votes")
    answered, _ = await api.ask(space["id"], "Answered")
    for question, votes in ((pinned, 1), (xss, 5), (older, 2), (newer, 2), (answered, 9)):
        await api.votes(space["id"], question["id"], votes)
    await api.moderate(space["id"], pinned["id"], "pin")
    await api.moderate(space["id"], answered["id"], "answer")

    async with phone(browser) as (page, seen):
        await page.goto(f"{node.url}/s/{space['id']}")
        card = page.get_by_role("region", name=re.compile("^Questions"))
        await card.locator(".question").first.wait_for()
        # The pin and the answer reach the page as soon as they are published (once a second).
        await wait_for_questions(
            page, ["Pinned one", XSS_QUESTION, "Older, two votes", "Newer, two votes", "Answered"]
        )
        assert await card.locator("script, b, i").count() == 0  # questions and names stay text
        authors = await card.locator(".question-author").all_text_contents()
        assert authors[1] == XSS_NAME
        flags = await card.locator(".question-flag:visible").all_text_contents()
        assert flags == ["Now answering", "Answered"]
        await events_following(page)

        # Changes arrive as events: the newer one gets votes and climbs, the pinned one is
        # hidden and goes.
        await api.votes(space["id"], newer["id"], 5)
        await api.moderate(space["id"], pinned["id"], "hide")
        await wait_for_questions(
            page, ["Newer, two votes", XSS_QUESTION, "Older, two votes", "Answered"]
        )
        assert seen.count("POST", f"{base}/join") == 0  # reading needs no token

        # Asking: the page joins once, with the display name, and posts with that token.
        await card.get_by_label("Your name").fill("Zoé")
        await card.get_by_label("Your question").fill("  How do replays work?  ")
        await card.get_by_role("button", name="Ask").click()
        await card.get_by_role("status").filter(has_text="Your question is in").wait_for()
        await seen.settled()
        joins = seen.requests("POST", f"{base}/join")
        assert [json.loads(sent.body) for sent in joins] == [{"name": "Zoé"}]
        token = await page.evaluate("window.causerie.state.token")
        asked = seen.requests("POST", f"{base}/questions")
        assert [(json.loads(s.body), s.headers.get("authorization")) for s in asked] == [
            ({"text": "How do replays work?"}, f"Bearer {token}")
        ]
        mine = card.locator(".question", has_text="How do replays work?")
        assert await mine.locator(".question-author").text_content() == "Zoé (you)"
        assert await card.get_by_label("Your question").input_value() == ""

        # Upvoting: with the same token, once.
        older_item = card.locator(".question", has_text="Older")
        await older_item.get_by_role("button", name="Upvote, 2 votes").click()
        await older_item.get_by_role("button", name="Upvoted, 3 votes", pressed=True).wait_for()
        await seen.settled()
        voted = seen.requests("POST", f"{base}/questions/{older['id']}/votes")
        assert [sent.headers.get("authorization") for sent in voted] == [f"Bearer {token}"]
        assert seen.count("POST", f"{base}/join") == 1
        # Answered questions take no votes.
        assert await card.locator(".question", has_text="Answered").locator(".vote").is_disabled()

        # Withdrawing one's own question takes two taps.
        mine_id = await mine.get_attribute("data-id")
        await mine.get_by_role("button", name="Withdraw").click()
        await mine.get_by_role("button", name="Tap again to withdraw").click()
        await mine.wait_for(state="detached")
        await seen.settled()
        withdrawn = seen.requests("DELETE", f"{base}/questions/{mine_id}")
        assert [sent.headers.get("authorization") for sent in withdrawn] == [f"Bearer {token}"]

        # The tab keeps its listener token (and its votes): playing after a reload joins no
        # more, and counts this listener at once with a heartbeat.
        await page.reload()
        upvoted = older_item.get_by_role("button", name=re.compile("^Upvoted"), pressed=True)
        await upvoted.wait_for()
        async with page.expect_request(request_to("POST", f"{base}/heartbeat")) as beat:
            await page.locator("#play:enabled").click()
        assert await (await beat.value).header_value("authorization") == f"Bearer {token}"
        assert seen.count("POST", f"{base}/join") == 1


async def test_page_works_without_questions(node, api: Api, browser) -> None:
    space = await api.space("No questions")
    questions = f"/api/spaces/{space['id']}/questions"
    async with phone(browser) as (page, _):
        # A server without the questions API (an older one, or an edge that forbids it).
        await page.route(
            f"**{questions}",
            lambda route: route.fulfill(
                status=404, json={"error": "not_found", "message": "Not here."}
            ),
        )
        await page.goto(f"{node.url}/s/{space['id']}")
        await page.wait_for_function("window.causerie?.questions.unavailable === true")
        await page.locator("#play:enabled").wait_for()
        assert await page.locator("#questions").is_hidden()
        assert await page.locator("#badge").text_content() == "Live"


# Records every `reactions` event the page handles, with how many floated by the end of it.
RECORD_REACTIONS = """() => {
    const reactions = window.causerie.reactions;
    const handle = reactions.handle.bind(reactions);
    window.reactionEvents = [];
    reactions.handle = (data) => {
        window.reactionEvents.push(data.counts);
        handle(data);
    };
}"""


async def react(api: Api, space_id: str, emoji: list[str], people: int) -> None:
    """`people` listeners send `emoji` each, all at once (each at most ten: their burst)."""
    crowd = [await api.join(space_id) for _ in range(people)]
    path = f"/api/spaces/{space_id}/reactions"
    await asyncio.gather(
        *(
            api.call("POST", path, listener.headers, json={"emoji": one})
            for listener in crowd
            for one in emoji
        )
    )


def float_bounds(events: list[dict[str, int]], cap: int) -> tuple[int, int]:
    """How many may float for these events: each event's own count, or about `cap` past it."""
    totals = [sum(counts.values()) for counts in events]
    return (
        sum(min(total, cap - 5) for total in totals),
        sum(min(total, cap) for total in totals),
    )


async def _reactions_published(svc, space_id: str, after: int) -> bool:
    """Whether a `reactions` event came on the space's bus after event `after`."""
    async for event in svc.bus.subscribe(space_id, after, keepalive=0.01):
        if event is None:
            return False
        if event.type == "reactions":
            return True
    return False


async def test_reactions_float_capped_and_gently(node, api: Api, browser) -> None:
    space = await api.space("Clap along")
    settings = (await api.http.get("/api/settings")).json()
    # Reactions before the page opens: the feed's window replays them, the page floats none.
    svc = api.node.app.services
    earlier = await svc.bus.last_id(space["id"])
    await react(api, space["id"], ["👏"] * 3, people=2)
    async with phone(browser) as (page, seen):
        # Published (once a second) before the page opens.
        deadline = time.monotonic() + 5
        while not await _reactions_published(svc, space["id"], earlier):
            assert time.monotonic() < deadline, "the reactions were never published"
            await asyncio.sleep(0.1)
        await page.goto(f"{node.url}/s/{space['id']}")
        tray = page.get_by_role("group", name="React")
        await tray.wait_for()
        buttons = tray.get_by_role("button")
        await page.wait_for_function("document.querySelectorAll('#reaction-tray button').length")
        assert await buttons.count() == len(settings["reactions"])
        await events_following(page)
        await never(page, "window.causerie.reactions.floated > 0", seconds=1.5)
        await page.evaluate(RECORD_REACTIONS)

        # Sixty reactions in a second: at most 30 float per event, in proportion.
        await react(api, space["id"], ["👏"] * 8 + ["🔥"] * 2, people=6)
        await page.wait_for_function(
            "(window.reactionEvents.flat().reduce((n, c) => n + Object.values(c)"
            ".reduce((a, b) => a + b, 0), 0)) >= 60",
            timeout=LIVE_WITHIN,
        )
        events = await page.evaluate("window.reactionEvents")
        least, most = float_bounds(events, 30)
        await page.wait_for_function(f"window.causerie.reactions.floated >= {least}")
        # The floats are spread over the second after their event: no more than the cap come.
        await never(page, f"window.causerie.reactions.floated > {most}", seconds=1.2)
        assert await page.locator("#reaction-layer").get_attribute("aria-hidden") == "true"

        # Sending: one join, then the emoji; one's own floats at once.
        floated = await page.evaluate("window.causerie.reactions.floated")
        async with page.expect_request(request_to("POST", f"/api/spaces/{space['id']}/reactions")):
            await tray.get_by_role("button", name="Fire").click()
        assert await page.evaluate("window.causerie.reactions.floated") == floated + 1
        await seen.settled()
        token = await page.evaluate("window.causerie.state.token")
        sent = seen.requests("POST", f"/api/spaces/{space['id']}/reactions")
        assert [(json.loads(s.body), s.headers.get("authorization")) for s in sent] == [
            ({"emoji": "🔥"}, f"Bearer {token}")
        ]
        assert seen.count("POST", f"/api/spaces/{space['id']}/join") == 1

        # Reduced motion: fewer, and they fade where they are instead of flying.
        await page.emulate_media(reduced_motion="reduce")
        await page.evaluate("window.reactionEvents = []")
        floated = await page.evaluate("window.causerie.reactions.floated")
        await react(api, space["id"], ["👏"] * 10, people=2)
        await page.wait_for_function(
            f"window.causerie?.reactions.floated > {floated}", timeout=LIVE_WITHIN
        )
        animation = await page.locator(".reaction-float").last.evaluate(
            "element => getComputedStyle(element).animationName"
        )
        assert animation == "fade-in-place"
        await page.wait_for_function(
            "(window.reactionEvents.flat().reduce((n, c) => n + Object.values(c)"
            ".reduce((a, b) => a + b, 0), 0)) >= 20",
            timeout=LIVE_WITHIN,
        )
        events = await page.evaluate("window.reactionEvents")
        most = floated + float_bounds(events, 6)[1]
        await never(page, f"window.causerie.reactions.floated > {most}", seconds=1.2)


async def test_stage_shows_who_is_talking_and_a_raised_hand(node, api: Api, browser) -> None:
    space = await api.space("Talk")
    await api.with_cohost(space["id"])
    base = f"/api/spaces/{space['id']}"
    mixer = node.app.services.broadcasts.get(space["id"]).mixer
    async with phone(browser) as (page, seen):
        await page.goto(f"{node.url}/s/{space['id']}")
        await events_following(page)
        # Cy talks (a tone into the space's mixer, as her microphone would send it).
        voice = DemoSpeaker(make_tone(440, 1.0), mixer.add_input("cy").push)
        voice.start()
        try:
            talking = page.locator("#stage-list .person.is-speaking")
            await talking.wait_for(timeout=LIVE_WITHIN)
            assert await talking.locator(".person-name").all_text_contents() == ["Cy"]
            assert "speaking" in await talking.inner_text()
        finally:
            await voice.stop()
            mixer.remove_input("cy")
        await talking.wait_for(state="detached", timeout=LIVE_WITHIN)

        await page.get_by_role("button", name="Request to speak").click()
        await page.get_by_role("button", name="Cancel request").wait_for()
        await seen.settled()
        token = await page.evaluate("window.causerie.state.token")
        raised = seen.requests("POST", f"{base}/speak-requests")
        assert [sent.headers.get("authorization") for sent in raised] == [f"Bearer {token}"]

        # Approved: the stage lists this listener, and the page says where to go.
        me = await page.evaluate("window.causerie.state.listenerId")
        await api.call("POST", f"{base}/speak-requests/{me}/approve", api.host)
        link = page.get_by_role("link", name="open the speaker view")
        await link.wait_for(timeout=LIVE_WITHIN)
        assert await link.get_attribute("href") == f"/s/{space['id']}/speak"
        assert "You're on stage" in await page.locator("#on-stage").text_content()
        assert await page.locator("#hand").is_hidden()


async def test_scheduled_space_counts_down(node, api: Api, browser) -> None:
    in_two_days = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    later = await api.space("In two days", start=False, scheduled_start=in_two_days)
    soon_start = (datetime.now(UTC) + timedelta(seconds=50)).isoformat()
    soon = await api.space("Almost there", start=False, scheduled_start=soon_start)
    async with phone(browser) as (page, _):
        await page.goto(f"{node.url}/s/{later['id']}")
        countdown = page.get_by_role("timer")
        await countdown.filter(has_text=re.compile(r"^Starts in (1 d 23 h|2 d)$")).wait_for()
        calendar = page.get_by_role("link", name="Add to calendar")
        assert await calendar.get_attribute("href") == f"/api/spaces/{later['id']}.ics"

        # In the last minute, seconds.
        await page.goto(f"{node.url}/s/{soon['id']}")
        await countdown.filter(has_text=re.compile(r"^Starts in \d\d s$")).wait_for()
        first = int(re.search(r"\d+", await countdown.text_content()).group())
        await page.wait_for_function(
            """(first) => Number(document.querySelector('[role=timer]').textContent
                .match(/\\d+/)[0]) < first""",
            arg=first,
        )
        # Questions can be asked before the start.
        assert await page.get_by_role("button", name="Ask").is_visible()

        await api.call("POST", f"/api/spaces/{soon['id']}/start", api.host)
        await page.locator("#badge").filter(has_text="Live").wait_for(timeout=LIVE_WITHIN)
        assert await page.locator("#schedule").is_hidden()


async def test_ended_space_offers_replay_download_and_report(
    node, api: Api, browser, recorded: Recorded
) -> None:
    space = recorded.space
    base = f"/api/spaces/{space['id']}"
    # The recording needs real time: what is left of it since the module's first test.
    await asyncio.sleep(max(0.0, RECORD_SECONDS - (time.monotonic() - recorded.started)))
    await api.call("POST", f"{base}/end", api.host)
    unrecorded = await api.space("Off the record", recording=False)
    await api.call("POST", f"/api/spaces/{unrecorded['id']}/end", api.host)
    ended = await api.call("GET", base)
    async with phone(browser) as (page, _):
        await page.goto(f"{node.url}/s/{space['id']}")
        replay = page.get_by_role("region", name="Replay")
        await replay.wait_for()
        download = replay.get_by_role("link", name="Download the recording")
        assert await download.get_attribute("href") == node.url + ended["download_url"]
        report = page.get_by_role("link", name="Report")
        assert await report.get_attribute("href") == f"/s/{space['id']}/report"
        assert await page.locator("#play").is_hidden()

        # The whole recording is seekable, and plays from where it is sought.
        audio = "document.getElementById('replay-audio')"
        await page.wait_for_function(f"{audio}.duration > {RECORD_SECONDS - 3}")
        await page.evaluate(f"{audio}.play()")
        await page.wait_for_function(f"{audio}.currentTime > 0.3")
        seek = RECORD_SECONDS - 6
        await page.evaluate(f"{audio}.currentTime = {seek}")
        await page.wait_for_function(
            f"(() => {{ const a = {audio}; return a.currentTime > {seek + 0.3}"
            f" && a.currentTime < {seek + 5} && !a.paused; }})()",
            timeout=10_000,
        )

        # Without a recording: no replay, still the report.
        await page.goto(f"{node.url}/s/{unrecorded['id']}")
        await page.locator("#badge").filter(has_text="Ended").wait_for()
        await page.get_by_role("link", name="Report").wait_for()
        assert await page.locator("#replay").is_hidden()
        assert await page.locator("#questions").is_hidden()  # nothing was asked


async def test_long_question_lists_show_the_best_first(node, api: Api, browser) -> None:
    space = await api.space("Many questions")
    # Sixty questions, the first asked first (by twenty people, three each: their burst).
    for first in range(0, 60, 3):
        asker = await api.join(space["id"], "Ana")
        for i in range(first, first + 3):
            await api.call(
                "POST",
                f"/api/spaces/{space['id']}/questions",
                asker.headers,
                json={"text": f"Question {i}"},
            )
    async with phone(browser) as (page, _):
        await page.goto(f"{node.url}/s/{space['id']}")
        await page.locator("#question-list .question").first.wait_for()
        assert await page.locator("#question-list .question").count() == 50
        assert await page.locator("#questions-count").text_content() == "(60)"
        assert (await question_texts(page))[0] == "Question 0"
        more = page.get_by_role("button", name="Show more questions (10)")
        await more.click()
        assert await page.locator("#question-list .question").count() == 60
        assert (await question_texts(page))[-1] == "Question 59"
        assert await more.is_hidden()


# ---- the settings: the pages follow whatever the node serves ---------------------------------


async def test_pages_take_their_limits_and_reactions_from_the_settings(
    node, api: Api, browser
) -> None:
    """With other settings than the node's own, every page shows those: nothing is copied."""
    served = (await api.http.get("/api/settings")).json()
    limits = {key: value + 7 for key, value in served["limits"].items()}
    reactions = [{"emoji": "🦆", "name": "Duck"}, *served["reactions"][:2]]
    other = {"limits": limits, "reactions": reactions}
    space = await api.space("Other rules")

    async def serve_other(route) -> None:
        await route.fulfill(json=other, headers={"Cache-Control": "no-store"})

    async with phone(browser) as (page, seen):
        await page.route("**/api/settings", serve_other)
        await page.goto(f"{node.url}/s/{space['id']}")
        tray = page.locator("#reaction-tray button")
        await page.wait_for_function(
            "document.querySelectorAll('#reaction-tray button').length === 3"
        )
        assert await tray.all_text_contents() == [r["emoji"] for r in reactions]
        names = [await button.get_attribute("aria-label") for button in await tray.all()]
        assert names == [r["name"] for r in reactions]
        question = page.get_by_label("Your question")
        assert await question.get_attribute("maxlength") == str(limits["question"])
        assert await page.get_by_label("Your name").get_attribute("maxlength") == str(
            limits["name"]
        )
        counter = page.locator("#question-counter")
        assert await counter.text_content() == f"0/{limits['question']}"
        await question.fill("x" * 10)
        assert await counter.text_content() == f"10/{limits['question']}"
        # A name is kept to the limit once the field is left.
        await page.get_by_label("Your name").fill("n" * (limits["name"] + 3))
        await page.get_by_label("Your name").blur()
        assert len(await page.get_by_label("Your name").input_value()) == limits["name"]
        assert seen.count("GET", "/api/settings") == 1  # read once

        # The studio's forms.
        await page.goto(f"{node.url}/studio#token={api.token(api.host)}")
        await page.get_by_role("heading", name="New space").wait_for()
        title = page.get_by_label("Title")
        await page.wait_for_function(
            f"document.getElementById('create-name').maxLength === {limits['title']}"
        )
        assert await title.get_attribute("maxlength") == str(limits["title"])
        description = page.get_by_label("Description")
        assert await description.get_attribute("maxlength") == str(limits["description"])
        capacity = page.locator("#create-capacity")
        assert await capacity.get_attribute("max") == str(limits["capacity"])
        await title.fill("Too many listeners")
        await capacity.fill(str(limits["capacity"] + 1))
        await page.get_by_role("button", name="Create space").click()
        most = f"{limits['capacity']:,}"
        await page.get_by_text(f"a whole number from 1 to {most}, or empty").wait_for()
