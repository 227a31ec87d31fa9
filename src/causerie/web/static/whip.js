// Speaking from the browser: the microphone, and WHIP (RFC 9725) to publish it; shared by the
// host studio and the speaker view.
//
// WHIP here is non-trickle: the offer is POSTed once ICE gathering is complete (the server
// answers with all of its candidates, and refuses PATCH). The audio transceiver is `sendrecv`:
// what comes back on the same peer connection is the speaker's mix-minus (everyone on stage but
// themselves), to be played at once, with no LL-HLS delay. DELETE on the session's Location
// ends it.

import { ApiError, errorFrom } from "./api.js";
import { storageGet, storageSet } from "./page.js";

const PROCESSING_KEY = "causerie.voiceProcessing";
const GATHERING_TIMEOUT = 5000; // ms: after this, offer the candidates found so far

// ---- the microphone -----------------------------------------------------------------------

/**
 * Whether the browser cleans up the voice (echo cancellation, noise suppression, automatic
 * gain). On by default: without headphones, the others' voices would come back as echo.
 */
export function voiceProcessing() {
  return storageGet("local", PROCESSING_KEY) !== "off";
}

export function setVoiceProcessing(on) {
  storageSet("local", PROCESSING_KEY, on ? "on" : "off");
}

/** The microphone, as a MediaStream with one audio track. */
export async function openMicrophone({ processing = voiceProcessing() } = {}) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("This browser can't use a microphone here (it needs HTTPS).");
  }
  return navigator.mediaDevices.getUserMedia({
    audio: {
      echoCancellation: processing,
      noiseSuppression: processing,
      autoGainControl: processing,
      channelCount: 1,
    },
  });
}

/** What went wrong with the microphone, said for people. */
export function micProblemText(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "The browser didn't allow the microphone. Allow it (address bar), then try again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Plug one in and try again.";
    case "NotReadableError":
      return "The microphone is busy in another app. Close it there and try again.";
    default:
      return null;
  }
}

/**
 * A level meter on a stream: `read()` gives its level now in dBFS (−100 for silence),
 * `close()` releases it.
 */
export function levelMeter(stream) {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return { read: () => -100, close() {} };
  const context = new Context();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  const source = context.createMediaStreamSource(stream);
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  return {
    read() {
      if (context.state === "suspended") context.resume().catch(() => {});
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      const rms = Math.sqrt(sum / samples.length);
      return rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
    },
    close() {
      source.disconnect();
      context.close().catch(() => {});
    },
  };
}

/** A level in dBFS as the width of a bar, 0…1 (−60 dBFS and below is empty). */
export function levelFraction(dbfs) {
  const value = Number(dbfs);
  if (!Number.isFinite(value)) return 0;
  return Math.min(1, Math.max(0, (value + 60) / 60));
}

// ---- WHIP ---------------------------------------------------------------------------------

function gatheringComplete(pc, timeout) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, timeout);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * One WHIP session: `publish(stream)` sends the stream's audio to `endpoint` with `token`;
 * `onTrack(stream)` gets what comes back (the mix-minus), `onState(state)` follows the peer
 * connection ("connecting", "connected", "disconnected", "failed", "closed"). `stop()` ends it.
 */
export class WhipSession {
  constructor(endpoint, token, { onTrack = () => {}, onState = () => {} } = {}) {
    this.endpoint = new URL(endpoint, location.href).href;
    this.token = token;
    this.onTrack = onTrack;
    this.onState = onState;
    this.pc = null;
    this.location = null; // the session's URL, once the server has answered
    this.stopped = false;
  }

  get state() {
    if (this.stopped) return "closed";
    return this.pc ? this.pc.connectionState : "new";
  }

  async publish(stream) {
    const track = stream.getAudioTracks()[0];
    if (!track) throw new Error("There is no microphone track to send.");
    const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    this.pc = pc;
    pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
    pc.addEventListener("track", (event) => {
      if (this.stopped) return;
      this.onTrack(event.streams[0] || new MediaStream([event.track]));
    });
    pc.addEventListener("connectionstatechange", () => {
      if (!this.stopped) this.onState(pc.connectionState);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc, GATHERING_TIMEOUT);
    if (this.stopped) return;
    let response;
    try {
      response = await fetch(this.endpoint, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${this.token}`,
          "Content-Type": "application/sdp",
          Accept: "application/sdp",
        },
        body: pc.localDescription.sdp,
        cache: "no-store",
      });
    } catch {
      this.close();
      throw new ApiError(0, "network_error", "The server could not be reached.", null);
    }
    if (response.status !== 201) {
      this.close();
      throw await errorFrom(response);
    }
    const where = response.headers.get("Location");
    this.location = where ? new URL(where, this.endpoint).href : null;
    const answer = await response.text();
    if (this.stopped) {
      // Left while the server was answering: end the session it just made.
      this.deleteSession();
      return;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
  }

  /** End the session: close the connection and tell the server (unless it ended it itself). */
  async stop({ tellServer = true } = {}) {
    if (this.stopped) return;
    this.stopped = true;
    // DELETE first: closing the connection first would end the session on the server by
    // itself (DTLS goodbye), and the DELETE would then find nothing (404).
    try {
      if (tellServer) await this.deleteSession();
    } finally {
      this.close();
    }
  }

  close() {
    if (this.pc && this.pc.signalingState !== "closed") this.pc.close();
  }

  async deleteSession() {
    const where = this.location;
    this.location = null;
    if (!where) return;
    try {
      // keepalive: the request outlives the page when it is being closed.
      await fetch(where, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${this.token}` },
        keepalive: true,
        signal: AbortSignal.timeout?.(3000),
      });
    } catch {
      // The server ends sessions whose connection is gone by itself.
    }
  }

  /** Audio received so far (RTP inbound stats): {samples, energy}, for the curious and tests. */
  async received() {
    let inbound = null;
    if (this.pc) {
      (await this.pc.getStats()).forEach((report) => {
        if (report.type === "inbound-rtp" && report.kind === "audio") inbound = report;
      });
    }
    return {
      samples: inbound?.totalSamplesReceived ?? 0,
      energy: inbound?.totalAudioEnergy ?? 0,
    };
  }
}
