"""The host studio (/studio, /studio/{id}) and the speaker view (/s/{id}/speak) in Chromium,
against a real `causerie serve --rtc-host 127.0.0.1` process.

The host and the listener each get their own Chromium, because the fake microphone
(`--use-file-for-fake-audio-capture`) is per browser: the host's plays 440 Hz, the listener's
1000 Hz. ffmpeg, an independent LL-HLS client, records what listeners hear; the recordings are
placed on the wall clock through the segments' EXT-X-PROGRAM-DATE-TIME, so that "the tone left
the output within a second of the click" is measured, not guessed.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest

from causerie.cli import issue_account_token
from tests.media.conftest import make_tone, spectrum_at
from tests.web.live import CHROMIUM, CHROMIUM_ARGS, PHONE, Watched

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOST_TONE, SPEAKER_TONE = 440.0, 1000.0
WINDOW = 0.25  # s: the recordings are looked at in windows this long
PRESENT, ABSENT = 0.05, 0.01  # tone magnitudes (full scale = 1; the tones are at -12 dBFS)
LIVE_WITHIN = 5_000  # ms: a change made elsewhere shows on a page


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


def write_tone(path: Path, frequency: float, seconds: float = 30.0) -> Path:
    """A 48 kHz mono 16-bit WAV of a -12 dBFS sine (Chromium loops it as the microphone)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(make_tone(frequency, seconds).tobytes())
    return path


@asynccontextmanager
async def browser_with_mic(playwright, wav: Path | None = None) -> AsyncIterator[Any]:
    """A Chromium whose fake microphone plays `wav` (the microphone is per browser)."""
    args = list(CHROMIUM_ARGS)
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        yield browser
    finally:
        await browser.close()


async def new_page(browser, watched: Watched, **context: Any):
    page = await (await browser.new_context(**context)).new_page()
    watched.watch(page)
    return page


def assert_clean(*watched: Watched) -> None:
    for seen in watched:
        assert not seen.page_errors, seen.page_errors
        assert not seen.dialogs, seen.dialogs
        assert not seen.http_errors, seen.http_errors
        assert not seen.console_errors, seen.console_errors


# ---- what listeners hear: ffmpeg on the LL-HLS output, placed on the wall clock --------------


@dataclass
class Recording:
    pcm: np.ndarray  # mono int16 at 48 kHz
    start: float  # the wall time (EXT-X-PROGRAM-DATE-TIME) of its first sample

    def tone(self, frequency: float) -> list[tuple[float, float]]:
        """(wall time at the window's start, the tone's magnitude) for each window."""
        size = round(WINDOW * 48000)
        return [
            (self.start + i * WINDOW, spectrum_at(self.pcm[i * size : (i + 1) * size], frequency))
            for i in range(self.pcm.size // size)
        ]


def program_date_times(playlist: str) -> dict[str, float]:
    """Each segment's file name → its EXT-X-PROGRAM-DATE-TIME, as Unix seconds."""
    found: dict[str, float] = {}
    when: float | None = None
    duration = 0.0
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            stamp = line.split(":", 1)[1].replace("Z", "+00:00")
            when = datetime.fromisoformat(stamp).timestamp()
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].rstrip(","))
        elif line and not line.startswith("#") and when is not None:
            found[line.rsplit("/", 1)[-1]] = when
            when += duration
    return found


def record(url: str, space_id: str, out: Path, seconds: float = 5.0) -> Recording:
    """ffmpeg records the live output from the last complete segment on; returns it with the
    wall time of its start (the first segment ffmpeg opened, found in the playlist). That start
    may be up to two segments (3.8 s) before the call: `seconds` must cover it and what the
    caller wants to hear after."""
    playlist_url = f"{url}/hls/{space_id}/index.m3u8"
    proc = subprocess.Popen(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "info", "-nostdin", "-y",
            "-live_start_index", "-1", "-i", playlist_url,
            "-t", str(seconds), "-ac", "1", "-ar", "48000", "-f", "s16le", str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        time.sleep(0.5)  # the first segment ffmpeg opened stays in the playlist for a while
        playlist = httpx.get(playlist_url, timeout=5).text
        _, log = proc.communicate(timeout=seconds + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, log[-2000:]
    first = re.search(r"Opening '[^']*/([^/']+\.m4s)' for reading", log)
    assert first, log[-2000:]
    start = program_date_times(playlist)[first.group(1)]
    return Recording(np.frombuffer(out.read_bytes(), dtype=np.int16), start)


async def record_async(url: str, space_id: str, out: Path, seconds: float = 5.0) -> Recording:
    return await asyncio.to_thread(record, url, space_id, out, seconds)


def summary(recording: Recording, frequency: float, mark: float) -> str:
    """The tone's magnitude per window around `mark`, for the test's output."""
    return " ".join(
        f"{at - mark:+.2f}:{magnitude:.3f}" for at, magnitude in recording.tone(frequency)
    )


def tone_stops(recording: Recording, frequency: float, at: float, within: float) -> float:
    """Assert the tone is heard before `at` and gone `within` s after it; returns when it
    stopped (seconds after `at`, on the wall clock of the media)."""
    windows = recording.tone(frequency)
    before = [m for t, m in windows if t + WINDOW <= at - 0.1]
    after = [m for t, m in windows if t >= at + within]
    detail = summary(recording, frequency, at)
    assert before and min(before) > PRESENT, detail
    assert len(after) >= 3 and max(after) < ABSENT, detail
    last_heard = max(t for t, m in windows if m >= ABSENT and t < at + within)
    return last_heard + WINDOW - at


def tone_starts(recording: Recording, frequency: float, at: float, within: float) -> float:
    """Assert the tone is absent before `at` and back `within` s after it; returns when it came
    back (seconds after `at`)."""
    windows = recording.tone(frequency)
    before = [m for t, m in windows if t + WINDOW <= at - 0.1]
    after = [m for t, m in windows if t >= at + within]
    detail = summary(recording, frequency, at)
    assert before and max(before) < ABSENT, detail
    assert len(after) >= 3 and min(after) > PRESENT, detail
    first_heard = min(t for t, m in windows if m > PRESENT and t > at - 0.5)
    return first_heard - at


# ---- what a page hears on its peer connection (its mix-minus) --------------------------------

# The received stream's spectrum, from an AnalyserNode: the dominant frequency and the level
# of both tones (dB).
HEARD_JS = """async () => {
    const stream = window.causerie.returnAudio.srcObject;
    if (!stream) return null;
    const context = new AudioContext({sampleRate: 48000});
    const analyser = context.createAnalyser();
    analyser.fftSize = 16384;
    context.createMediaStreamSource(stream).connect(analyser);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    await context.close();
    let peak = 1;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[peak]) peak = i;
    const binHz = 48000 / analyser.fftSize;
    const level = (hz) => bins[Math.round(hz / binHz)];
    return {peakHz: peak * binHz, db440: level(440), db1000: level(1000)};
}"""


async def assert_hears(page, other: float, own: float) -> None:
    heard = await page.evaluate(HEARD_JS)
    received = await page.evaluate("window.causerie.air.session.received()")
    print(f"{page.url}: heard {heard}, received {received}")
    assert received["samples"] > 24000 and received["energy"] > 0, received
    assert heard and abs(heard["peakHz"] - other) < 10, heard
    # The mix-minus: the others, and not one's own voice.
    assert heard[f"db{int(other)}"] - heard[f"db{int(own)}"] > 30, heard


# ---- the flows ----------------------------------------------------------------------------


def create_space(url: str, token: str, title: str, **more: Any) -> str:
    created = httpx.post(
        f"{url}/api/spaces",
        json={"title": title, **more},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def levels(url: str, space_id: str, token: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{url}/api/spaces/{space_id}/levels",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["levels"]


async def test_request_to_speak_approve_mute_and_move_to_audience(
    rtc_server, tmp_path: Path, ffmpeg
) -> None:
    from playwright.async_api import async_playwright

    url, data_dir = rtc_server
    token = issue_account_token(data_dir, "Host", None, days=1)
    space_id = create_space(url, token, "Open mic night")
    host_wav = write_tone(tmp_path / "host.wav", HOST_TONE)
    speaker_wav = write_tone(tmp_path / "speaker.wav", SPEAKER_TONE)
    watched_host, watched_listener = Watched(), Watched()
    async with (
        async_playwright() as playwright,
        browser_with_mic(playwright, host_wav) as host_browser,
        browser_with_mic(playwright, speaker_wav) as listener_browser,
    ):
        # The host opens the studio with the token in the address: it's kept, then taken out.
        studio = await new_page(host_browser, watched_host, viewport={"width": 1280, "height": 800})
        await studio.goto(f"{url}/studio/{space_id}#token={token}")
        await studio.get_by_role("heading", name="Open mic night").wait_for()
        assert token not in studio.url
        assert await studio.evaluate("localStorage.getItem('causerie.account')") == token

        # Live, and on air with the host's microphone (the pure tone: no voice processing).
        await studio.get_by_role("button", name="Go live").click()
        await studio.locator("#badge[data-state=live]").wait_for()
        await studio.get_by_label("Echo and noise reduction").uncheck()
        await studio.get_by_role("button", name="Go on air").click()
        await studio.wait_for_function("window.causerie?.state.onAir", timeout=15_000)
        await studio.get_by_role("button", name="Leave the air").wait_for()

        # A listener asks to speak; the studio sees the hand go up, live, and approves it.
        listener = await new_page(listener_browser, watched_listener, **PHONE)
        await listener.goto(f"{url}/s/{space_id}")
        await listener.get_by_label("Your name").fill("Lou")
        await listener.get_by_role("button", name="Request to speak").click()
        approve = studio.get_by_role("button", name="Approve, Lou")
        await approve.wait_for(timeout=LIVE_WITHIN)
        assert await studio.locator("#requests-count").text_content() == "1"
        await approve.click()
        await (
            studio.locator("#request-list").get_by_role("listitem").first.wait_for(state="detached")
        )

        # The listener's page says so; its speaker view goes live with the listener's token.
        link = listener.get_by_role("link", name="open the speaker view")
        await link.wait_for(timeout=LIVE_WITHIN)
        await link.click()
        await listener.get_by_role("heading", name="You're on stage").wait_for()
        await listener.get_by_label("Echo and noise reduction").uncheck()
        await listener.get_by_role("button", name="Go live").click()
        await listener.wait_for_function("window.causerie?.state.phase === 'live'", timeout=15_000)
        lou = await listener.evaluate("window.causerie.state.session.listenerId")
        went_live = time.time()

        # The studio shows Lou talking, with a moving level bar.
        row = studio.locator(f"#stage-list li[data-id='{lou}']")
        await row.locator(".studio-speaking").wait_for(timeout=LIVE_WITHIN)
        await studio.wait_for_function(
            """(id) => {
                const fill = document.querySelector(`#stage-list li[data-id='${id}']
                    .studio-level-fill`);
                return fill && new DOMMatrix(getComputedStyle(fill).transform).a > 0.3;
            }""",
            arg=lou,
            timeout=LIVE_WITHIN,
        )

        # Each hears the other at once, on their own peer connection, and not themselves.
        await assert_hears(listener, other=HOST_TONE, own=SPEAKER_TONE)
        await assert_hears(studio, other=SPEAKER_TONE, own=HOST_TONE)

        # Listeners (ffmpeg on the LL-HLS output) hear both.
        heard = await record_async(url, space_id, tmp_path / "both.raw", 4)
        after = [m for t, m in heard.tone(SPEAKER_TONE) if t > went_live + 0.5]
        assert len(after) >= 4 and min(after) > PRESENT, summary(heard, SPEAKER_TONE, went_live)
        assert spectrum_at(heard.pcm, HOST_TONE) > PRESENT

        # The host mutes Lou: the tone leaves the output within a second; unmuting brings it
        # back as fast.
        clicked = time.time()
        await row.get_by_role("button", name="Mute, Lou").click()
        await row.locator(".studio-muted").wait_for()
        muted = await record_async(url, space_id, tmp_path / "muted.raw", 7)
        stopped = tone_stops(muted, SPEAKER_TONE, clicked, within=1.0)
        assert spectrum_at(muted.pcm, HOST_TONE) > PRESENT  # the host goes on
        assert (
            await listener.get_by_role("button", name="Mute my microphone").get_attribute(
                "aria-pressed"
            )
            == "true"
        )

        clicked = time.time()
        await row.get_by_role("button", name="Unmute, Lou").click()
        await row.locator(".studio-muted").wait_for(state="hidden")
        unmuted = await record_async(url, space_id, tmp_path / "unmuted.raw", 7)
        back = tone_starts(unmuted, SPEAKER_TONE, clicked, within=1.0)

        # Moved to the audience: the server ends Lou's WHIP session, the page tears down its
        # connection and says so, and the tone leaves the output.
        clicked = time.time()
        await row.get_by_role("button", name="Move to audience, Lou").click()
        await row.wait_for(state="detached")
        await listener.get_by_role("heading", name="You're back in the audience").wait_for(
            timeout=LIVE_WITHIN
        )
        assert await listener.evaluate("window.causerie.air") is None
        assert await listener.locator("#controls").is_hidden()
        deadline = time.monotonic() + 3
        while lou in (inputs := levels(url, space_id, token)):
            assert time.monotonic() < deadline, inputs
            await asyncio.sleep(0.1)
        moved = await record_async(url, space_id, tmp_path / "moved.raw", 8)
        gone = tone_stops(moved, SPEAKER_TONE, clicked, within=1.0)
        assert spectrum_at(moved.pcm, HOST_TONE) > PRESENT

        # The host leaves the air: the server forgets the host's session too.
        host_id = await studio.evaluate("window.causerie.state.me")
        await studio.get_by_role("button", name="Leave the air").click()
        deadline = time.monotonic() + 3
        while host_id in (inputs := levels(url, space_id, token)):
            assert time.monotonic() < deadline, inputs
            await asyncio.sleep(0.1)

    print(
        f"\nmuted: the tone stopped {stopped:+.2f} s after the click; unmuted: back after "
        f"{back:+.2f} s; moved to the audience: stopped after {gone:+.2f} s"
    )
    assert_clean(watched_host, watched_listener)


async def test_studio_creates_a_scheduled_space_with_a_countdown(rtc_server) -> None:
    from playwright.async_api import async_playwright

    url, data_dir = rtc_server
    token = issue_account_token(data_dir, "Host", None, days=1)
    # The browser is in New York: the start time typed there is sent with its offset.
    zone = "America/New_York"
    start = (datetime.now(UTC) + timedelta(hours=2, minutes=15)).replace(second=0, microsecond=0)
    typed = start.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
    watched = Watched()
    async with async_playwright() as playwright, browser_with_mic(playwright) as browser:
        studio = await new_page(browser, watched, timezone_id=zone, **PHONE)
        await studio.goto(f"{url}/studio")
        # No token yet: the studio asks for one, once.
        await studio.get_by_label("Account token").fill(token)
        await studio.get_by_role("button", name="Sign in").click()
        await studio.get_by_role("heading", name="New space").wait_for()

        await studio.get_by_role("button", name="Create space").click()
        await studio.get_by_text("Give your space a title.").wait_for()
        await studio.get_by_label("Title").fill("Next week's chat")
        await studio.get_by_label("Description").fill("About <b>studios</b>")
        await studio.get_by_label("Start time").fill(typed)
        await studio.get_by_role("button", name="Create space").click()
        await studio.wait_for_url(re.compile(r"/studio/[A-Za-z0-9_-]+$"))
        space_id = studio.url.rsplit("/", 1)[1]
        await studio.locator("#badge[data-state=scheduled]").wait_for()
        await studio.get_by_role("button", name="Go live").wait_for()
        await studio.get_by_role("button", name="Cancel space").wait_for()

        space = httpx.get(f"{url}/api/spaces/{space_id}", timeout=5).json()
        assert space["title"] == "Next week's chat"
        assert space["description"] == "About <b>studios</b>"
        assert datetime.fromisoformat(space["scheduled_start"]) == start

        listener = await new_page(browser, watched, **PHONE)
        await listener.goto(f"{url}/s/{space_id}")
        await (
            listener.get_by_role("timer")
            # 2 h 14-15 min at creation (the start has no seconds), less the time the
            # flow took on a busy machine.
            .filter(has_text=re.compile(r"^Starts in 2 h 1[0-5] min$"))
            .wait_for()
        )
        assert await listener.locator("#description").text_content() == "About <b>studios</b>"

        # The new space is among the account's own, back on /studio (no token asked again).
        await studio.goto(f"{url}/studio")
        await studio.get_by_role("link", name=re.compile("Next week's chat")).wait_for()
    assert_clean(watched)


async def test_studio_ends_the_space_after_confirmation(rtc_server) -> None:
    from playwright.async_api import async_playwright

    url, data_dir = rtc_server
    token = issue_account_token(data_dir, "Host", None, days=1)
    space_id = create_space(url, token, "Short one")
    started = httpx.post(
        f"{url}/api/spaces/{space_id}/start",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert started.status_code == 200, started.text
    watched = Watched()
    async with async_playwright() as playwright, browser_with_mic(playwright) as browser:
        listener = await new_page(browser, watched, **PHONE)
        await listener.goto(f"{url}/s/{space_id}")
        await listener.locator("#badge").filter(has_text="Live").wait_for()

        # `causerie demo` prints host links as #host=…: the studio takes those too.
        studio = await new_page(browser, watched, **PHONE)
        await studio.goto(f"{url}/studio/{space_id}#host={token}")
        end = studio.get_by_role("button", name="End space")
        await end.wait_for()
        assert "host=" not in studio.url

        # Cancelling the confirmation changes nothing.
        await end.click()
        cancel = studio.get_by_role("button", name="Cancel", exact=True)
        await cancel.wait_for()
        assert await cancel.evaluate("(button) => button === document.activeElement")
        await cancel.click()
        await end.wait_for()
        assert httpx.get(f"{url}/api/spaces/{space_id}", timeout=5).json()["state"] == "live"

        await end.click()
        await studio.get_by_role("button", name="Yes, end it").click()
        await studio.locator("#badge[data-state=ended]").wait_for()
        await studio.get_by_text("The space has ended.").first.wait_for()
        await listener.locator("#badge").filter(has_text="Ended").wait_for(timeout=LIVE_WITHIN)
    assert httpx.get(f"{url}/api/spaces/{space_id}", timeout=5).json()["state"] == "ended"
    assert_clean(watched)


async def test_studio_says_when_a_space_nobody_speaks_in_will_end(tmp_path: Path) -> None:
    """`--end-idle-after 0.25` (15 s): nobody goes on air, the studio says when the space ends
    by itself (announced 5 s ahead), then shows it ended."""
    from playwright.async_api import async_playwright

    from tests.harness.causerie_process import causerie_process

    with causerie_process(tmp_path, "serve", "--end-idle-after", "0.25") as node:
        token = issue_account_token(node.data_dir, "Host", None, days=1)
        space_id = create_space(node.url, token, "Left alone")
        started = httpx.post(
            f"{node.url}/api/spaces/{space_id}/start",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert started.status_code == 200, started.text
        watched = Watched()
        async with async_playwright() as playwright, browser_with_mic(playwright) as browser:
            studio = await new_page(browser, watched)
            await studio.goto(f"{node.url}/studio/{space_id}#host={token}")
            await studio.locator("#badge[data-state=live]").wait_for()
            assert await studio.locator("#idle-notice").is_hidden()
            notice = studio.get_by_role("alert").filter(has_text="ends by itself at")
            await notice.wait_for(timeout=20_000)
            assert "Go on air to keep it going." in await notice.inner_text()
            details = httpx.get(f"{node.url}/api/spaces/{space_id}", timeout=5).json()
            assert details["state"] == "live" and details["ending_at"]
            await studio.locator("#badge[data-state=ended]").wait_for(timeout=15_000)
            assert await studio.locator("#idle-notice").is_hidden()
        assert httpx.get(f"{node.url}/api/spaces/{space_id}", timeout=5).json()["state"] == "ended"
    assert_clean(watched)
