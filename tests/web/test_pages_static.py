"""The listener pages in a real browser, against a stand-in server.

The real API and origin are written elsewhere; this test serves the static pages with a small
Starlette app that fakes the JSON API (including overload answers), its live events (Server-Sent
Events the test pushes, or failures the test chooses) and a live HLS stream made from pre-encoded
segments released in real time, and drives headless Chromium with Playwright.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import causerie
from causerie.media.demo import demo_voices
from tests.harness.polling import eventually, wait_until

pytestmark = pytest.mark.browser

STATIC = Path(causerie.__file__).parent / "web" / "static"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
XSS_TITLE = "Launch night <img src=x onerror=alert(1)>"
XSS_NAME = "<i>Basile</i>"
HOST_TOKEN = "host-token"  # what the fake API accepts from the host of every space
COHOST_TOKEN = "cohost-token"  # … and from a co-host (who may start a space, not end it)
PREROLL = 4.0  # seconds of stream already out when the server starts


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def make_spaces() -> dict[str, dict]:
    now = datetime.now(UTC)

    def space(id_: str, title: str, state: str, listeners: int, **times: str | None) -> dict:
        return {
            "id": id_,
            "title": title,
            "description": "",
            "state": state,
            "scheduled_start": None,
            "started_at": None,
            "ended_at": None,
            "playlist_url": f"/hls/{id_}/index.m3u8",
            "listeners_now": listeners,
            "host": {"id": "ada", "name": "Ada"},
            "stage": [{"id": "ada", "name": "Ada", "role": "host", "muted": False}],
            "recording": True,
            **times,
        }

    return {
        "later": space(
            "later",
            "Next week's chat",
            "scheduled",
            0,
            scheduled_start=iso(now + timedelta(days=2)),
        ),
        "demo": space("demo", XSS_TITLE, "live", 42, started_at=iso(now - timedelta(minutes=5)))
        | {
            "description": "Bring <b>questions</b>.\nSecond line.",
            "stage": [
                {"id": "ada", "name": "Ada", "role": "host", "muted": False},
                {"id": "cy", "name": "Cy", "role": "cohost", "muted": False},
                {"id": "ba", "name": XSS_NAME, "role": "speaker", "muted": True},
            ],
        },
        "old": space(
            "old", "Last month's chat", "ended", 0, ended_at=iso(now - timedelta(days=30))
        ),
        "busy": space("busy", "The busy one", "live", 1234, started_at=iso(now)),
    }


@dataclass
class FakeApi:
    """The API's answers and what the page asked of it."""

    spaces: dict[str, dict] = field(default_factory=make_spaces)
    overloaded_joins: int = 0  # how many joins to answer with 503 + Retry-After first
    heartbeat_interval: float = 1.0
    expired_tokens: set[str] = field(default_factory=set)  # heartbeats with these get 401
    joins: list[float] = field(default_factory=list)
    heartbeats: list[tuple[float, str | None]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    host_actions: list[tuple[str, str | None]] = field(default_factory=list)  # (path, auth)
    space_reads: list[str] = field(default_factory=list)  # GET /api/spaces/{id}, by id
    # The events endpoint: how it answers (an error status, or a 200 stream that is "live",
    # "silent" like behind a proxy that buffers it, or that "hangs up" at once), who opened it.
    events_status: int = 200
    events_mode: str = "live"
    event_streams: list[tuple[str, str | None]] = field(default_factory=list)  # (id, Last-Ev…)
    open_streams: list[tuple[str, asyncio.AbstractEventLoop, asyncio.Queue]] = field(
        default_factory=list
    )
    last_event_id: int = 0
    # The audience's part: questions by space, how their list answers, what the page sent.
    questions: dict[str, list[dict]] = field(default_factory=dict)
    questions_status: int = 200
    join_names: list[str] = field(default_factory=list)
    audience: list[tuple[str, str, str | None, dict | None]] = field(default_factory=list)

    def push(self, space_id: str, type_: str, data: dict) -> None:
        """Send an event to the open streams of a space, as the real API does (any thread)."""
        self.last_event_id += 1
        self._send(
            space_id, f"id: {self.last_event_id}\nevent: {type_}\ndata: {json.dumps(data)}\n\n"
        )

    def hang_up(self, space_id: str) -> None:
        """End the open streams of a space (a restart, a proxy's timeout): browsers come back."""
        self._send(space_id, None)

    def _send(self, space_id: str, message: str | None) -> None:
        for stream_space, loop, queue in list(self.open_streams):
            if stream_space == space_id:
                loop.call_soon_threadsafe(queue.put_nowait, message)

    def streams_of(self, space_id: str) -> int:
        return sum(1 for opened, _ in self.event_streams if opened == space_id)


class LiveStream:
    """A live HLS playlist over pre-made segments, each released when its time has come."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        text = (folder / "vod.m3u8").read_text()
        self.durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)]
        self.uris = [line for line in text.splitlines() if line and not line.startswith("#")]
        self.map_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)
        self.started = time.time() - PREROLL

    def playlist(self, window: int = 6) -> str:
        elapsed = time.time() - self.started
        ends = [sum(self.durations[: i + 1]) for i in range(len(self.durations))]
        out = sum(1 for end in ends if end <= elapsed)
        first = max(0, out - window)
        start = self.started + (ends[first - 1] if first else 0.0)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{round(max(self.durations))}",  # RFC 8216 4.3.3.1
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
            f'#EXT-X-MAP:URI="{self.map_uri}"',
            "#EXT-X-PROGRAM-DATE-TIME:"
            + datetime.fromtimestamp(start, UTC).isoformat(timespec="milliseconds"),
        ]
        for i in range(first, out):
            lines += [f"#EXTINF:{self.durations[i]:.5f},", self.uris[i]]
        if out == len(self.uris):
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


def make_app(api: FakeApi, stream: LiveStream) -> Starlette:
    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": code, "message": message}, status_code=status)

    def not_found() -> JSONResponse:
        return error(404, "not_found", "No such space.")

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def space_page(request: Request) -> Response:
        return FileResponse(STATIC / "space.html")

    async def list_spaces(request: Request) -> Response:
        return JSONResponse({"spaces": list(api.spaces.values())})

    async def get_space(request: Request) -> Response:
        api.space_reads.append(request.path_params["id"])
        space = api.spaces.get(request.path_params["id"])
        return JSONResponse(space) if space else not_found()

    async def events(request: Request) -> Response:
        space_id = request.path_params["id"]
        api.event_streams.append((space_id, request.headers.get("last-event-id")))
        if api.events_status != 200:
            return error(api.events_status, "unavailable", "No events here.")
        space = api.spaces.get(space_id)
        if space is None:
            return not_found()
        snapshot = json.dumps(space)  # the details as they are now, like GET /api/spaces/{id}
        mode = api.events_mode
        streams = api.open_streams
        entry = (space_id, asyncio.get_running_loop(), asyncio.Queue())
        streams.append(entry)

        async def body() -> AsyncIterator[str]:
            try:
                if mode == "hangup":
                    yield "retry: 100\n\n"  # the browser comes back at once, and again…
                    return
                if mode == "live":
                    yield f"retry: 300\nevent: snapshot\ndata: {snapshot}\n\n"
                while True:
                    try:
                        message = await asyncio.wait_for(entry[2].get(), 1.0)
                    except TimeoutError:
                        message = ": keepalive\n\n"  # also how a page that left is noticed
                    if message is None:
                        return
                    yield message
            finally:
                with contextlib.suppress(ValueError):
                    streams.remove(entry)

        return StreamingResponse(
            body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def join(request: Request) -> Response:
        space_id = request.path_params["id"]
        if space_id not in api.spaces:
            return not_found()
        api.joins.append(time.monotonic())
        body = json.loads(await request.body() or b"{}")
        api.join_names.append(body.get("name", ""))
        if api.overloaded_joins > 0:
            api.overloaded_joins -= 1
            return JSONResponse(
                {"error": "overloaded", "message": "Too many people are joining."},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        token = f"tok-{len(api.joins)}"
        api.tokens.append(token)
        return JSONResponse(
            {
                "token": token,
                "listener_id": f"l-{len(api.joins)}",
                "playlist_url": api.spaces[space_id]["playlist_url"],
                "heartbeat_interval": api.heartbeat_interval,
            }
        )

    async def heartbeat(request: Request) -> Response:
        auth = request.headers.get("authorization")
        api.heartbeats.append((time.monotonic(), auth))
        if auth is None or auth.removeprefix("Bearer ") in api.expired_tokens:
            return JSONResponse(
                {"error": "unauthorized", "message": "Token expired."}, status_code=401
            )
        return Response(status_code=204)

    async def start_or_end(request: Request) -> Response:
        space = api.spaces.get(request.path_params["id"])
        action = request.path_params["action"]
        auth = request.headers.get("authorization")
        api.host_actions.append((request.url.path, auth))
        if space is None:
            return not_found()
        token = (auth or "").removeprefix("Bearer ")
        if token not in (HOST_TOKEN, COHOST_TOKEN):
            return error(401, "unauthorized", "the token is malformed")
        if action == "end" and token == COHOST_TOKEN:
            return error(403, "not_allowed", "a cohost may not end")
        if action == "start" and space["state"] != "scheduled":
            return error(409, "conflict", f"the space is {space['state']}; only a scheduled "
                         "space can start")  # fmt: skip
        if action == "end" and space["state"] == "ended":
            return error(409, "conflict", "the space has already ended")
        now = iso(datetime.now(UTC))
        if action == "start":
            space.update(state="live", started_at=now)
        else:
            space.update(state="ended", ended_at=now)
        return JSONResponse(space)

    async def audience(request: Request) -> Response:
        """Questions, votes, reactions and raised hands: recorded, and answered simply."""
        space_id = request.path_params["id"]
        body = json.loads(await request.body() or b"null")
        auth = request.headers.get("authorization")
        api.audience.append((request.method, request.url.path, auth, body))
        if space_id not in api.spaces:
            return not_found()
        questions = api.questions.setdefault(space_id, [])
        question_id = request.path_params.get("qid")
        found = [q for q in questions if q["id"] == question_id]
        path = request.url.path
        if request.method == "GET":
            if api.questions_status != 200:
                return error(api.questions_status, "not_found", "Not here.")
            return JSONResponse({"questions": questions})
        if auth is None:
            return error(401, "unauthorized", "this needs a token")
        if path.endswith("/questions"):
            name = api.join_names[-1] if api.join_names else ""
            question = {
                "id": f"q-{len(questions) + 1}",
                "text": body["text"],
                "author_id": "me",
                "author_name": name or "Guest",
                "votes": 0,
                "state": "open",
                "pinned": False,
                "created_at": iso(datetime.now(UTC)),
            }
            questions.append(question)
            return JSONResponse(question, status_code=201)
        if path.endswith("/votes"):
            found[0]["votes"] += 1
            return JSONResponse(found[0], status_code=201)
        if path.endswith("/reactions"):
            return Response(status_code=202)
        if path.endswith("/speak-requests") and request.method == "POST":
            return JSONResponse(api.spaces[space_id])
        return Response(status_code=204)  # a withdrawn question, a lowered hand

    async def replay_playlist(request: Request) -> Response:
        return Response(
            (stream.folder / "vod.m3u8").read_text(), media_type="application/vnd.apple.mpegurl"
        )

    async def playlist(request: Request) -> Response:
        return Response(
            stream.playlist(),
            media_type="application/vnd.apple.mpegurl",
            headers={"Cache-Control": "no-cache"},
        )

    async def media(request: Request) -> Response:
        path = stream.folder / request.path_params["name"]
        return FileResponse(path) if path.is_file() else Response(status_code=404)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/s/{id}", space_page),
            Route("/api/spaces", list_spaces),
            Route("/api/spaces/{id}", get_space),
            Route("/api/spaces/{id}/events", events),
            Route("/api/spaces/{id}/join", join, methods=["POST"]),
            Route("/api/spaces/{id}/heartbeat", heartbeat, methods=["POST"]),
            Route("/api/spaces/{id}/questions", audience, methods=["GET", "POST"]),
            Route("/api/spaces/{id}/questions/{qid}", audience, methods=["DELETE"]),
            Route("/api/spaces/{id}/questions/{qid}/votes", audience, methods=["POST"]),
            Route("/api/spaces/{id}/reactions", audience, methods=["POST"]),
            Route("/api/spaces/{id}/speak-requests", audience, methods=["POST"]),
            Route("/api/spaces/{id}/speak-requests/me", audience, methods=["DELETE"]),
            Route("/api/spaces/{id}/{action:str}", start_or_end, methods=["POST"]),
            Route("/hls/{id}/index.m3u8", playlist),
            Route("/hls/{id}/{name}", media),
            Route("/replay/{id}/index.m3u8", replay_playlist),
            Route("/replay/{id}/{name}", media),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )


@pytest.fixture(scope="module")
def stream_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s of the demo conversation as AAC in fMP4 segments of about 1 s."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    folder = tmp_path_factory.mktemp("hls")
    voices = demo_voices()
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-i", str(voices["host"]), "-i", str(voices["guest"]),
         "-filter_complex", "amix=inputs=2:normalize=0", "-t", "40",
         "-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-ac", "1",
         "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
         "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
         "-hls_segment_filename", str(folder / "seg%03d.m4s"), str(folder / "vod.m3u8")],
        check=True,
    )  # fmt: skip
    return folder


@dataclass
class Site:
    url: str
    api: FakeApi


@pytest.fixture(scope="module")
def server(stream_folder: Path) -> Iterator[Site]:
    """The stand-in server on 127.0.0.1, on a free port, in a background thread."""
    api = FakeApi()
    config = uvicorn.Config(
        make_app(api, LiveStream(stream_folder)),
        log_level="warning",
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=2,  # event streams a page left open do not hold it up
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "the test server starting", every=0.02)
    yield Site(f"http://127.0.0.1:{port}", api)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def site(server: Site) -> Site:
    """The server, with the fake API reset for each test."""
    fresh = FakeApi()
    server.api.__dict__.update(fresh.__dict__)
    return server


@pytest.fixture
async def page(site: Site) -> AsyncIterator:
    """A phone-sized page in headless Chromium; fails the test on any JavaScript error."""
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
        )
        page = await context.new_page()
        errors: list[str] = []
        dialogs: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        async def on_dialog(dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        yield page
        await context.close()
        await browser.close()
        assert not dialogs, f"a dialog opened: {dialogs}"
        assert not errors, f"JavaScript errors: {errors}"


async def test_index_lists_spaces_live_first(site: Site, page) -> None:
    await page.goto(site.url + "/")
    items = page.locator("#spaces li")
    await items.first.wait_for()
    assert await items.count() == 4

    hrefs = [await items.nth(i).locator("a").get_attribute("href") for i in range(4)]
    assert hrefs == ["/s/busy", "/s/demo", "/s/later", "/s/old"]  # live (busiest first), then…
    badges = await page.locator("#spaces .badge").all_text_contents()
    assert badges == ["Live", "Live", "Scheduled", "Ended"]
    assert await items.nth(0).locator(".listeners").text_content() == "1,234 listening now"
    # A title that looks like HTML is shown as text.
    assert await items.nth(1).locator(".title").text_content() == XSS_TITLE
    assert await page.locator("#spaces img").count() == 0
    assert "2 spaces live now" in await page.locator("#summary").text_content()

    await items.nth(1).locator("a").click()
    await page.wait_for_url(site.url + "/s/demo")


async def test_space_page_shows_api_text_as_text(site: Site, page) -> None:
    await page.goto(site.url + "/s/demo")
    await page.locator("#title").filter(has_text="Launch night").wait_for()
    assert await page.locator("#title").text_content() == XSS_TITLE
    assert await page.title() == f"{XSS_TITLE} · causerie"
    assert await page.locator("#space img, #space b").count() == 0
    assert (
        await page.locator("#description").text_content() == "Bring <b>questions</b>.\nSecond line."
    )
    assert await page.locator("#badge").text_content() == "Live"
    assert await page.locator("#host").text_content() == "Hosted by Ada"
    assert await page.locator("#host-controls").is_hidden()  # no host link, no host card
    assert await page.locator("#listeners").text_content() == "42 listening now"
    assert await page.locator("#listeners").get_attribute("aria-live") == "polite"
    assert await page.locator("#playlist").input_value() == site.url + "/hls/demo/index.m3u8"
    assert await page.locator("#play").is_enabled()

    # refresh() reads the details again, at once (live events are tested below).
    site.api.spaces["demo"]["listeners_now"] = 43
    await page.evaluate("window.causerie.refresh()")
    await page.locator("#listeners").filter(has_text="43 listening now").wait_for()


async def test_play_joins_with_backoff_plays_and_sends_heartbeats(site: Site, page) -> None:
    site.api.overloaded_joins = 1
    await page.goto(site.url + "/s/demo")
    play = page.locator("#play")
    await play.and_(page.locator(":enabled")).wait_for()

    # Keyboard only: focus the button and press Enter.
    await play.focus()
    await page.keyboard.press("Enter")

    # The first join got 503 + Retry-After: 1; the page waited at least that long.
    await page.wait_for_function("window.causerie?.state.phase === 'playing'", timeout=10_000)
    assert len(site.api.joins) == 2
    assert site.api.joins[1] - site.api.joins[0] >= 1.0
    assert await page.evaluate("window.causerie.state.joinAttempts") == 2

    # Sound plays: the audio element's clock advances.
    await page.wait_for_function("window.causerie?.audio.currentTime > 1.5", timeout=20_000)
    assert await page.evaluate("window.causerie.hls !== null")
    assert not await page.evaluate("window.causerie.audio.paused")

    # Heartbeats every heartbeat_interval (1 s here), with the token from the join.
    await page.wait_for_function("window.causerie?.state.heartbeatsSent >= 2", timeout=10_000)
    assert {auth for _, auth in site.api.heartbeats} == {f"Bearer {site.api.tokens[0]}"}

    # The delay behind live is shown.
    await (
        page.locator("#latency").filter(has_text=re.compile(r"^\d+\.\d s behind live$")).wait_for()
    )
    assert await play.get_attribute("aria-label") == "Stop listening"

    await page.screenshot(path="/tmp/space-page.png")

    # Stop: sound stops and so do heartbeats.
    await play.click()
    await page.wait_for_function("window.causerie?.state.phase === 'idle'")
    assert await page.evaluate("window.causerie.audio.paused")
    assert await page.evaluate("window.causerie.hls") is None
    sent = len(site.api.heartbeats)
    await asyncio.sleep(1.5)
    assert len(site.api.heartbeats) == sent


async def test_expired_token_is_renewed(site: Site, page) -> None:
    site.api.expired_tokens.add("tok-1")
    await page.goto(site.url + "/s/demo")
    await page.locator("#play:enabled").click()
    await page.wait_for_function("window.causerie?.state.heartbeatsSent >= 1", timeout=10_000)
    # The first heartbeat was refused; the page joined again and went on with the new token.
    assert site.api.heartbeats[0][1] == "Bearer tok-1"
    assert site.api.heartbeats[-1][1] == "Bearer tok-2"
    assert await page.evaluate("window.causerie.state.token") == "tok-2"


async def test_volume_control(site: Site, page) -> None:
    await page.goto(site.url + "/s/demo")
    volume = page.get_by_label("Volume")
    await volume.fill("0.3")
    assert await page.evaluate("window.causerie.audio.volume") == pytest.approx(0.3)


async def test_scheduled_space_says_when(site: Site, page) -> None:
    await page.goto(site.url + "/s/later")
    notice = page.locator("#notice")
    await notice.filter(has_text="hasn't started yet").wait_for()
    assert await page.locator("#badge").text_content() == "Scheduled"
    assert await page.locator("#play").is_disabled()
    assert await page.locator("#elsewhere").is_hidden()


async def test_scheduled_space_can_be_played_once_live(site: Site, page) -> None:
    await page.goto(site.url + "/s/later")
    await page.locator("#notice").filter(has_text="hasn't started yet").wait_for()
    site.api.spaces["later"]["state"] = "live"
    await page.evaluate("window.causerie.refresh()")
    await page.locator("#status").filter(has_text="The space is live").wait_for()
    assert await page.locator("#play").is_enabled()
    assert await page.locator("#notice").is_hidden()
    assert await page.locator("#badge").text_content() == "Live"


async def test_ended_space_says_so(site: Site, page) -> None:
    await page.goto(site.url + "/s/old")
    await page.locator("#notice").filter(has_text="has ended").wait_for()
    assert await page.locator("#play").is_disabled()


async def test_unknown_space_is_not_found(site: Site, page) -> None:
    await page.goto(site.url + "/s/nope")
    await page.locator("#title").filter(has_text="Space not found").wait_for()
    assert await page.locator("#notice").is_visible()
    assert await page.locator("#play").is_disabled()
    # The events endpoint said 404, then so did the read: the page stops asking.
    assert await page.evaluate("window.causerie.watching") == "stopped"
    assert site.api.event_streams == [("nope", None)]
    assert site.api.space_reads == ["nope"]


async def test_retry_helpers(site: Site, page) -> None:
    await page.goto(site.url + "/s/demo")
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


async def test_stage_shows_who_is_on_stage(site: Site, page) -> None:
    await page.goto(site.url + "/s/demo")
    stage = page.get_by_role("region", name="On stage")
    await stage.wait_for()
    people = stage.get_by_role("listitem")
    assert await people.count() == 3
    assert await stage.locator(".person-name").all_text_contents() == ["Ada", "Cy", XSS_NAME]
    assert await stage.locator(".person-role").all_text_contents() == [
        "Host",
        "Co-host",
        "Speaker",
    ]
    assert await stage.locator("i").count() == 0  # a name that looks like HTML stays text
    # Only the muted speaker carries the marker, in words (not just an icon).
    muted = stage.locator(".person-muted:visible")
    assert await muted.count() == 1
    assert "Muted" in await people.nth(2).inner_text()
    assert "Muted" not in await people.nth(0).inner_text()

    # It follows the API: someone leaves the stage.
    site.api.spaces["demo"]["stage"].pop()
    await page.evaluate("window.causerie.refresh()")
    await page.wait_for_function("document.querySelectorAll('#stage-list li').length === 2")

    # Nobody is "on stage" in a space that is over.
    await page.goto(site.url + "/s/old")
    await page.locator("#badge").filter(has_text="Ended").wait_for()
    assert await page.locator("#stage").is_hidden()


async def test_host_link_starts_and_ends_the_space(site: Site, page) -> None:
    await page.goto(f"{site.url}/s/later#host={HOST_TOKEN}")
    card = page.get_by_role("region", name="Host controls")
    await card.wait_for()
    # The token leaves the address bar (so copying the URL does not share it), not the tab.
    assert page.url == site.url + "/s/later"
    assert await page.evaluate("sessionStorage.getItem('causerie.host.later')") == HOST_TOKEN
    assert await page.evaluate("window.causerie.state.hosting") is True
    assert HOST_TOKEN not in await page.content()
    await page.reload()
    await card.wait_for()

    await card.get_by_role("button", name="Go live").click()
    await page.locator("#badge").filter(has_text="Live").wait_for()
    assert site.api.host_actions == [("/api/spaces/later/start", f"Bearer {HOST_TOKEN}")]
    assert await card.get_by_role("status").text_content() == "You're live."
    assert await page.locator("#play").is_enabled()
    # A stale copy of the details (from before the click, or an edge cache) does not undo it.
    site.api.spaces["later"]["state"] = "scheduled"
    await page.evaluate("window.causerie.refresh()")
    assert await page.locator("#badge").text_content() == "Live"
    site.api.spaces["later"]["state"] = "live"

    # Ending asks first; Cancel (which has the focus) backs out, Escape too.
    await card.get_by_role("button", name="End space").click()
    cancel = card.get_by_role("button", name="Cancel")
    assert await cancel.evaluate("button => button === document.activeElement")
    await cancel.click()
    await card.get_by_role("button", name="End space").click()
    await page.keyboard.press("Escape")
    assert await card.get_by_role("button", name="Yes, end it").count() == 0
    assert len(site.api.host_actions) == 1

    await card.get_by_role("button", name="End space").click()
    await card.get_by_role("button", name="Yes, end it").click()
    await page.locator("#badge").filter(has_text="Ended").wait_for()
    assert site.api.host_actions[-1] == ("/api/spaces/later/end", f"Bearer {HOST_TOKEN}")
    assert await card.get_by_role("status").text_content() == "The space has ended."
    assert await card.get_by_role("button").count() == 0


async def test_host_errors_are_shown_politely(site: Site, page) -> None:
    # A co-host may start a space but not end it: the API's 403 message is shown in the card.
    await page.goto(f"{site.url}/s/demo#host={COHOST_TOKEN}")
    card = page.get_by_role("region", name="Host controls")
    await card.get_by_role("button", name="End space").click()
    await card.get_by_role("button", name="Yes, end it").click()
    status = card.get_by_role("status")
    await status.filter(has_text="Couldn't end the space").wait_for()
    assert await status.text_content() == (
        "Couldn't end the space: your host link doesn't allow it. A cohost may not end."
    )
    assert await page.locator("#badge").text_content() == "Live"
    assert await card.get_by_role("button", name="End space").is_enabled()

    # A bad token: 401, said as such.
    await page.goto(f"{site.url}/s/later#host=nonsense")
    await card.get_by_role("button", name="Go live").click()
    await status.filter(has_text="this host link isn't valid").wait_for()
    assert await page.locator("#badge").text_content() == "Scheduled"


async def test_no_host_controls_without_a_host_link(site: Site, page) -> None:
    await page.goto(f"{site.url}/s/later#something-else")
    await page.locator("#badge").filter(has_text="Scheduled").wait_for()
    assert await page.locator("#host-controls").is_hidden()
    assert await page.evaluate("window.causerie.state.hosting") is False
    assert page.url.endswith("#something-else")  # other fragments are left alone


# ---- live events -------------------------------------------------------------------------------


async def test_space_page_follows_live_events_without_polling(site: Site, page) -> None:
    await page.goto(site.url + "/s/demo")
    await page.locator("#listeners").filter(has_text="42 listening now").wait_for()
    await page.wait_for_function("window.causerie?.watching === 'events'")
    # The stream's snapshot brought the details: they were not read at all.
    assert site.api.event_streams == [("demo", None)]
    assert site.api.space_reads == []

    # What the stream pushes reaches the page (a read would still get the old details).
    site.api.push("demo", "listeners", {"listeners_now": 57})
    await page.locator("#listeners").filter(has_text="57 listening now").wait_for()

    edited = copy.deepcopy(site.api.spaces["demo"])
    edited.update(title="Launch night <b>2</b>", listeners_now=58)
    edited["stage"].pop()
    site.api.push("demo", "space", edited)
    await page.locator("#title").filter(has_text="Launch night <b>2</b>").wait_for()
    assert await page.locator("#space b").count() == 0  # pushed text is text too
    assert await page.locator("#stage-list li").count() == 2
    assert await page.locator("#listeners").text_content() == "58 listening now"

    # The connection drops: the browser comes back by itself, from the last event it saw.
    site.api.hang_up("demo")
    await eventually(lambda: len(site.api.event_streams) == 2, 10)
    assert site.api.event_streams[1] == ("demo", str(site.api.last_event_id))
    site.api.push("demo", "listeners", {"listeners_now": 59})
    await page.locator("#listeners").filter(has_text="59 listening now").wait_for()

    # A reset (events were lost): the details are read again, once.
    site.api.spaces["demo"]["title"] = "Read again"
    site.api.push("demo", "reset", {"reason": "missed events"})
    await page.locator("#title").filter(has_text="Read again").wait_for()
    assert site.api.space_reads == ["demo"]

    # The space ends.
    ended = site.api.spaces["demo"] | {"state": "ended", "ended_at": iso(datetime.now(UTC))}
    site.api.push("demo", "space", ended)
    await page.locator("#badge").filter(has_text="Ended").wait_for()
    await page.locator("#notice").filter(has_text="has ended").wait_for()
    assert await page.locator("#play").is_disabled()

    # Longer than the old polling period: still no other read, and no other stream.
    await asyncio.sleep(6)
    assert site.api.space_reads == ["demo"]
    assert len(site.api.event_streams) == 2
    assert await page.evaluate("window.causerie.watching") == "events"


@pytest.mark.parametrize("status", [404, 500])
async def test_space_page_polls_when_events_fail(site: Site, page, status: int) -> None:
    site.api.events_status = status
    await page.goto(site.url + "/s/demo")
    await page.locator("#listeners").filter(has_text="42 listening now").wait_for()
    assert await page.evaluate("window.causerie.watching") == "polling"
    assert site.api.event_streams == [("demo", None)]
    assert site.api.space_reads == ["demo"]  # read at once when the stream failed

    # Changes reach the page by polling, without refresh().
    site.api.spaces["demo"].update(title="Polled", listeners_now=44)
    await page.locator("#listeners").filter(has_text="44 listening now").wait_for(timeout=10_000)
    assert await page.locator("#title").text_content() == "Polled"
    assert site.api.space_reads == ["demo", "demo"]


async def test_watch_space_falls_back_to_polling_and_back(site: Site, page) -> None:
    """watchSpace itself, with short timings: the ways a stream fails, and its return."""
    site.api.events_mode = "hangup"
    await page.goto(site.url + "/s/old")
    await page.evaluate(
        """async () => {
        const api = await import("/static/api.js");
        window.seen = [];
        window.watcher = api.watchSpace(
            "busy",
            (space) => window.seen.push(space.listeners_now),
            (error) => window.seen.push(`error ${error.status}`),
            { interval: 0.3, retry: 1, silence: 2 },
        );
    }"""
    )
    mode = "window.watcher.mode"
    reads = lambda: site.api.space_reads.count("busy")  # noqa: E731

    # A stream that hangs up at once, again and again: after three tries, polling.
    await page.wait_for_function(f"{mode} === 'polling'")
    assert site.api.streams_of("busy") == 3
    await eventually(lambda: reads() >= 3, 10)

    # The stream works again: the next try (after a second or so) takes over from polling.
    site.api.events_mode = "live"
    await page.wait_for_function(f"{mode} === 'events'", timeout=10_000)
    await asyncio.sleep(0.3)  # a read that was on its way lands
    polled = reads()
    await asyncio.sleep(1)
    assert reads() == polled
    site.api.spaces["busy"]["listeners_now"] = 1300
    site.api.push("busy", "listeners", {"listeners_now": 1300})
    await page.wait_for_function("window.seen.at(-1) === 1300")

    # Nothing to say for a while (keep-alive comments are invisible to EventSource): after
    # `silence`, a fresh stream, whose snapshot shows all is well. No polling meanwhile.
    streams, delivered = site.api.streams_of("busy"), await page.evaluate("window.seen.length")
    await eventually(lambda: site.api.streams_of("busy") > streams, 5)
    await page.wait_for_function(f"window.seen.length > {delivered}")
    assert await page.evaluate(mode) == "events"
    assert reads() == polled

    # A stream that opens but never delivers (a proxy that buffers it): polling meanwhile, and
    # after `silence` it counts as failed.
    site.api.events_mode = "silent"
    await eventually(lambda: reads() > polled, 6)
    assert await page.evaluate(mode) == "connecting"
    await page.wait_for_function(f"{mode} === 'polling'", timeout=6000)

    await page.evaluate("window.watcher.stop()")
    assert await page.evaluate(mode) == "stopped"
    await asyncio.sleep(0.3)
    polled = reads()
    await asyncio.sleep(1)
    assert reads() == polled
    assert not [seen for seen in await page.evaluate("window.seen") if isinstance(seen, str)]


# ---- the audience: questions, reactions, a raised hand, before and after ------------------------

XSS_QUESTION = "<script>alert(1)</script> <b>bold?</b>"


def question(id_: str, text: str, *, votes: int = 0, minutes_ago: float = 10, **more) -> dict:
    return {
        "id": id_,
        "text": text,
        "author_id": f"u-{id_}",
        "author_name": "Ana",
        "votes": votes,
        "state": "open",
        "pinned": False,
        "created_at": iso(datetime.now(UTC) - timedelta(minutes=minutes_ago)),
        **more,
    }


async def question_texts(page) -> list[str]:
    return await page.locator("#question-list .question-text").all_text_contents()


async def test_questions_are_text_follow_events_and_take_votes(site: Site, page) -> None:
    site.api.questions["demo"] = [  # in the API's order
        question("q1", "Pinned one", votes=1, pinned=True),
        question("q2", XSS_QUESTION, votes=5, author_name=XSS_NAME),
        question("q3", "Older, two votes", votes=2, minutes_ago=20),
        question("q4", "Newer, two votes", votes=2, minutes_ago=5),
        question("q5", "Answered", votes=9, state="answered"),
    ]
    await page.goto(site.url + "/s/demo")
    card = page.get_by_role("region", name=re.compile("^Questions"))
    await card.locator(".question").first.wait_for()
    assert await question_texts(page) == [
        "Pinned one",
        XSS_QUESTION,
        "Older, two votes",
        "Newer, two votes",
        "Answered",
    ]
    assert await card.locator("script, b, i").count() == 0  # questions and names stay text
    assert await card.locator(".question-flag:visible").all_text_contents() == [
        "Now answering",
        "Answered",
    ]
    await page.wait_for_function("window.causerie?.watching === 'events'")

    # Changed questions arrive as events: q4 gets votes and climbs, q1 is hidden and goes.
    site.api.push(
        "demo",
        "questions",
        {
            "questions": [
                question("q4", "Newer, two votes", votes=7, minutes_ago=5),
                {"id": "q1", "state": "hidden"},
            ]
        },
    )
    await page.wait_for_function(
        "document.querySelector('#question-list .question-text').textContent.startsWith('Newer')"
    )
    assert await question_texts(page) == [
        "Newer, two votes",
        XSS_QUESTION,
        "Older, two votes",
        "Answered",
    ]
    assert site.api.joins == []  # reading needs no token

    # Asking: the page joins once, with the display name, and posts with that token.
    await card.get_by_label("Your name").fill("Zoé")
    await card.get_by_label("Your question").fill("  How do replays work?  ")
    await card.get_by_role("button", name="Ask").click()
    await card.get_by_role("status").filter(has_text="Your question is in").wait_for()
    assert site.api.join_names == ["Zoé"]
    assert site.api.audience[-1] == (
        "POST",
        "/api/spaces/demo/questions",
        "Bearer tok-1",
        {"text": "How do replays work?"},
    )
    mine = card.locator(".question", has_text="How do replays work?")
    assert await mine.locator(".question-author").text_content() == "Zoé (you)"
    assert await card.get_by_label("Your question").input_value() == ""

    # Upvoting: with the same token, once.
    older = card.locator(".question", has_text="Older")
    await older.get_by_role("button", name="Upvote, 2 votes").click()
    await older.get_by_role("button", name="Upvoted, 3 votes", pressed=True).wait_for()
    assert site.api.audience[-1][:3] == (
        "POST",
        "/api/spaces/demo/questions/q3/votes",
        "Bearer tok-1",
    )
    assert len(site.api.joins) == 1
    # Answered questions take no votes.
    assert await card.locator(".question", has_text="Answered").locator(".vote").is_disabled()

    # Withdrawing one's own question takes two taps.
    withdraw = mine.get_by_role("button", name="Withdraw")
    await withdraw.click()
    await mine.get_by_role("button", name="Tap again to withdraw").click()
    await mine.wait_for(state="detached")
    assert site.api.audience[-1][:3] == ("DELETE", "/api/spaces/demo/questions/q-6", "Bearer tok-1")

    # The tab keeps its listener token (and its votes): playing after a reload joins no more.
    await page.reload()
    await older.get_by_role("button", name=re.compile("^Upvoted"), pressed=True).wait_for()
    await page.locator("#play:enabled").click()
    await eventually(lambda: len(site.api.heartbeats) >= 1, 10)
    assert site.api.heartbeats[0][1] == "Bearer tok-1"
    assert len(site.api.joins) == 1


async def test_page_works_without_questions(site: Site, page) -> None:
    site.api.questions_status = 404  # a server without the questions API
    await page.goto(site.url + "/s/demo")
    await eventually(lambda: any(method == "GET" for method, *_ in site.api.audience), 10)
    await page.locator("#play:enabled").wait_for()
    await asyncio.sleep(0.3)
    assert await page.locator("#questions").is_hidden()
    assert await page.locator("#badge").text_content() == "Live"


async def test_reactions_float_capped_and_gently(site: Site, page) -> None:
    await page.goto(site.url + "/s/demo")
    tray = page.get_by_role("group", name="React")
    await tray.wait_for()
    assert await tray.get_by_role("button").count() == 8
    await page.wait_for_function("window.causerie?.watching === 'events'")

    # A thousand reactions in a second: at most 30 float, in proportion.
    site.api.push("demo", "reactions", {"counts": {"👏": 900, "🔥": 100}, "seconds": 1})
    await page.locator(".reaction-float").first.wait_for()
    await asyncio.sleep(1.3)
    assert 25 <= await page.evaluate("window.causerie.reactions.floated") <= 30
    assert await page.locator("#reaction-layer").get_attribute("aria-hidden") == "true"

    # Sending: one join, then the emoji; one's own floats at once.
    floated = await page.evaluate("window.causerie.reactions.floated")
    await tray.get_by_role("button", name="Fire").click()
    await eventually(
        lambda: any(path.endswith("/reactions") for _, path, *_ in site.api.audience), 10
    )
    assert site.api.audience[-1] == ("POST", "/api/spaces/demo/reactions", "Bearer tok-1",
                                     {"emoji": "🔥"})  # fmt: skip
    assert await page.evaluate("window.causerie.reactions.floated") == floated + 1

    # Reduced motion: fewer, and they fade where they are instead of flying.
    await page.emulate_media(reduced_motion="reduce")
    floated = await page.evaluate("window.causerie.reactions.floated")
    site.api.push("demo", "reactions", {"counts": {"👏": 900}, "seconds": 1})
    await page.wait_for_function(f"window.causerie?.reactions.floated > {floated}")
    animation = await page.locator(".reaction-float").last.evaluate(
        "element => getComputedStyle(element).animationName"
    )
    assert animation == "fade-in-place"
    await asyncio.sleep(1.3)
    assert await page.evaluate("window.causerie.reactions.floated") - floated <= 6


async def test_stage_shows_who_is_talking_and_a_raised_hand(site: Site, page) -> None:
    await page.goto(site.url + "/s/demo")
    await page.wait_for_function("window.causerie?.watching === 'events'")
    site.api.push("demo", "speaking", {"speaking": ["cy"]})
    talking = page.locator("#stage-list .person.is-speaking")
    await talking.wait_for()
    assert await talking.locator(".person-name").all_text_contents() == ["Cy"]
    assert "speaking" in await talking.inner_text()
    site.api.push("demo", "speaking", {"speaking": []})
    await talking.wait_for(state="detached")

    await page.get_by_role("button", name="Request to speak").click()
    await page.get_by_role("button", name="Cancel request").wait_for()
    assert site.api.audience[-1][:3] == ("POST", "/api/spaces/demo/speak-requests", "Bearer tok-1")

    # Approved: the stage lists this listener, and the page says where to go.
    approved = copy.deepcopy(site.api.spaces["demo"])
    approved["stage"].append({"id": "l-1", "name": "Guest", "role": "speaker", "muted": False})
    site.api.push("demo", "space", approved)
    link = page.get_by_role("link", name="open the speaker view")
    await link.wait_for()
    assert await link.get_attribute("href") == "/s/demo/speak"
    assert "You're on stage" in await page.locator("#on-stage").text_content()
    assert await page.locator("#hand").is_hidden()


async def test_scheduled_space_counts_down(site: Site, page) -> None:
    await page.goto(site.url + "/s/later")  # two days ahead
    countdown = page.get_by_role("timer")
    await countdown.filter(has_text=re.compile(r"^Starts in (1 d 23 h|2 d)$")).wait_for()
    calendar = page.get_by_role("link", name="Add to calendar")
    assert await calendar.get_attribute("href") == "/api/spaces/later.ics"

    # In the last minute, seconds.
    soon = datetime.now(UTC) + timedelta(seconds=50)
    site.api.spaces["soon"] = site.api.spaces["later"] | {
        "id": "soon",
        "scheduled_start": iso(soon),
    }
    await page.goto(site.url + "/s/soon")
    await countdown.filter(has_text=re.compile(r"^Starts in \d\d s$")).wait_for()
    first = int(re.search(r"\d+", await countdown.text_content()).group())
    await asyncio.sleep(1.2)
    assert int(re.search(r"\d+", await countdown.text_content()).group()) < first
    # Questions can be asked before the start.
    assert await page.get_by_role("button", name="Ask").is_visible()

    site.api.spaces["soon"]["state"] = "live"
    await page.evaluate("window.causerie.refresh()")
    await page.locator("#badge").filter(has_text="Live").wait_for()
    assert await page.locator("#schedule").is_hidden()


async def test_ended_space_offers_replay_download_and_report(site: Site, page) -> None:
    site.api.spaces["rec"] = site.api.spaces["old"] | {
        "id": "rec",
        "replay_url": "/replay/rec/index.m3u8",
        "download_url": "/replay/rec.m4a",
    }
    await page.goto(site.url + "/s/rec")
    replay = page.get_by_role("region", name="Replay")
    await replay.wait_for()
    download = replay.get_by_role("link", name="Download the recording")
    assert await download.get_attribute("href") == site.url + "/replay/rec.m4a"
    report = page.get_by_role("link", name="Report")
    assert await report.get_attribute("href") == "/s/rec/report"
    assert await page.locator("#play").is_hidden()

    # The whole recording is seekable, and plays from where it is sought.
    await page.wait_for_function("document.getElementById('replay-audio').duration > 30")
    await page.evaluate("document.getElementById('replay-audio').play()")
    await page.wait_for_function("document.getElementById('replay-audio').currentTime > 0.3")
    await page.evaluate("document.getElementById('replay-audio').currentTime = 30")
    await page.wait_for_function(
        "(() => { const a = document.getElementById('replay-audio');"
        " return a.currentTime > 30.3 && a.currentTime < 36 && !a.paused; })()",
        timeout=10_000,
    )

    # Without a recording: no replay, still the report.
    await page.goto(site.url + "/s/old")
    await page.locator("#badge").filter(has_text="Ended").wait_for()
    await page.get_by_role("link", name="Report").wait_for()
    assert await page.locator("#replay").is_hidden()
    assert await page.locator("#questions").is_hidden()  # nothing was asked


async def test_long_question_lists_show_the_best_first(site: Site, page) -> None:
    site.api.questions["demo"] = [
        question(f"q{i}", f"Question {i}", votes=100 - i, minutes_ago=60) for i in range(60)
    ]
    await page.goto(site.url + "/s/demo")
    await page.locator("#question-list .question").first.wait_for()
    assert await page.locator("#question-list .question").count() == 50
    assert await page.locator("#questions-count").text_content() == "(60)"
    more = page.get_by_role("button", name="Show more questions (10)")
    await more.click()
    assert await page.locator("#question-list .question").count() == 60
    assert (await question_texts(page))[-1] == "Question 59"
    assert await more.is_hidden()
