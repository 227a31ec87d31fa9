// Speaking from the browser: the microphone, and WHIP (RFC 9725) to publish it; shared by the
// host studio and the speaker view.
//
// The offer is POSTed once ICE gathering is complete (the server answers with all of its
// candidates). The audio transceiver is `sendrecv`: what comes back on the same peer connection
// is the speaker's mix-minus (everyone on stage but themselves), to be played at once, with no
// LL-HLS delay. DELETE on the session's Location ends it.
//
// The connection is watched: when the audio coming back stops for 1.5 s, or ICE says
// "disconnected" or "failed", the session reconnects by itself: first an ICE restart (a PATCH
// with new ICE credentials, RFC 9725 §4.3.1: the same session, the same DTLS), and if that does
// not bring the audio back within a few seconds, a new session (a new peer connection, the same
// microphone). It tries again with growing pauses for a minute before it gives up ("failed").

import { ApiError, errorFrom } from "./api.js";
import { storageGet, storageSet } from "./page.js";

const PROCESSING_KEY = "causerie.voiceProcessing";
const GATHERING_TIMEOUT = 5000; // ms: after this, offer the candidates found so far
const RESTART_GATHERING_TIMEOUT = 2000; // ms: an ICE restart waits less for its candidates
const WATCH_EVERY = 500; // ms between looks at the connection
const STALLED_AFTER = 1500; // ms without audio coming back: the connection is in trouble
const RECOVERY_WAIT = 5000; // ms an ICE restart or a new session gets to bring audio back
const GIVE_UP_AFTER = 60000; // ms of failed attempts before the session says "failed"
const SDPFRAG = "application/trickle-ice-sdpfrag";
const NUDGE_QUIET = 5000; // ms after connecting or reconnecting when the server's word waits

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

/** The ICE lines of an SDP (credentials, candidates) replaced by a fragment's (RFC 8840). */
function withIce(sdp, fragment) {
  const lines = fragment.split(/\r?\n/);
  const ufrag = lines.find((line) => line.startsWith("a=ice-ufrag:"));
  const pwd = lines.find((line) => line.startsWith("a=ice-pwd:"));
  const candidates = lines.filter((line) => line.startsWith("a=candidate:"));
  const out = [];
  let inMedia = false;
  let candidatesPlaced = false;
  for (const line of sdp.split(/\r?\n/)) {
    if (!line) continue;
    if (line.startsWith("a=candidate:") || line === "a=end-of-candidates") continue;
    if (line.startsWith("m=")) inMedia = true;
    if (line.startsWith("a=ice-ufrag:") && ufrag) out.push(ufrag);
    else if (line.startsWith("a=ice-pwd:") && pwd) out.push(pwd);
    else out.push(line);
    if (inMedia && !candidatesPlaced && line.startsWith("a=mid:")) {
      out.push(...candidates, "a=end-of-candidates");
      candidatesPlaced = true;
    }
  }
  return out.join("\r\n") + "\r\n";
}

/** The ICE part of a local description, as a trickle-ice-sdpfrag body (RFC 8840). */
function iceFragment(sdp) {
  const keep = (line) =>
    line.startsWith("a=ice-ufrag:") ||
    line.startsWith("a=ice-pwd:") ||
    line.startsWith("a=candidate:") ||
    line.startsWith("m=") ||
    line.startsWith("a=mid:");
  const lines = sdp.split(/\r?\n/).filter(keep);
  const firstMedia = lines.findIndex((line) => line.startsWith("m="));
  const secondMedia = lines.findIndex((line, i) => i > firstMedia && line.startsWith("m="));
  const head = secondMedia > 0 ? lines.slice(0, secondMedia) : lines; // one transport (BUNDLE)
  return head.concat("a=end-of-candidates").join("\r\n") + "\r\n";
}

/**
 * One WHIP session: `publish(stream)` sends the stream's audio to `endpoint` with `token`;
 * `onTrack(stream)` gets what comes back (the mix-minus), `onState(state)` follows the
 * connection: "connecting", "connected", "reconnecting" (it is bringing a dropped connection
 * back by itself), "failed" (it gave up), "closed". `stop()` ends it.
 */
export class WhipSession {
  constructor(endpoint, token, { onTrack = () => {}, onState = () => {} } = {}) {
    this.endpoint = new URL(endpoint, location.href).href;
    this.token = token;
    this.onTrack = onTrack;
    this.onState = onState;
    this.pc = null;
    this.location = null; // the session's URL, once the server has answered
    this.etag = null; // the session's ICE session (RFC 9725 §4.3.1)
    this.answer = null;
    this.stream = null;
    this.stopped = false;
    this.reconnecting = false;
    this.restarts = 0; // ICE restarts that brought the audio back
    this.republished = 0; // new sessions made after a lost connection
    this.watcher = null;
    this.lastPackets = 0;
    this.lastPacketAt = 0;
    this.recoveredAt = performance.now();
  }

  get state() {
    if (this.stopped) return "closed";
    if (this.reconnecting) return "reconnecting";
    return this.pc ? this.pc.connectionState : "new";
  }

  async publish(stream) {
    if (!stream.getAudioTracks()[0]) throw new Error("There is no microphone track to send.");
    this.stream = stream;
    await this.connect();
    if (!this.stopped && !this.watcher) this.watcher = setInterval(() => this.watch(), WATCH_EVERY);
  }

  /** A new peer connection and a new session on the server (POST). */
  async connect() {
    const stream = this.stream;
    const track = stream.getAudioTracks()[0];
    const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    this.pc = pc;
    pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
    pc.addEventListener("track", (event) => {
      if (this.stopped || this.pc !== pc) return;
      this.onTrack(event.streams[0] || new MediaStream([event.track]));
    });
    pc.addEventListener("connectionstatechange", () => {
      if (this.stopped || this.pc !== pc || this.reconnecting) return;
      if (["disconnected", "failed"].includes(pc.connectionState) && this.location) {
        this.reconnect(); // a drop: bring it back rather than give up
      } else {
        this.onState(pc.connectionState);
      }
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
      pc.close();
      throw new ApiError(0, "network_error", "The server could not be reached.", null);
    }
    if (response.status !== 201) {
      pc.close();
      throw await errorFrom(response);
    }
    const where = response.headers.get("Location");
    this.location = where ? new URL(where, this.endpoint).href : null;
    this.etag = response.headers.get("ETag");
    const answer = await response.text();
    if (this.stopped) {
      // Left while the server was answering: end the session it just made.
      this.deleteSession();
      return;
    }
    this.answer = answer;
    this.lastPackets = 0;
    this.lastPacketAt = performance.now();
    this.recoveredAt = performance.now();
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
  }

  /** Whether audio still comes back: packets received lately, and ICE not given up. */
  async flowing() {
    const pc = this.pc;
    if (!pc || ["failed", "closed"].includes(pc.connectionState)) return false;
    let packets = 0;
    (await pc.getStats()).forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "audio") packets = report.packetsReceived;
    });
    const now = performance.now();
    if (packets > this.lastPackets) {
      this.lastPackets = packets;
      this.lastPacketAt = now;
    }
    if (pc.iceConnectionState === "disconnected" || pc.iceConnectionState === "failed") {
      return false;
    }
    return now - this.lastPacketAt < STALLED_AFTER;
  }

  async watch() {
    if (this.stopped || this.reconnecting || !this.pc || !this.location) return;
    if (["new", "connecting"].includes(this.pc.connectionState)) return; // not up yet
    if (await this.flowing()) return;
    if (this.stopped || this.reconnecting) return;
    this.reconnect();
  }

  /**
   * The server says this speaker's audio stopped arriving (their stage entry is
   * `reconnecting`) while the audio coming back still flows: the way out is broken, not the
   * way in. Reconnect, unless a reconnection just ended (the server has not seen it yet).
   */
  nudge() {
    if (this.stopped || this.reconnecting || !this.location) return;
    if (performance.now() - this.recoveredAt < NUDGE_QUIET) return;
    if (["new", "connecting"].includes(this.pc?.connectionState)) return;
    this.reconnect();
  }

  /** Bring a dropped connection back: ICE restart first, then new sessions, for a minute. */
  async reconnect() {
    if (this.reconnecting || this.stopped) return;
    this.reconnecting = true;
    this.onState("reconnecting");
    const started = performance.now();
    let pause = 500;
    let attempt = 0;
    while (!this.stopped && performance.now() - started < GIVE_UP_AFTER) {
      const how = attempt === 0 ? "restart" : "republish";
      attempt += 1;
      try {
        if (how === "restart") await this.restartIce();
        else await this.republish();
        if (await this.recovered()) {
          if (how === "restart") this.restarts += 1;
          else this.republished += 1;
          this.reconnecting = false;
          this.recoveredAt = performance.now();
          if (!this.stopped) this.onState("connected");
          return;
        }
      } catch (error) {
        // A refused restart (the session is gone: 404), the server out of reach: try again.
        if (error instanceof ApiError && [401, 403].includes(error.status)) break;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 8000);
    }
    this.reconnecting = false;
    if (!this.stopped) this.onState("failed");
  }

  /** Wait for audio to come back on the current connection (up to RECOVERY_WAIT). */
  async recovered() {
    const until = performance.now() + RECOVERY_WAIT;
    this.lastPacketAt = performance.now();
    while (!this.stopped && performance.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      if (this.pc?.connectionState === "connected" && (await this.packetsArrived())) return true;
    }
    return false;
  }

  async packetsArrived() {
    const before = this.lastPackets;
    await this.flowing();
    return this.lastPackets > before;
  }

  /** An ICE restart over PATCH (RFC 9725 §4.3.1): same session, same DTLS, new ICE. */
  async restartIce() {
    const pc = this.pc;
    if (!this.location || !pc || pc.signalingState === "closed") throw new Error("no session");
    pc.restartIce();
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc, RESTART_GATHERING_TIMEOUT);
    const response = await fetch(this.location, {
      method: "PATCH",
      headers: {
        Authorization: `Bearer ${this.token}`,
        "Content-Type": SDPFRAG,
        "If-Match": "*",
      },
      body: iceFragment(pc.localDescription.sdp),
      cache: "no-store",
    });
    if (response.status !== 200) throw await errorFrom(response);
    this.etag = response.headers.get("ETag");
    this.answer = withIce(this.answer, await response.text());
    if (this.pc !== pc || this.stopped) return;
    await pc.setRemoteDescription({ type: "answer", sdp: this.answer });
  }

  /** A new session in place of the lost one: the old one is ended (its DELETE may fail). */
  async republish() {
    const old = this.pc;
    this.pc = null;
    if (old && old.signalingState !== "closed") old.close();
    this.deleteSession(); // not awaited: the server replaces it anyway
    await this.connect();
  }

  /** End the session: close the connection and tell the server (unless it ended it itself). */
  async stop({ tellServer = true } = {}) {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.watcher);
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
