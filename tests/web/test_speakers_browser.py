"""Two Chromium speakers publish with WHIP to a real `causerie serve` process.

Each browser's fake microphone plays its own tone (440 Hz, 1000 Hz). Listeners (ffmpeg reading
the LL-HLS playlist) must hear both; each speaker must receive audio back on its peer
connection: its mix-minus, the other speaker's tone and not its own.

ICE uses 127.0.0.1 only: the node runs with `--rtc-host 127.0.0.1`, and Chromium is allowed
loopback candidates (`--allow-loopback-in-peer-connection`).
"""

from __future__ import annotations

import asyncio
import subprocess
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from causerie.cli import issue_account_token
from causerie.store import SqliteStore, update_space
from tests.media.conftest import make_tone, spectrum_at
from tests.web.live import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TONES = (440.0, 1000.0)

# Runs in the page: publish the fake microphone with WHIP (RFC 9725), non-trickle: wait for
# ICE gathering to complete, POST the offer, apply the answer. Echo cancellation, noise
# suppression and gain control are off so that a pure tone goes through untouched.
PUBLISH_JS = """async ({spaceId, token}) => {
    const stream = await navigator.mediaDevices.getUserMedia({audio: {
        echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
    const pc = new RTCPeerConnection({iceServers: []});
    pc.addTransceiver(stream.getAudioTracks()[0], {direction: "sendrecv", streams: [stream]});
    window.remoteTrack = new Promise((resolve) => {
        pc.ontrack = (event) => resolve(event.track);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener("icegatheringstatechange", () => {
            if (pc.iceGatheringState === "complete") resolve();
        });
    });
    const response = await fetch(`/whip/${spaceId}`, {
        method: "POST",
        headers: {"Authorization": `Bearer ${token}`, "Content-Type": "application/sdp"},
        body: pc.localDescription.sdp,
    });
    const answer = await response.text();
    if (response.status !== 201) throw new Error(`WHIP POST ${response.status}: ${answer}`);
    await pc.setRemoteDescription({type: "answer", sdp: answer});
    window.pc = pc;
    return {status: response.status, location: response.headers.get("Location")};
}"""

# Runs in the page: analyse the received track (the mix-minus) with an AnalyserNode. The stream
# also plays in an <audio> element (not muted): Chromium's getStats counts the received audio
# energy only for audio it plays out. Returns the dominant frequency and inbound RTP figures.
LISTEN_JS = """async () => {
    const track = await window.remoteTrack;
    const stream = new MediaStream([track]);
    const audio = new Audio();
    audio.muted = false;
    audio.srcObject = stream;
    await audio.play();
    const context = new AudioContext({sampleRate: 48000});
    const analyser = context.createAnalyser();
    analyser.fftSize = 16384;
    context.createMediaStreamSource(stream).connect(analyser);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    let peak = 0;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[peak]) peak = i;
    const binHz = context.sampleRate / analyser.fftSize;
    const level = (hz) => bins[Math.round(hz / binHz)];
    let inbound = null;
    (await window.pc.getStats()).forEach((report) => {
        if (report.type === "inbound-rtp" && report.kind === "audio") inbound = report;
    });
    return {
        peakHz: peak * binHz,
        peakDb: bins[peak],
        db440: level(440),
        db1000: level(1000),
        energy: inbound ? inbound.totalAudioEnergy : 0,
        samples: inbound ? inbound.totalSamplesReceived : 0,
        state: window.pc.connectionState,
    };
}"""


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")


def write_tone(path: Path, frequency: float, seconds: float = 20.0) -> Path:
    """A 48 kHz mono 16-bit WAV of a -12 dBFS sine (Chromium loops it as the microphone)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(make_tone(frequency, seconds).tobytes())
    return path


async def live_space_with_two_speakers(url: str, data_dir: Path) -> tuple[str, str, str]:
    """A live space; returns (space id, host token, token of a listener made speaker)."""
    host_token = issue_account_token(data_dir, "Hana", "u-host", days=1)
    host = {"Authorization": f"Bearer {host_token}"}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        space = (await http.post("/api/spaces", json={"title": "Two voices"}, headers=host)).json()
        assert (await http.post(f"/api/spaces/{space['id']}/start", headers=host)).is_success
        joined = (await http.post(f"/api/spaces/{space['id']}/join", json={"name": "Lou"})).json()
    # Raise a hand and approve it through the domain, in the node's own SQLite file.
    store = SqliteStore(data_dir / "causerie.sqlite3")
    try:

        def promote(s) -> None:
            s.request_to_speak(joined["listener_id"], "Lou", s.started_at)
            s.answer_request("u-host", joined["listener_id"], approve=True)

        await update_space(store, space["id"], promote)
    finally:
        await store.close()
    return space["id"], host_token, joined["token"]


@asynccontextmanager
async def speaker_browser(playwright, wav: Path) -> AsyncIterator[Any]:
    """A Chromium whose fake microphone plays `wav` (one browser per speaker)."""
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"]
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        yield browser
    finally:
        await browser.close()


def record_output(url: str, space_id: str, out: Path, seconds: float = 5.0) -> np.ndarray:
    """ffmpeg (an independent HLS client) records the live output; returns mono int16 PCM."""
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-live_start_index", "-1",
            "-i", f"{url}/hls/{space_id}/index.m3u8",
            "-t", str(seconds), "-ac", "1", "-ar", "48000", "-f", "s16le", str(out),
        ],
        check=True,
        timeout=seconds + 30,
    )  # fmt: skip
    return np.frombuffer(out.read_bytes(), dtype=np.int16)


async def test_two_browsers_speak_and_hear_each_other(rtc_server, tmp_path, ffmpeg) -> None:
    from playwright.async_api import async_playwright

    url, data_dir = rtc_server
    space_id, host_token, speaker_token = await live_space_with_two_speakers(url, data_dir)
    tokens = (host_token, speaker_token)
    wavs = [write_tone(tmp_path / f"tone{int(f)}.wav", f) for f in TONES]
    async with (
        async_playwright() as playwright,
        speaker_browser(playwright, wavs[0]) as first,
        speaker_browser(playwright, wavs[1]) as second,
    ):
        pages = [await browser.new_page() for browser in (first, second)]
        for page in pages:
            await page.goto(f"{url}/healthz")  # an origin of our own: a secure context
        published = await asyncio.gather(
            *(
                page.evaluate(PUBLISH_JS, {"spaceId": space_id, "token": token})
                for page, token in zip(pages, tokens, strict=True)
            )
        )
        for result in published:
            assert result["status"] == 201
            assert result["location"].startswith(f"/whip/{space_id}/sessions/")
        for page in pages:
            await page.wait_for_function(
                "window.pc.connectionState === 'connected'", timeout=15_000
            )
        await asyncio.sleep(3)  # let both voices reach a few segments

        recording = await asyncio.to_thread(record_output, url, space_id, tmp_path / "out.raw")
        heard = await asyncio.gather(*(page.evaluate(LISTEN_JS) for page in pages))

    print(f"\nffmpeg: {recording.size / 48000:.1f} s; 440 Hz {spectrum_at(recording, 440):.3f}, "
          f"1000 Hz {spectrum_at(recording, 1000):.3f}; pages: {heard}")  # fmt: skip
    assert recording.size >= 4 * 48000
    for frequency in TONES:
        assert spectrum_at(recording, frequency) > 0.05, frequency
    for own, other, result in zip(TONES, reversed(TONES), heard, strict=True):
        assert result["state"] == "connected"
        assert result["samples"] > 48000 and result["energy"] > 0.01, result
        # The mix-minus holds the other speaker's tone, and not one's own.
        assert abs(result["peakHz"] - other) < 10, result
        assert result[f"db{int(other)}"] - result[f"db{int(own)}"] > 30, result


# Runs in the page: packets the audio sender sent, sampled every 200 ms for `seconds`.
PACKETS_SENT_JS = """async (seconds) => {
    const samples = [];
    for (let i = 0; i <= seconds * 5; i++) {
        let sent = 0;
        (await window.pc.getStats()).forEach((report) => {
            if (report.type === "outbound-rtp" && report.kind === "audio") {
                sent = report.packetsSent;
            }
        });
        samples.push(sent);
        await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return samples;
}"""


def write_pause_then_tone(path: Path, pause: float = 4.0, tone: float = 4.0) -> Path:
    """A WAV of digital silence, then a 440 Hz tone (Chromium loops it as the microphone).

    The tone swells and fades four times a second, like syllables (between -18 and -12 dBFS):
    a voice activity detector takes a perfectly steady tone for background noise after a while.
    """
    t = np.arange(round(tone * 48000)) / 48000
    swell = 0.75 + 0.25 * np.cos(2 * np.pi * 4 * t)
    voice = np.rint(make_tone(440.0, tone) * swell).astype(np.int16)
    pcm = np.concatenate([np.zeros(round(pause * 48000), np.int16), voice])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(pcm.tobytes())
    return path


async def test_a_silent_browser_sends_next_to_nothing(rtc_server, tmp_path, ffmpeg) -> None:
    """The node's answer asks for Opus DTX: Chromium stops sending while its microphone is
    silent (the node has nothing to receive, decrypt, decode or mix) and speaks again at once."""
    from playwright.async_api import async_playwright

    url, data_dir = rtc_server
    space_id, host_token, _ = await live_space_with_two_speakers(url, data_dir)
    wav = write_pause_then_tone(tmp_path / "pause-then-tone.wav")
    async with async_playwright() as playwright, speaker_browser(playwright, wav) as browser:
        page = await browser.new_page()
        await page.goto(f"{url}/healthz")
        await page.evaluate(PUBLISH_JS, {"spaceId": space_id, "token": host_token})
        await page.wait_for_function("window.pc.connectionState === 'connected'", timeout=15_000)
        sent = await page.evaluate(PACKETS_SENT_JS, 10)  # more than one 8 s loop of the file
        recording = await asyncio.to_thread(record_output, url, space_id, tmp_path / "out.raw", 9.0)
    # Packets per second, over each second of the samples (5 samples a second).
    rates = [later - earlier for earlier, later in zip(sent, sent[5:], strict=False)]
    # The listeners' output in 20 ms frames: 9 s of it hold a whole 4 s tone.
    frames = recording[: recording.size // 960 * 960].reshape(-1, 960).astype(np.float64)
    loud = np.sqrt(np.mean(np.square(frames), axis=1)) > 32768 * 10 ** (-30 / 20)
    print(f"\npackets sent per second: {rates}")
    print("loud 20 ms frames of the output: " + "".join("x" if x else "." for x in loud))
    assert max(rates) >= 45  # talking: a packet every 20 ms
    assert min(rates) <= 10  # silent: a comfort-noise packet every 400 ms or so, not 50
    # The voice after each pause is mixed (a stall of this shared machine may cost a frame).
    assert loud.sum() >= 180
    assert spectrum_at(frames[loud].astype(np.int16).reshape(-1), 440) > 0.1
