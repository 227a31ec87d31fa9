// The embeddable player (/embed/{id}; docs/embed.md): a small page for an <iframe> on any
// site. Play, the title, the state, the live listener count and captions; nothing else (no
// questions, reactions or studio controls). It plays and follows the space exactly as the
// listener page does: player.js picks dash.js, the browser's own HLS (Safari, iOS) or hls.js,
// and feed.js follows the live events every listener reads alike.
//
// Nothing is played before the listener taps play (no autoplay: browsers refuse it in frames,
// iOS everywhere). The listener token lives in memory only: a framed page may have no storage
// (sandboxed, or third-party storage blocked). Text from the API goes in as text, never HTML.

import { ApiError, joinSpace, sendHeartbeat, sleep, waitDelaySeconds, withRetry } from "./api.js";
import { CaptionLines, captionsOn } from "./caption-lines.js";
import { followSpace } from "./feed.js";
import {
  $,
  listenersText,
  olderThan,
  setText,
  spaceIdFromLocation,
  stateLabel,
  waitingText,
} from "./page.js";
import { Player, choosePlayer, forcedPlayer } from "./player.js";

const ui = {
  main: $("embed"),
  play: $("play"),
  badge: $("badge"),
  listeners: $("listeners"),
  title: $("title"),
  titleLink: $("title-link"),
  status: $("status"),
  captionsToggle: $("captions-toggle"),
  captions: $("captions"),
  brand: $("brand"),
  audio: $("audio"),
};

const spaceId = spaceIdFromLocation(/^\/embed\/([^/]+)\/?$/);
const forced = forcedPlayer();

/** What the player knows; also what tests read through window.causerie.state. */
const state = {
  spaceId,
  space: null,
  notFound: false,
  phase: "idle", // "idle" | "joining" | "playing"
  captionsOffered: false, // a caption event came, or the details say captions are on
  captionsShown: false,
  captionEvents: 0,
  heartbeatsSent: 0,
};

let player = null;
let session = null; // {token, heartbeatInterval}
let joinController = null;
let heartbeatTimer = null;
const captions = new CaptionLines(ui.captions, { playingAt: () => player?.playingAt() ?? null });

// ---- details ---------------------------------------------------------------------------------

function renderSpace(space) {
  if (olderThan(space, state.space)) return;
  state.space = space;
  state.notFound = false;
  ui.main.setAttribute("aria-busy", "false");
  document.title = `${space.title} · causerie`;
  setText(ui.titleLink, space.title);
  setText(ui.badge, stateLabel(space.state));
  ui.badge.dataset.state = space.state;
  ui.badge.hidden = false;
  const live = space.state === "live";
  setText(ui.listeners, live ? listenersText(space.listeners_now) : "");
  if (captionsOn(space)) offerCaptions();
  if (space.state === "ended") {
    if (state.phase !== "idle") stopListening({ finishing: true });
    setStatus("This space has ended.");
    captions.clear();
  } else if (space.state === "scheduled" && state.phase === "idle") {
    setStatus("Not live yet: you can listen as soon as it starts.");
  } else if (live && state.phase === "idle") {
    setStatus("Tap play to listen.");
  }
  renderControls();
}

function renderError(error) {
  if (error instanceof ApiError && error.status === 404) {
    if (state.phase !== "idle") stopListening();
    state.notFound = true;
    state.space = null;
    ui.main.setAttribute("aria-busy", "false");
    setText(ui.titleLink, "Space not found");
    ui.badge.hidden = true;
    setText(ui.listeners, "");
    setStatus("This space doesn't exist (any more).");
    renderControls();
  } else if (!state.space) {
    setStatus("Couldn't load this space yet. Trying again…");
  }
}

function renderControls() {
  const live = state.space?.state === "live";
  const busy = state.phase !== "idle";
  ui.play.disabled = !busy && !live;
  ui.play.dataset.phase = state.phase;
  ui.play.setAttribute("aria-label", busy ? "Stop listening" : "Play");
}

function setStatus(text) {
  setText(ui.status, text);
}

// ---- captions --------------------------------------------------------------------------------

/** Offer the captions toggle (hidden until the space has captions to show). */
function offerCaptions() {
  if (state.captionsOffered) return;
  state.captionsOffered = true;
  ui.captionsToggle.hidden = false;
}

function showCaptions(shown) {
  state.captionsShown = shown;
  ui.captionsToggle.setAttribute("aria-pressed", String(shown));
  ui.captions.hidden = !shown;
}

ui.captionsToggle.addEventListener("click", () => showCaptions(!state.captionsShown));

function onCaption(data) {
  if (!captions.add(data)) return;
  state.captionEvents += 1;
  offerCaptions();
}

// ---- listening -------------------------------------------------------------------------------

/** Join as a listener (counted, and a token for heartbeats), waiting in line if it is full. */
async function join(signal) {
  let ticket = null;
  for (;;) {
    const answer = await withRetry(() => joinSpace(spaceId, { signal, ticket }), {
      signal,
      onRetry: (error, _attempt, delay) => {
        const why = error.status === 0 ? "Can't reach the server" : "Very busy";
        setStatus(`${why}. Trying again in ${Math.ceil(delay)} s…`);
      },
    });
    if (!answer?.waiting) return answer;
    ticket = answer.waiting.ticket;
    setStatus(`${waitingText(answer.waiting)}.`);
    await sleep(waitDelaySeconds(answer.waiting), signal);
  }
}

async function startListening() {
  if (state.phase !== "idle" || state.space?.state !== "live") return;
  if (!choosePlayer(ui.audio, forced)) {
    setStatus("This browser can't play the stream.");
    return;
  }
  // Safari and iOS let an element play later only if play() was first called inside the tap
  // itself; the join below is asynchronous. The pending play() is settled by the real one.
  ui.audio.play().catch(() => {});
  state.phase = "joining";
  renderControls();
  setStatus("Joining…");
  joinController = new AbortController();
  const { signal } = joinController;
  try {
    const joined = await join(signal);
    if (signal.aborted) return;
    session = { token: joined.token, heartbeatInterval: joined.heartbeat_interval || 15 };
    state.phase = "playing";
    renderControls();
    setStatus("Connecting…");
    const here = (path) => new URL(path, location.href).href;
    const sources = {
      dash: here(`/dash/${encodeURIComponent(spaceId)}/manifest.mpd`),
      hls: here(joined.playlist_url || state.space.playlist_url),
      time: here("/time"),
    };
    const started = new Player(ui.audio, sources, {
      prefer: forced,
      onStatus: (kind, text) => {
        setStatus(kind === "playing" ? "Live" : text);
        ui.main.dataset.player = started.method ?? "";
      },
    });
    player = started;
    ui.main.dataset.player = started.method ?? "";
    startHeartbeats();
    await started.start();
  } catch (error) {
    if (signal.aborted || error?.name === "AbortError") return;
    stopListening();
    setStatus(
      error?.name === "NotAllowedError"
        ? "Your browser blocked playback. Tap play again."
        : error?.message || "Couldn't start listening.",
    );
  }
}

function stopListening({ finishing = false } = {}) {
  joinController?.abort();
  joinController = null;
  clearTimeout(heartbeatTimer);
  if (player && finishing) {
    // The space ended: the last second of the stream plays out, then it is released.
    const ending = player;
    ending.refresh();
    ui.audio.addEventListener("ended", () => ending.stop(), { once: true });
    setTimeout(() => ending.stop(), 15000);
  } else {
    player?.stop();
  }
  player = null;
  state.phase = "idle";
  setStatus("");
  renderControls();
}

/** "Still listening", every heartbeat interval ±10 % (what keeps the count honest). */
function startHeartbeats() {
  const next = (seconds) => {
    heartbeatTimer = setTimeout(beat, seconds * (0.9 + 0.2 * Math.random()) * 1000);
  };
  async function beat() {
    if (state.phase !== "playing") return;
    let wait = session.heartbeatInterval;
    try {
      await sendHeartbeat(spaceId, session.token);
      state.heartbeatsSent += 1;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        try {
          const joined = await join(joinController?.signal);
          session = { token: joined.token, heartbeatInterval: session.heartbeatInterval };
        } catch {
          // Try again at the next beat.
        }
      } else if (error instanceof ApiError && error.retryAfter != null) {
        wait = Math.max(wait, error.retryAfter);
      }
    }
    if (state.phase === "playing") next(wait);
  }
  next(session.heartbeatInterval);
}

ui.play.addEventListener("click", () => {
  if (state.phase === "idle") startListening();
  else stopListening();
});

// Paused from outside the page (media keys, the lock screen): stop like the button.
ui.audio.addEventListener("pause", () => {
  if (state.phase === "playing" && player && ui.audio.currentTime > 0 && !ui.audio.ended) {
    stopListening();
  }
});
ui.audio.addEventListener("waiting", () => {
  if (state.phase === "playing") setStatus("Buffering…");
});

// ---- start -----------------------------------------------------------------------------------

const page = `/s/${encodeURIComponent(spaceId ?? "")}`;
ui.titleLink.href = page;
renderControls();
let watcher = null;
if (spaceId) {
  watcher = followSpace(spaceId, renderSpace, renderError, {
    on: {
      caption: onCaption,
      run: (data) => {
        // A new run (a failover): dash.js learns its new URLs from the MPD.
        const playing = player?.run();
        if (playing && data.run && data.run !== playing) player.refresh();
      },
    },
  });
} else {
  renderError(new ApiError(404, "not_found", "No space in the address.", null));
}

// Small hooks for tests and for the curious, in the console.
window.causerie = {
  state,
  get player() {
    return player;
  },
  get audio() {
    return ui.audio;
  },
  get watching() {
    return watcher?.mode ?? null;
  },
  play: startListening,
  stop: () => stopListening(),
};
