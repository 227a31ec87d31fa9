// Playing a space's HLS stream: hls.js where the browser has Media Source Extensions, the
// browser's own HLS otherwise (Safari on iOS), with recovery from errors.

import { backoffSeconds } from "./api.js";

// Settings for Low-Latency HLS. liveSyncDuration(Count) are deliberately left unset: a value set
// here would override the PART-HOLD-BACK that the server advertises in the playlist (a few parts,
// about a second), which is the distance from the live edge that LL-HLS is designed around.
const HLS_CONFIG = {
  lowLatencyMode: true,
  // hls.js only speeds up while more than 1 s is buffered, so with ~200 ms parts it settles
  // about half a second behind its target. The player steers the rate itself (steerLatency).
  maxLiveSyncPlaybackRate: 1,
  // Each stall moves the target latency back by this much (default 1 s, a lot for LL-HLS).
  liveSyncOnStallIncrease: 0.5,
  // A space can last hours: keep only a little played audio in memory.
  backBufferLength: 30,
};

const HLS_MIME = "application/vnd.apple.mpegurl";

// Latency steering: play 8 % faster (pitch kept, hardly audible for speech) while more than
// CATCH_UP_ABOVE seconds behind the target and at least MIN_AHEAD seconds are buffered; back to
// normal speed once within SETTLED. Far behind (after a long stall), jump to the live edge.
const CATCH_UP_RATE = 1.08;
const CATCH_UP_ABOVE = 0.12;
const SETTLED = 0.03;
const MIN_AHEAD = 0.3;
const JUMP_ABOVE = 4;

/** Seconds of audio buffered ahead of the playhead. */
function bufferedAhead(audio) {
  const { buffered, currentTime } = audio;
  for (let i = 0; i < buffered.length; i++) {
    if (buffered.start(i) <= currentTime + 0.05 && currentTime <= buffered.end(i)) {
      return buffered.end(i) - currentTime;
    }
  }
  return 0;
}

/** The playback rate that brings `behind` (seconds past the target latency) back to zero. */
export function steeringRate(behind, ahead, currentRate) {
  if (ahead < MIN_AHEAD) return 1;
  if (behind > CATCH_UP_ABOVE) return CATCH_UP_RATE;
  if (currentRate > 1 && behind > SETTLED) return currentRate;
  return 1;
}

/** How this browser can play HLS: "hls.js", "native", or null (it cannot). */
export function playbackMethod(audio) {
  if (window.Hls?.isSupported()) return "hls.js";
  if (audio.canPlayType(HLS_MIME)) return "native";
  return null;
}

/**
 * Plays one playlist into an <audio> element until stop(). Reports what it is doing through
 * `onStatus(kind, text)`, kind being "playing", "buffering", "reconnecting" or "error".
 */
export class Player {
  constructor(audio, url, { onStatus = () => {} } = {}) {
    this.audio = audio;
    this.url = url;
    this.onStatus = onStatus;
    this.hls = null;
    this.method = playbackMethod(audio);
    this._timers = new Set();
    this._networkFailures = 0;
    this._lastMediaRecovery = 0;
    this._stopped = false;
    this._steering = null;
    this._onNativeError = () => this._retryNative();
    this._onPlaying = () => {
      this._networkFailures = 0;
      this.onStatus("playing", "");
    };
  }

  /** Start loading and playing. Resolves once play() was asked for. */
  async start() {
    this.audio.addEventListener("playing", this._onPlaying);
    if (this.method === "hls.js") {
      this._startHlsJs();
    } else if (this.method === "native") {
      this.audio.addEventListener("error", this._onNativeError);
      this.audio.src = this.url;
    } else {
      throw new Error("This browser cannot play HLS.");
    }
    await this.audio.play();
  }

  /** Stop playing and release the stream. */
  stop() {
    this._stopped = true;
    clearInterval(this._steering);
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    this.audio.removeEventListener("error", this._onNativeError);
    this.audio.removeEventListener("playing", this._onPlaying);
    this.audio.pause();
    if (this.hls) {
      this.hls.destroy(); // also detaches the media
      this.hls = null;
    } else {
      this.audio.removeAttribute("src");
      this.audio.load();
    }
  }

  /** Seconds between what is heard and the live edge, or null when unknown. */
  latency() {
    const { hls, audio } = this;
    if (hls) {
      if (hls.latency > 0) return hls.latency;
      const date = hls.playingDate; // EXT-X-PROGRAM-DATE-TIME of what is playing
      return date ? Math.max(0, (Date.now() - date.getTime()) / 1000) : null;
    }
    // Safari's native HLS exposes the program date time of the stream's start.
    const start = typeof audio.getStartDate === "function" ? audio.getStartDate() : null;
    if (start && !Number.isNaN(start.getTime())) {
      return Math.max(0, (Date.now() - start.getTime()) / 1000 - audio.currentTime);
    }
    if (audio.seekable.length) {
      return Math.max(0, audio.seekable.end(audio.seekable.length - 1) - audio.currentTime);
    }
    return null;
  }

  _later(seconds, fn) {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      if (!this._stopped) fn();
    }, seconds * 1000);
    this._timers.add(timer);
  }

  _startHlsJs() {
    const Hls = window.Hls;
    const hls = new Hls(HLS_CONFIG);
    this.hls = hls;
    hls.on(Hls.Events.FRAG_LOADED, () => {
      this._networkFailures = 0;
    });
    hls.on(Hls.Events.ERROR, (_event, data) => this._onHlsError(data));
    hls.loadSource(this.url);
    hls.attachMedia(this.audio);
    clearInterval(this._steering);
    this._steering = setInterval(() => this._steerLatency(), 250);
  }

  _steerLatency() {
    const { hls, audio } = this;
    if (!hls || audio.paused || !(hls.latency > 0) || hls.targetLatency == null) return;
    const behind = hls.latency - hls.targetLatency;
    if (behind > JUMP_ABOVE && hls.liveSyncPosition) {
      audio.currentTime = hls.liveSyncPosition;
      return;
    }
    const rate = steeringRate(behind, bufferedAhead(audio), audio.playbackRate);
    if (rate !== audio.playbackRate) audio.playbackRate = rate;
  }

  _onHlsError(data) {
    if (!data.fatal) return; // hls.js retries these by itself
    const Hls = window.Hls;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      // hls.js gave up on its own retries: wait (growing, jittered, so that a crowd of listeners
      // does not come back at the same instant), then resume loading.
      const delay = 1 + backoffSeconds(this._networkFailures, { base: 1, cap: 15 });
      this._networkFailures += 1;
      this.onStatus("reconnecting", "Connection lost. Reconnecting…");
      this._later(delay, () => this.hls?.startLoad());
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      // The recipe hls.js documents: recover; if that fails again soon, swap codec and recover.
      const now = Date.now();
      if (now - this._lastMediaRecovery < 3000) this.hls.swapAudioCodec();
      this._lastMediaRecovery = now;
      this.onStatus("buffering", "Recovering from a playback error…");
      this.hls.recoverMediaError();
    } else {
      // Anything else is not recoverable in place: start over with a fresh hls.js.
      this.onStatus("reconnecting", "Playback failed. Restarting…");
      this.hls.destroy();
      this.hls = null;
      this._later(1 + backoffSeconds(this._networkFailures++), () => {
        this._startHlsJs();
        this.audio.play().catch(() => {});
      });
    }
  }

  _retryNative() {
    if (this._stopped) return;
    const delay = 1 + backoffSeconds(this._networkFailures++, { base: 1, cap: 15 });
    this.onStatus("reconnecting", "Connection lost. Reconnecting…");
    this._later(delay, () => {
      this.audio.src = this.url;
      this.audio.play().catch(() => {});
    });
  }
}
