"""The embeddable player in headless Chromium, inside an `<iframe>` of a page from another origin.

A news site's article (a tiny server on another port of 127.0.0.1: another origin) frames
`/embed/{id}` of a real node whose space is live (the demo's host voice speaking into it). The
player must load, show the title, the state and the count, play after a tap with dash.js and
with hls.js (`?player=`, as the listener page takes it), touch no other host, and break no rule
of its Content-Security-Policy. The same again in a frame sandboxed the way WordPress frames
every oEmbed provider it discovered (`sandbox="allow-scripts"`: an opaque origin, so each of the
player's requests to its own node is cross-origin). Captions: the toggle stays hidden until a
`caption` event comes; then lines show as text, each once the audio playing has reached it.
"""

from __future__ import annotations

import contextlib
import html
import http.server
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from causerie.media.demo import DemoSpeaker, demo_voices, load_voice
from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node
from tests.harness.polling import eventually
from tests.harness.ports import HOST, free_port
from tests.web.live import CHROMIUM, Watched, chromium

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

TITLE = "Budget night <b>live</b>"
PLAY_SECONDS = 5.0

# In every frame: what the Content-Security-Policy refused, if anything.
CSP_WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


@contextlib.contextmanager
def article_site(pages: dict[str, str]) -> Iterator[str]:
    """Another origin (another port of 127.0.0.1) serving `pages` (path → HTML)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((HOST, free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def article(src: str, sandbox: str | None) -> str:
    """A news article with the player in it."""
    frame_sandbox = f' sandbox="{sandbox}"' if sandbox is not None else ""
    return (
        '<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n'
        "<title>News</title>\n<h1>Tonight's budget debate</h1>\n"
        f'<iframe id="player" src="{html.escape(src)}" width="480" height="200"'
        f' frameborder="0"{frame_sandbox}></iframe>\n'
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    async with run_node(tmp_path_factory.mktemp("embed") / "data") as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(node: RunningNode) -> AsyncIterator[str]:
    """A live space, the demo's host voice speaking into it; its id."""
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        host = account(node.data_dir, "Ada", "ada")
        created = await http.post("/api/spaces", json={"title": TITLE}, headers=host)
        space_id = created.json()["id"]
        started = await http.post(f"/api/spaces/{space_id}/start", headers=host)
        assert started.status_code == 200, started.text
    pipeline = node.app.services.broadcasts.get(space_id)
    speaker = DemoSpeaker(load_voice(demo_voices()["host"]), pipeline.mixer.add_input("v").push)
    speaker.start()
    yield space_id
    await speaker.stop()


@pytest.fixture(scope="module")
def site(node: RunningNode, live: str) -> Iterator[str]:
    """The article's origin: /plain/{player}.html and /sandboxed/{player}.html."""
    pages = {}
    for player in ("dash.js", "hls.js"):
        src = f"{node.url}/embed/{live}?player={player}"
        pages[f"/plain/{player}.html"] = article(src, None)
        pages[f"/sandboxed/{player}.html"] = article(src, "allow-scripts")
    with article_site(pages) as origin:
        yield origin


async def embed_frame(page):
    """The player's frame, once its page has loaded."""
    await page.wait_for_selector("#player")
    for _ in range(100):
        frame = next((f for f in page.frames if "/embed/" in f.url), None)
        if frame is not None:
            await frame.wait_for_load_state()
            return frame
        await page.wait_for_timeout(100)
    raise AssertionError("no embed frame")


async def until(frame, expression: str, timeout: float = 10) -> None:
    """Poll `expression` in the frame until it is true. (Playwright's wait_for_function
    compiles its text in the page, which the player's policy refuses: no eval.)"""

    async def holds() -> bool:
        return bool(await frame.evaluate(expression))

    await eventually(holds, timeout, expression, every=0.1)


async def tap_play_and_wait(frame, timeout: float = 25) -> None:
    await frame.locator("#play:enabled").click()
    await until(
        frame,
        "window.causerie?.state.phase === 'playing' && window.causerie.player !== null"
        " && !window.causerie.audio.paused && window.causerie.audio.currentTime > 0",
        timeout,
    )


@pytest.mark.parametrize("framing", ["plain", "sandboxed"])
@pytest.mark.parametrize("player", ["dash.js", "hls.js"])
async def test_the_embed_plays_in_a_frame_of_another_site(
    node: RunningNode, live: str, site: str, player: str, framing: str
) -> None:
    assert urlsplit(site).netloc != urlsplit(node.url).netloc  # another origin, for real
    watched = Watched()
    hosts: set[str] = set()
    async with chromium() as browser:
        context = await browser.new_context()
        await context.add_init_script(CSP_WATCH)
        page = await context.new_page()
        watched.watch(page)
        page.on(
            "request",
            lambda request: (
                request.url.startswith("http") and hosts.add(urlsplit(request.url).netloc)
            ),
        )
        await page.goto(f"{site}/{framing}/{player}.html")
        frame = await embed_frame(page)
        # Before any tap: the details, live, and nothing playing (no autoplay).
        await frame.locator("#title").filter(has_text=TITLE).wait_for()
        await frame.locator("#badge").filter(has_text="Live").wait_for()
        assert "listening now" in await frame.locator("#listeners").inner_text()
        assert await frame.evaluate("window.causerie.audio.paused")
        assert await frame.locator("#captions-toggle").is_hidden()  # no captions yet
        assert await frame.locator("#title-link").get_attribute("target") == "_blank"

        await tap_play_and_wait(frame)
        assert await frame.locator("#embed").get_attribute("data-player") == player
        before = await frame.evaluate("window.causerie.audio.currentTime")
        started = time.monotonic()
        await page.wait_for_timeout(PLAY_SECONDS * 1000)
        advanced = await frame.evaluate("window.causerie.audio.currentTime") - before
        wall = time.monotonic() - started
        assert advanced > 0.8 * wall, (advanced, wall)
        assert await frame.locator("#play").get_attribute("aria-label") == "Stop listening"
        violations = await frame.evaluate("window.__violations")

        # The tap again stops it.
        await frame.locator("#play").click()
        await until(frame, "window.causerie.state.phase === 'idle'")
        assert await frame.evaluate("window.causerie.audio.paused")
        await context.close()

    print(f"\n{player} in a {framing} frame: audio +{advanced:.2f} s in {wall:.2f} s")
    assert violations == [], violations
    assert watched.page_errors == [], watched.page_errors
    assert watched.http_errors == [], watched.http_errors
    assert not [e for e in watched.console_errors if "favicon" not in e], watched.console_errors
    # Nothing but the article's origin and the node: no CDN, no public time server.
    assert hosts == {urlsplit(site).netloc, urlsplit(node.url).netloc}, hosts
    # The player joined (counted) like any listener.
    assert any(r.endswith(f"/api/spaces/{live}/join") for r in watched.requests), watched.requests


async def test_captions_show_once_they_come_and_in_step_with_the_audio(
    node: RunningNode, live: str, site: str
) -> None:
    bus = node.app.services.bus
    async with chromium() as browser:
        context = await browser.new_context()
        await context.add_init_script(CSP_WATCH)
        page = await context.new_page()
        watched = Watched()
        watched.watch(page)
        await page.goto(f"{site}/plain/dash.js.html")
        frame = await embed_frame(page)
        await frame.locator("#badge").filter(has_text="Live").wait_for()
        await tap_play_and_wait(frame)
        toggle = frame.locator("#captions-toggle")
        assert await toggle.is_hidden()

        # A line whose audio was heard already: the toggle appears; the line shows at once.
        now = time.time()
        said = "Good evening <img src=x onerror=alert(1)> and welcome"
        await bus.publish(
            live, "caption", {"text": said, "start": now - 3, "end": now - 1, "final": True}
        )
        await toggle.wait_for(state="visible", timeout=10_000)
        assert await toggle.get_attribute("aria-pressed") == "false"
        assert await frame.locator("#captions").is_hidden()  # offered, not imposed
        await toggle.click()
        assert await toggle.get_attribute("aria-pressed") == "true"
        box = frame.locator("#captions")
        await box.filter(has_text="Good evening").wait_for(timeout=5_000)
        assert await box.locator("p").last.inner_text() == said  # as text, not HTML
        assert await box.locator("img").count() == 0

        # A line ahead of what the listener hears (about a second behind live): shown when
        # the audio reaches it, not when it arrives.
        ahead = time.time() + 3
        await bus.publish(
            live, "caption", {"text": "the budget", "start": ahead, "end": ahead + 1, "final": True}
        )
        await until(frame, "window.causerie.state.captionEvents >= 2")
        arrived_playing_at = await frame.evaluate("window.causerie.player.playingAt() / 1000")
        if arrived_playing_at < ahead - 0.3:  # not late already (a slow machine)
            assert "the budget" not in await box.inner_text()
        await box.filter(has_text="the budget").wait_for(timeout=15_000)
        shown_at = await frame.evaluate("window.causerie.player.playingAt() / 1000")
        assert shown_at >= ahead - 0.3, (shown_at, ahead)

        # Interim lines are replaced by what follows; the toggle hides the lines again.
        await bus.publish(
            live, "caption", {"text": "interim words", "start": now, "end": now, "final": False}
        )
        await toggle.click()
        assert await box.is_hidden()
        violations = await frame.evaluate("window.__violations")
        await context.close()
    assert violations == []
    assert watched.page_errors == []


async def test_the_listener_page_copies_the_embed_code(node: RunningNode, live: str) -> None:
    async with chromium() as browser:
        context = await browser.new_context()
        await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=node.url)
        page = await context.new_page()
        await page.goto(f"{node.url}/s/{live}")
        await page.locator("#embedding").wait_for(state="visible")
        code = await page.locator("#embed-code").input_value()
        await page.locator("#copy-embed").click()
        await page.locator("#copy-embed").filter(has_text="Copied").wait_for()
        copied = await page.evaluate("navigator.clipboard.readText()")
        await page.locator("#copy-embed").filter(has_text="Copy embed code").wait_for()
        await context.close()
    assert copied == code
    # The same iframe oEmbed answers with.
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        site_url = node.app.services.config.site_url
        answer = await http.get("/oembed", params={"url": f"{site_url}/s/{live}"})
    assert code == answer.json()["html"].replace(site_url, node.url)
    assert f'src="{node.url}/embed/{live}"' in code
    assert html.escape(TITLE) in code


async def _count(node: RunningNode, space_id: str) -> int:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        return int((await http.get(f"/api/spaces/{space_id}")).json()["listeners_now"])


async def test_a_framed_listener_is_counted(node: RunningNode, live: str, site: str) -> None:
    async with chromium() as browser:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{site}/sandboxed/dash.js.html")
        frame = await embed_frame(page)
        await tap_play_and_wait(frame)
        await eventually(
            lambda: _count_at_least(node, live, 1), 20, "the framed listener counted", every=0.5
        )
        listeners = frame.locator("#listeners")
        await listeners.filter(has_text="1 listening now").wait_for(timeout=20_000)


async def _count_at_least(node: RunningNode, space_id: str, n: int) -> bool:
    return await _count(node, space_id) >= n
