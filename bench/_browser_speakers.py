"""Two Chromium speakers on one space: the speaker-to-speaker delay a browser user gets.

Both speakers are pages of one headless Chromium (Playwright, Debian's /usr/bin/chromium), each
a plain RTCPeerConnection publishing with WHIP (``sendrecv``: the node sends its mix-minus
back), as the project's speaker page does. Speaker A's microphone is an AudioWorklet that
makes a 1 kHz burst (100 ms, -12 dBFS) when told to; speaker B sends silence and runs an
AudioWorklet on the track it receives (its mix-minus, i.e. A) that reports each onset (a
128-sample block above -40 dBFS after at least 300 ms below). Each worklet reports to its page
the moment its burst starts or its onset is seen, and the page stamps the message with
``performance.timeOrigin + performance.now()``: one clock for both pages, and the same
worklet-to-page hop on both sides, so it cancels out. The delay is B's stamp minus A's: it
covers A's capture (WebAudio to the track), Opus encoding, the network, the node (its jitter
buffer, the mixer's tick, the mix-minus encode), B's jitter buffer (NetEq), decoding and B's
WebAudio graph; not a sound card at either end (headless Chromium plays to a fake device).

B's received-audio statistics (``inbound-rtp``: the jitter buffer's mean delay and target)
say how much of the delay is Chromium's own; and the same two pages connected straight to each
other (a direct peer connection on loopback, no node) measure what two browsers cost without
the node, so that the node's share is the difference.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass

from playwright.async_api import Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
PAGE_PATH = "/bench-speaker"
QUIET_BEFORE_ONSET = 0.3  # seconds: an onset follows at least this much quiet

WORKLETS = """
class Burst extends AudioWorkletProcessor {
  constructor() {
    super();
    this.left = 0;
    this.phase = 0;
    this.port.onmessage = () => { this.left = Math.round(0.1 * sampleRate); this.fresh = true; };
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    for (let i = 0; i < out.length; i++) {
      if (this.left > 0) {
        out[i] = 0.25 * Math.sin(this.phase);
        this.phase += 2 * Math.PI * 1000 / sampleRate;
        this.left--;
      } else out[i] = 0;
    }
    if (this.fresh) { this.fresh = false; this.port.postMessage(currentTime); }
    return true;
  }
}
class Onset extends AudioWorkletProcessor {
  constructor() { super(); this.quiet = 0; }
  process(inputs) {
    const input = inputs[0][0];
    if (!input) return true;
    let power = 0;
    for (let i = 0; i < input.length; i++) power += input[i] * input[i];
    const loud = power / input.length > 1e-4;  // -40 dBFS
    if (loud && this.quiet >= QUIET * sampleRate) this.port.postMessage(currentTime);
    this.quiet = loud ? 0 : this.quiet + input.length;
    return true;
  }
}
registerProcessor("burst", Burst);
registerProcessor("onset", Onset);
""".replace("QUIET", str(QUIET_BEFORE_ONSET))

SPEAKER = """async ({worklets, role, offers}) => {
  const now = () => performance.timeOrigin + performance.now();
  const context = new AudioContext({sampleRate: 48000, latencyHint: "interactive"});
  await context.resume();
  const module = URL.createObjectURL(new Blob([worklets], {type: "text/javascript"}));
  await context.audioWorklet.addModule(module);
  const microphone = new MediaStreamAudioDestinationNode(context, {channelCount: 1});
  window.microphone = microphone.stream.getAudioTracks()[0];
  window.stamps = [];
  if (role === "sender") {
    const burst = new AudioWorkletNode(context, "burst", {outputChannelCount: [1]});
    burst.connect(microphone);
    burst.port.onmessage = () => window.stamps.push(now());
    window.burst = () => burst.port.postMessage("go");
  }
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: "max-bundle"});
  window.pc = pc;
  if (offers) pc.addTransceiver(window.microphone, {direction: "sendrecv"});
  pc.ontrack = (event) => {
    if (role !== "receiver") return;
    const stream = new MediaStream([event.track]);
    // Chromium feeds a remote track to Web Audio only while a media element plays it.
    const element = new Audio();
    element.muted = true;
    element.srcObject = stream;
    element.play();
    const onset = new AudioWorkletNode(context, "onset");
    new MediaStreamAudioSourceNode(context, {mediaStream: stream}).connect(onset);
    onset.connect(context.destination);
    onset.port.onmessage = () => window.stamps.push(now());
  };
  window.connected = new Promise((resolve) => {
    pc.onconnectionstatechange = () => pc.connectionState === "connected" && resolve();
  });
  window.gathered = () => new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
    setTimeout(resolve, 5000);
  });
}"""

WHIP = """async ({url, token}) => {
  const pc = window.pc;
  await pc.setLocalDescription(await pc.createOffer());
  await window.gathered();
  const response = await fetch(url, {
    method: "POST",
    headers: {"Authorization": `Bearer ${token}`, "Content-Type": "application/sdp"},
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) throw new Error(`WHIP answered ${response.status}`);
  window.session = new URL(response.headers.get("Location"), url).href;
  await pc.setRemoteDescription({type: "answer", sdp: await response.text()});
  await window.connected;
}"""

# The reference without the node: A offers to B directly (signalling through this script).
OFFER = """async () => {
  await window.pc.setLocalDescription(await window.pc.createOffer());
  await window.gathered();
  return window.pc.localDescription.sdp;
}"""
ANSWER = """async (sdp) => {
  const pc = window.pc;
  await pc.setRemoteDescription({type: "offer", sdp});
  const transceiver = pc.getTransceivers()[0];
  transceiver.direction = "sendrecv";
  await transceiver.sender.replaceTrack(window.microphone);
  await pc.setLocalDescription(await pc.createAnswer());
  await window.gathered();
  return pc.localDescription.sdp;
}"""
ACCEPT = """async (sdp) => {
  await window.pc.setRemoteDescription({type: "answer", sdp});
  await window.connected;
}"""

RECEIVED_STATS = """async () => {
  for (const report of (await window.pc.getStats()).values()) {
    if (report.type === "inbound-rtp" && report.kind === "audio") {
      const emitted = report.jitterBufferEmittedCount || 1;
      return {
        jitter_buffer_ms: 1000 * report.jitterBufferDelay / emitted,
        target_ms: 1000 * (report.jitterBufferTargetDelay || 0) / emitted,
        jitter_ms: 1000 * (report.jitter || 0),
        concealed: report.concealedSamples || 0,
        samples: report.totalSamplesReceived || 0,
      };
    }
  }
  return null;
}"""

GOODBYE = """async (token) => {
  if (window.session) await fetch(window.session, {
    method: "DELETE", headers: {"Authorization": `Bearer ${token}`}});
  window.pc.close();
}"""


@dataclass
class BrowserRun:
    delays: list[float]
    """Seconds from A's burst to B's onset, one per burst heard."""
    bursts: int
    received: dict[str, float]
    """B's inbound-rtp figures (RECEIVED_STATS)."""


async def _speaker(context, base_url: str, role: str, offers: bool) -> Page:
    page = await context.new_page()
    await page.goto(base_url + PAGE_PATH)
    await page.evaluate(SPEAKER, {"worklets": WORKLETS, "role": role, "offers": offers})
    return page


async def _connect(a: Page, b: Page, whip_url: str | None, tokens: tuple[str, str]) -> None:
    """Both speakers on the node (WHIP), or, with no ``whip_url``, A straight to B."""
    if whip_url is None:
        answer = await b.evaluate(ANSWER, await a.evaluate(OFFER))
        await asyncio.wait_for(a.evaluate(ACCEPT, answer), 30)
        return
    for page, token in ((a, tokens[0]), (b, tokens[1])):
        await asyncio.wait_for(page.evaluate(WHIP, {"url": whip_url, "token": token}), 30)


def match_onsets(sent: list[float], heard: list[float], within: float) -> list[float]:
    """For each burst sent, the delay to the first onset heard after it (within ``within`` s)."""
    delays = []
    for start in sent:
        later = [t - start for t in heard if 0 < t - start < within]
        if later:
            delays.append(min(later))
    return delays


async def measure(
    base_url: str, space_id: str | None, tokens: tuple[str, str], bursts: int, every: float
) -> BrowserRun:
    """One run: A bursts ``bursts`` times, ``every`` s apart; B's onsets matched to them.
    Through the node's space ``space_id``, or (None) over a direct peer connection."""
    whip_url = f"{base_url}/whip/{space_id}" if space_id else None
    async with async_playwright() as playwright:
        with tempfile.TemporaryDirectory(prefix="bench-speakers-") as profile:
            context = await playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=ARGS, headless=True
            )
            try:
                await context.route(
                    f"{base_url}{PAGE_PATH}",
                    lambda route: route.fulfill(
                        body="<!doctype html><title>speaker</title>", content_type="text/html"
                    ),
                )
                a = await _speaker(context, base_url, "sender", True)
                b = await _speaker(context, base_url, "receiver", whip_url is not None)
                await _connect(a, b, whip_url, tokens)
                await asyncio.sleep(2)  # both jitter buffers settle
                await b.evaluate("window.stamps.length = 0")
                for _ in range(bursts):
                    await a.evaluate("window.burst()")
                    await asyncio.sleep(every)
                sent = await a.evaluate("window.stamps")
                heard = await b.evaluate("window.stamps")
                received = await b.evaluate(RECEIVED_STATS) or {}
                for page, token in ((a, tokens[0]), (b, tokens[1])):
                    await page.evaluate(GOODBYE, token)
            finally:
                await context.close()
    delays = [d / 1000 for d in match_onsets(sent, heard, 1000 * every)]
    return BrowserRun(delays, bursts, received)
