// Playing a live space, with the player that costs a listener least (docs/listener-page.md):
//
// - dash.js (LL-DASH, chunked CMAF) wherever the browser has Media Source Extensions: one
//   request per 3.84 s segment, streamed chunk by chunk as it is made, about a second behind;
// - the browser's own HLS on Apple's browsers (Safari, iOS), which play LL-HLS themselves;
// - hls.js (LL-HLS) as the fallback: when dash.js cannot start, or where only hls.js plays.
//
// The players' scripts are loaded when first needed (never from a CDN: `make install` copies
// them into the package). A page may force one with `?player=dash.js|hls.js|native`.

import { backoffSeconds } from "./api.js";

export const DASH_JS = "/static/vendor/dash.mediaplayer.min.js";
export const HLS_JS = "/static/vendor/hls.min.js";
export const PLAYERS = ["dash.js", "native", "hls.js"];

const HLS_MIME = "application/vnd.apple.mpegurl";
const AAC_MP4 = 'audio/mp4; codecs="mp4a.40.2"';

// Latency steering, the same for every player: play 8 % faster (pitch kept, hardly audible for
// speech) while more than CATCH_UP_ABOVE seconds behind the target and at least MIN_AHEAD
// seconds are buffered; back to normal speed once within SETTLED. Far behind (after a long
// stall), jump to the live edge.
const CATCH_UP_RATE = 1.08;
const CATCH_UP_ABOVE = 0.12;
const SETTLED = 0.03;
const MIN_AHEAD = 0.3;
const JUMP_ABOVE = 4;

/** Seconds behind the live edge dash.js aims at (the MPD's ServiceDescription says 1 s). */
export const DASH_TARGET_LATENCY = 0.9;
/** How long dash.js may take to start playing before the page falls back to hls.js. */
const DASH_START_SECONDS = 12;

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

/**
 * dash.js's settings. Low-latency (chunked, fetch-based) loading needs none: the MPD's
 * `availabilityTimeComplete="false"` switches it on. Catch-up is dash.js's "step" mode, which
 * is the page's steering above; settings win over the MPD's ServiceDescription.
 */
export function dashSettings(timeUrl) {
  return {
    streaming: {
      delay: { liveDelay: DASH_TARGET_LATENCY },
      liveCatchup: {
        enabled: true,
        mode: "liveCatchupModeStep",
        maxDrift: JUMP_ABOVE,
        playbackRate: { min: 0, max: CATCH_UP_RATE - 1 },
        step: {
          start: { min: CATCH_UP_ABOVE, max: CATCH_UP_ABOVE },
          stop: { min: SETTLED, max: SETTLED },
        },
        playbackBufferMin: MIN_AHEAD,
      },
      // The MPD's UTCTiming names the node's /time; this is for a manifest without it. The
      // default would ask a public time server.
      utcSynchronization: {
        defaultTimingSource: { scheme: "urn:mpeg:dash:utc:http-iso:2014", value: timeUrl },
      },
      // A space can last hours: keep only a little played audio in memory.
      buffer: { bufferToKeep: 20 },
    },
  };
}

const scripts = new Map();

/** Run a classic script from this origin once; resolves when it has run. */
export function loadScript(src) {
  if (!scripts.has(src)) {
    const loaded = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => resolve();
      script.onerror = () => {
        scripts.delete(src); // a later try may work
        script.remove();
        reject(new Error(`Couldn't load ${src}.`));
      };
      document.head.append(script);
    });
    scripts.set(src, loaded);
  }
  return scripts.get(src);
}

const hasMse = () => Boolean(window.MediaSource?.isTypeSupported?.(AAC_MP4));
// Apple's engine (Safari; every browser on iOS): it plays LL-HLS itself, best there. Other
// engines may answer "maybe" for HLS too (Chromium does) without low-latency playback.
const appleHls = (audio) =>
  /^Apple/.test(navigator.vendor || "") && Boolean(audio.canPlayType(HLS_MIME));
const hlsJsPlays = () =>
  Boolean(window.ManagedMediaSource?.isTypeSupported?.(AAC_MP4)) || hasMse();

/**
 * Which player this browser gets ("dash.js", "native", "hls.js"), or null (none plays here).
 * `forced` (one of PLAYERS) is taken if this browser can use it.
 */
export function choosePlayer(audio, forced = null) {
  const possible = {
    "dash.js": hasMse(),
    native: Boolean(audio.canPlayType(HLS_MIME)),
    "hls.js": hlsJsPlays(),
  };
  if (forced && possible[forced]) return forced;
  if (appleHls(audio)) return "native";
  if (possible["dash.js"]) return "dash.js";
  if (possible.native) return "native";
  if (possible["hls.js"]) return "hls.js";
  return null;
}

/** How this browser plays a replay (an HLS VOD playlist): "hls.js", "native" or null. */
export function replayPlayer(audio) {
  if (appleHls(audio)) return "native";
  if (hlsJsPlays()) return "hls.js";
  return audio.canPlayType(HLS_MIME) ? "native" : null;
}

/** The player a page's address asks for (`?player=…`), or null. */
export function forcedPlayer(search = location.search) {
  const asked = new URLSearchParams(search).get("player");
  return PLAYERS.includes(asked) ? asked : null;
}

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

/**
 * Plays one live space into an <audio> element until stop(). `sources` says where:
 * `{dash: MPD URL, hls: multivariant playlist URL, time: the node's clock URL}`.
 * Reports what it does through `onStatus(kind, text)`, kind being "playing", "buffering",
 * "reconnecting" or "error". `method` is the player in use; `fellBack` why it is not the first
 * choice (null when it is).
 */
export class Player {
  constructor(audio, sources, { onStatus = () => {}, prefer = null } = {}) {
    this.audio = audio;
    this.sources = sources;
    this.onStatus = onStatus;
    this.method = choosePlayer(audio, prefer);
    this.fellBack = null;
    this.hls = null;
    this.dash = null;
    this._timers = new Set();
    this._networkFailures = 0;
    this._lastMediaRecovery = 0;
    this._lastManifestRefresh = 0;
    this._stopped = false;
    this._played = false; // sound has come out since start()
    this._steering = null;
    this._onNativeError = () => this._retryNative();
    this._onPlaying = () => {
      this._played = true;
      this._networkFailures = 0;
      this.onStatus("playing", "");
    };
  }

  /** Start loading and playing. Resolves once play() was asked for. */
  async start() {
    this.audio.addEventListener("playing", this._onPlaying);
    if (this.method === "dash.js") {
      try {
        await loadScript(DASH_JS);
        if (this._stopped) return;
        this._startDash();
      } catch (error) {
        if (this._stopped) return;
        await this._fallBack(`dash.js did not load (${error.message})`);
        return;
      }
    } else if (this.method === "hls.js") {
      await loadScript(HLS_JS);
      if (this._stopped) return;
      this._startHlsJs();
    } else if (this.method === "native") {
      this.audio.addEventListener("error", this._onNativeError);
      this.audio.src = this.sources.hls;
    } else {
      throw new Error("This browser cannot play the stream.");
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
    this._release();
  }

  /**
   * The stream may have changed under the player: a new run (a failover starts one, with new
   * URLs) or the end of the space. dash.js reads the manifest again now rather than at its next
   * planned update (a minute later); the HLS players reload their playlists all the time.
   */
  refresh() {
    if (!this.dash || this._stopped) return;
    // One reload covers every reason that arrives together (a 404 and the feed's word).
    const now = Date.now();
    if (now - this._lastManifestRefresh < 1000) return;
    this._lastManifestRefresh = now;
    try {
      this.dash.refreshManifest(() => {});
    } catch {
      // Not attached yet: it reads the manifest when it starts anyway.
    }
  }

  /** The run (DASH Period) playing now, when known. */
  run() {
    try {
      return this.dash?.getActiveStream()?.getStreamInfo()?.id ?? null;
    } catch {
      return null;
    }
  }

  /** Seconds between what is heard and the live edge, or null when unknown. */
  latency() {
    const { hls, dash, audio } = this;
    if (dash) {
      const seconds = dash.getCurrentLiveLatency();
      return Number.isFinite(seconds) && seconds > 0 ? seconds : null;
    }
    if (hls) {
      if (hls.latency > 0) return hls.latency;
      const date = hls.playingDate; // EXT-X-PROGRAM-DATE-TIME of what is playing
      return date ? Math.max(0, (Date.now() - date.getTime()) / 1000) : null;
    }
    const playing = this.playingAt();
    if (playing !== null) return Math.max(0, (Date.now() - playing) / 1000);
    if (audio.seekable.length) {
      return Math.max(0, audio.seekable.end(audio.seekable.length - 1) - audio.currentTime);
    }
    return null;
  }

  /**
   * When the audio playing now was live, as wall-clock milliseconds since the epoch (null when
   * unknown): "now − playingAt()" is glass-to-ear. dash.js: the MPD's availabilityStartTime is
   * the epoch and each run's Period starts at its first sample's wall time, so media time is
   * wall time. hls.js: the PROGRAM-DATE-TIME of what is playing. Safari: its start date.
   */
  playingAt() {
    const { hls, dash, audio } = this;
    if (dash) {
      const seconds = dash.timeAsUTC();
      return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : null;
    }
    if (hls) return hls.playingDate ? hls.playingDate.getTime() : null;
    const start = typeof audio.getStartDate === "function" ? audio.getStartDate() : null;
    if (start && !Number.isNaN(start.getTime())) return start.getTime() + audio.currentTime * 1000;
    return null;
  }

  _later(seconds, fn) {
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      if (!this._stopped) fn();
    }, seconds * 1000);
    this._timers.add(timer);
  }

  _release() {
    if (this.dash) {
      this.dash.destroy(); // also detaches the media
      this.dash = null;
    } else if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    } else {
      this.audio.removeAttribute("src");
      this.audio.load();
    }
  }

  // ---- dash.js ---------------------------------------------------------------------------

  _startDash() {
    const { dashjs } = window;
    const player = dashjs.MediaPlayer().create();
    this.dash = player;
    const events = dashjs.MediaPlayer.events;
    player.updateSettings(dashSettings(this.sources.time));
    player.on(events.ERROR, (event) => this._onDashError(event));
    // A segment that is not there (404): the run changed (a failover) or the space ended,
    // and the manifest says so. dash.js would otherwise try the same URL a few more times.
    player.on(events.METRIC_ADDED, (event) => {
      const value = event.metric === "HttpList" ? event.value : null;
      if (value?.type === "MediaSegment" && value.responsecode === 404) this.refresh();
    });
    player.on(events.FRAGMENT_LOADING_COMPLETED, (event) => {
      if (!event.error) this._networkFailures = 0;
    });
    player.initialize(this.audio, this.sources.dash, true);
    this._later(DASH_START_SECONDS, () => {
      if (!this._played && this.dash === player) {
        this._fallBack(`dash.js did not start within ${DASH_START_SECONDS} s`);
      }
    });
  }

  _onDashError(event) {
    if (this._stopped || !this.dash) return;
    const error = event?.error || {};
    if (!this._played) {
      // It never played here: the LL-HLS stream is the safer bet.
      this._fallBack(`dash.js failed to start (${error.message || error.code || "error"})`);
      return;
    }
    // dash.js gave up after its own retries (the node or the edge is away): wait (growing,
    // jittered, so that a crowd does not come back at the same instant), then load again.
    const delay = 1 + backoffSeconds(this._networkFailures, { base: 1, cap: 15 });
    this._networkFailures += 1;
    this.onStatus("reconnecting", "Connection lost. Reconnecting…");
    const player = this.dash;
    this._later(delay, () => {
      if (this.dash !== player) return;
      player.attachSource(this.sources.dash);
      this.audio.play().catch(() => {});
    });
  }

  async _fallBack(why) {
    if (this._stopped || this.method === "hls.js") return;
    this.fellBack = why;
    this._release();
    this.method = "hls.js";
    this.onStatus("buffering", "Connecting to the stream…");
    try {
      await loadScript(HLS_JS);
    } catch {
      this.onStatus("error", "The player could not be loaded. Try reloading the page.");
      return;
    }
    if (this._stopped) return;
    this._startHlsJs();
    this.audio.play().catch(() => {});
  }

  // ---- hls.js ----------------------------------------------------------------------------

  _startHlsJs() {
    const Hls = window.Hls;
    const hls = new Hls(HLS_CONFIG);
    this.hls = hls;
    hls.on(Hls.Events.FRAG_LOADED, () => {
      this._networkFailures = 0;
    });
    hls.on(Hls.Events.ERROR, (_event, data) => this._onHlsError(data));
    hls.loadSource(this.sources.hls);
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

  // ---- the browser's own HLS ----------------------------------------------------------------

  _retryNative() {
    if (this._stopped) return;
    const delay = 1 + backoffSeconds(this._networkFailures++, { base: 1, cap: 15 });
    this.onStatus("reconnecting", "Connection lost. Reconnecting…");
    this._later(delay, () => {
      this.audio.src = this.sources.hls;
      this.audio.play().catch(() => {});
    });
  }
}
