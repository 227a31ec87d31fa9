// The listener page of one space (/s/{id}): its details, kept fresh, and the player; and, for
// whoever opened it with a host link (/s/{id}#host=<token>), a small card to start and end it.
//
// Text that comes from the API (titles, descriptions, names, messages) only ever goes into the
// page as text (textContent), never as HTML.

import {
  ApiError,
  endSpace,
  formatWhen,
  joinSpace,
  listenersText,
  roleLabel,
  sendHeartbeat,
  startSpace,
  stateLabel,
  watchSpace,
  withRetry,
} from "./api.js";
import { Player, playbackMethod } from "./player.js";

const $ = (id) => document.getElementById(id);
const ui = {
  card: $("space"),
  badge: $("badge"),
  title: $("title"),
  host: $("host"),
  stage: $("stage"),
  stageTitle: $("stage-title"),
  stageList: $("stage-list"),
  personTemplate: $("person"),
  description: $("description"),
  when: $("when"),
  notice: $("notice"),
  player: $("player"),
  stats: $("stats"),
  listenersStat: $("listeners-stat"),
  play: $("play"),
  playLabel: $("play-label"),
  status: $("status"),
  listeners: $("listeners"),
  latency: $("latency"),
  volume: $("volume"),
  volumeRow: $("volume-row"),
  playlist: $("playlist"),
  copy: $("copy"),
  elsewhere: $("elsewhere"),
  audio: $("audio"),
  hostCard: $("host-controls"),
  hostTitle: $("host-controls-title"),
  hostHint: $("host-hint"),
  goLive: $("go-live"),
  end: $("end"),
  endConfirm: $("end-confirm"),
  endYes: $("end-yes"),
  endCancel: $("end-cancel"),
  hostStatus: $("host-status"),
};

/** The space's id, from /s/{id} (or ?id= when the page is opened as a plain file). */
function spaceIdFromLocation() {
  const match = location.pathname.match(/^\/s\/([^/]+)\/?$/);
  if (match) return decodeURIComponent(match[1]);
  return new URLSearchParams(location.search).get("id");
}

const spaceId = spaceIdFromLocation();

/** Everything the page knows; also what tests look at through window.causerie.state. */
const state = {
  spaceId,
  space: null, // the latest details from the API
  phase: "idle", // "idle" | "joining" | "playing"
  token: null,
  heartbeatInterval: null,
  joinAttempts: 0,
  heartbeatsSent: 0,
  latency: null, // seconds behind live, while playing
  notFound: false,
  hosting: false, // the page has a host token for this space (the token itself stays private)
};

let player = null;
let joinController = null;
let heartbeatTimer = null;
let latencyTimer = null;
let soundStarted = false; // since the last start: the audio element has really played
let volumeSettable = true;
let stageKey = null; // what the stage list shows, to rebuild it only when it changes
let hostToken = null;
let hostBusy = false; // a start or end request is on its way
let confirmingEnd = false;
let hostStatusAbout = null; // the state the host status line speaks of (null: until next action)

// ---- details ---------------------------------------------------------------------------

function setText(element, text) {
  // Only touch the DOM when the text changes, so that aria-live regions speak real changes.
  if (element.textContent !== text) element.textContent = text;
}

function showNotice(text) {
  setText(ui.notice, text);
  ui.notice.hidden = !text;
}

// A space only moves forward: scheduled, then live, then ended.
const STATE_ORDER = { scheduled: 0, live: 1, ended: 2 };

function renderSpace(space) {
  const previous = state.space;
  if (previous && STATE_ORDER[space.state] < STATE_ORDER[previous.state]) {
    // Older than what the page knows (a read that left before the host's click landed, or a
    // cache's stale copy): ignore it rather than flick back.
    return;
  }
  state.space = space;
  state.notFound = false;
  ui.card.setAttribute("aria-busy", "false");

  document.title = `${space.title} · causerie`;
  setText(ui.title, space.title);
  setText(ui.description, space.description || "");
  ui.description.hidden = !space.description;
  setText(ui.host, space.host?.name ? `Hosted by ${space.host.name}` : "");
  renderStage(space);
  setText(ui.badge, stateLabel(space.state));
  ui.badge.dataset.state = space.state;
  setText(ui.listeners, listenersText(space.listeners_now));

  if (space.state === "scheduled") {
    const when = space.scheduled_start ? formatWhen(space.scheduled_start) : "";
    setText(ui.when, when ? `Starts ${when}` : "");
    showNotice(
      "This space hasn't started yet. Keep this page open: you can listen as soon as it goes live.",
    );
  } else if (space.state === "ended") {
    setText(ui.when, "");
    showNotice("This space has ended. Thanks for listening!");
  } else {
    setText(ui.when, "");
    showNotice("");
  }

  const url = new URL(space.playlist_url, location.href).href;
  if (ui.playlist.value !== url) ui.playlist.value = url;
  ui.elsewhere.hidden = space.state !== "live";

  if (space.state === "ended" && state.phase !== "idle") {
    stopListening({ finishing: true });
  }
  if (previous?.state === "scheduled" && space.state === "live" && state.phase === "idle") {
    setStatus("The space is live. Press play to listen.");
  }
  renderControls();
  renderHost();
}

/** Who is on stage (host first), as a list of names and roles; hidden once the space ends. */
function renderStage(space) {
  const people = space.state === "ended" || !Array.isArray(space.stage) ? [] : space.stage;
  setText(ui.stageTitle, space.state === "live" ? "On stage" : "Speakers");
  ui.stage.hidden = !people.length;
  const key = JSON.stringify(people.map((p) => [p.id, p.name, p.role, Boolean(p.muted)]));
  if (key === stageKey) return;
  stageKey = key;
  ui.stageList.replaceChildren(...people.map(personItem));
}

function personItem(person) {
  const item = ui.personTemplate.content.firstElementChild.cloneNode(true);
  const name = String(person.name ?? "");
  item.querySelector(".avatar").textContent = (Array.from(name.trim())[0] || "?").toUpperCase();
  item.style.setProperty("--hue", String(hue(person.id || name)));
  item.querySelector(".person-name").textContent = name;
  item.querySelector(".person-role").textContent = roleLabel(person.role);
  item.querySelector(".person-muted").hidden = !person.muted;
  item.dataset.role = person.role;
  return item;
}

/** A stable colour for a person's initial, from their id. */
function hue(text) {
  let h = 0;
  for (const char of String(text)) h = (h * 31 + char.codePointAt(0)) % 360;
  return h;
}

function renderError(error) {
  if (error instanceof ApiError && error.status === 404) {
    if (state.phase !== "idle") stopListening();
    state.notFound = true;
    state.space = null;
    setText(ui.when, "");
    setText(ui.description, "");
    setText(ui.host, "");
    ui.elsewhere.hidden = true;
    ui.stage.hidden = true;
    ui.hostCard.hidden = true;
    ui.card.setAttribute("aria-busy", "false");
    setText(ui.title, "Space not found");
    showNotice("We couldn't find this space. It may have been removed, or the link is wrong.");
    renderControls();
  } else if (!state.space) {
    showNotice("Couldn't load this space yet. Trying again…");
  }
  // With details already shown, a failed refresh keeps them: slightly old beats missing.
}

function renderControls() {
  const live = state.space?.state === "live";
  const busy = state.phase !== "idle";
  // Only what makes sense now: no player for a space that is gone, no count before it starts.
  ui.player.hidden = !busy && (state.notFound || state.space?.state === "ended");
  ui.listenersStat.hidden = !live;
  ui.stats.hidden = !live && !busy;
  ui.volumeRow.hidden = !volumeSettable || (!live && !busy);
  ui.play.disabled = !busy && !live;
  ui.play.setAttribute("aria-label", busy ? "Stop listening" : "Play");
  ui.play.dataset.phase = state.phase;
  setText(ui.playLabel, busy ? "Stop" : live ? "Listen live" : "Not live yet");
  ui.badge.hidden = !state.space;
  ui.badge.parentElement.hidden = !state.space;
}

function setStatus(text) {
  setText(ui.status, text);
}

// ---- listening ---------------------------------------------------------------------------

async function startListening() {
  if (state.phase !== "idle" || state.space?.state !== "live") return;
  if (!playbackMethod(ui.audio)) {
    setStatus("This browser can't play the stream. Try the link below in VLC or Safari.");
    return;
  }
  // Safari lets an element play later only if play() was first called inside the click itself;
  // the join below is asynchronous. The pending play() is settled by the real one.
  ui.audio.play().catch(() => {});

  state.phase = "joining";
  renderControls();
  setStatus("Joining…");
  joinController = new AbortController();
  const { signal } = joinController;
  try {
    const joined = await withRetry(
      () => {
        state.joinAttempts += 1;
        return joinSpace(spaceId, { signal });
      },
      {
        signal,
        onRetry(error, _attempt, delay) {
          const why = error.status === 0 ? "Can't reach the server" : "The space is very busy";
          setStatus(`${why}. Trying again in ${Math.ceil(delay)} s…`);
        },
      },
    );
    state.token = joined.token;
    state.heartbeatInterval = joined.heartbeat_interval;
    state.phase = "playing";
    renderControls();
    // The listener count now includes this listener: the server pushes it within a few seconds.
    setStatus("Connecting to the stream…");
    const url = new URL(joined.playlist_url || state.space.playlist_url, location.href).href;
    player = new Player(ui.audio, url, { onStatus: (_kind, text) => setStatus(text) });
    startHeartbeats();
    startLatencyDisplay();
    await player.start();
  } catch (error) {
    if (signal.aborted || error?.name === "AbortError") return; // stopped by the listener
    stopListening();
    if (error?.name === "NotAllowedError") {
      setStatus("Your browser blocked playback. Press play again to listen.");
    } else {
      setStatus(error?.message || "Couldn't start listening.");
    }
  }
}

function stopListening({ finishing = false } = {}) {
  joinController?.abort();
  joinController = null;
  clearTimeout(heartbeatTimer);
  clearInterval(latencyTimer);
  if (player && finishing) {
    // The space ended: let the last second of the stream play out, then release it.
    const ending = player;
    ui.audio.addEventListener("ended", () => ending.stop(), { once: true });
    setTimeout(() => ending.stop(), 15000);
  } else {
    player?.stop();
  }
  player = null;
  soundStarted = false;
  state.phase = "idle";
  state.latency = null;
  setText(ui.latency, "");
  setStatus("");
  renderControls();
}

function startHeartbeats() {
  // Every heartbeat_interval, ±10 %: after a join storm, listeners' heartbeats spread out
  // instead of arriving in waves.
  const next = (seconds) => {
    heartbeatTimer = setTimeout(beat, seconds * (0.9 + 0.2 * Math.random()) * 1000);
  };
  async function beat() {
    if (state.phase !== "playing") return;
    let wait = state.heartbeatInterval;
    try {
      await sendHeartbeat(spaceId, state.token);
      state.heartbeatsSent += 1;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        // The token expired: get a fresh one, quietly (a join costs the server no state).
        try {
          state.token = (await joinSpace(spaceId)).token;
        } catch {
          // Try again at the next beat.
        }
      } else if (error instanceof ApiError && error.retryAfter != null) {
        wait = Math.max(wait, error.retryAfter);
      }
    }
    if (state.phase === "playing") next(wait);
  }
  next(state.heartbeatInterval);
}

function startLatencyDisplay() {
  clearInterval(latencyTimer);
  latencyTimer = setInterval(() => {
    const seconds = player && !ui.audio.paused ? player.latency() : null;
    state.latency = seconds;
    setText(ui.latency, seconds == null ? "" : `${seconds.toFixed(1)} s behind live`);
  }, 1000);
}

// ---- host controls -------------------------------------------------------------------------
//
// A host link carries the host's token in the fragment (never sent to the server with the
// page). It is kept in sessionStorage for this space, so that reloading the tab keeps the
// controls, and taken out of the address bar, so that copying the URL to share the space does
// not share the token too.

const hostKey = `causerie.host.${spaceId}`;

function takeHostToken() {
  const match = location.hash.match(/^#(?:.*&)?host=([^&]*)/);
  if (match) {
    const rest = location.hash
      .slice(1)
      .split("&")
      .filter((part) => !part.startsWith("host="))
      .join("&");
    const clean = location.pathname + location.search + (rest ? `#${rest}` : "");
    history.replaceState(history.state, "", clean);
    let token = "";
    try {
      token = decodeURIComponent(match[1]).trim();
    } catch {
      // A mangled link: no token.
    }
    if (token) {
      hostToken = token;
      try {
        sessionStorage.setItem(hostKey, token);
      } catch {
        // Storage may be disabled: the controls last until the tab is reloaded.
      }
    }
  } else if (!hostToken) {
    try {
      hostToken = sessionStorage.getItem(hostKey);
    } catch {
      // As above.
    }
  }
  state.hosting = Boolean(spaceId && hostToken);
}

function setHostStatus(text, { error = false, about = null } = {}) {
  setText(ui.hostStatus, text);
  ui.hostStatus.classList.toggle("is-error", error);
  hostStatusAbout = about;
}

function renderHost() {
  const space = state.space;
  ui.hostCard.hidden = !state.hosting || !space || state.notFound;
  if (ui.hostCard.hidden) return;
  // "You're live" is old news once the space has ended (another co-host may have ended it).
  if (hostStatusAbout && hostStatusAbout !== space.state && !hostBusy) setHostStatus("");
  const live = space.state === "live";
  if (!live) confirmingEnd = false;
  ui.goLive.hidden = space.state !== "scheduled";
  ui.end.hidden = !live || confirmingEnd;
  ui.endConfirm.hidden = !live || !confirmingEnd;
  for (const button of [ui.goLive, ui.end, ui.endYes, ui.endCancel]) button.disabled = hostBusy;
  ui.hostCard.setAttribute("aria-busy", String(hostBusy));
  setText(
    ui.hostHint,
    {
      scheduled: "Only you see this card. Go live when you are ready: listeners can then play.",
      live: "Only you see this card. Ending the space stops the audio for everyone.",
      ended: "This space is over. Thanks for hosting!",
    }[space.state] || "",
  );
}

/** A sentence from an API message ("the token has expired" → "The token has expired."). */
function sentence(text) {
  const trimmed = String(text || "").trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

function hostErrorText(what, error) {
  const status = error instanceof ApiError ? error.status : -1;
  if (status === 0) return `${what}: the server could not be reached. Try again in a moment.`;
  if (status === 401) return `${what}: this host link isn't valid. ${sentence(error.message)}`;
  if (status === 403) {
    return `${what}: your host link doesn't allow it. ${sentence(error.message)}`;
  }
  if (status === 429 || status === 503) return `${what}: the server is busy. Try again soon.`;
  return `${what}. ${sentence(error?.message) || "Something went wrong."}`;
}

async function hostAction(kind) {
  if (hostBusy || !hostToken) return;
  const starting = kind === "start";
  hostBusy = true;
  setHostStatus(starting ? "Going live…" : "Ending the space…");
  renderHost();
  try {
    const space = await (starting ? startSpace : endSpace)(spaceId, hostToken);
    hostBusy = false;
    confirmingEnd = false;
    setHostStatus(starting ? "You're live." : "The space has ended.", { about: space.state });
    renderSpace(space);
    // The button just pressed is gone: keep the keyboard focus in the card.
    (starting ? ui.end : ui.hostTitle).focus();
  } catch (error) {
    hostBusy = false;
    confirmingEnd = false;
    setHostStatus(hostErrorText(starting ? "Couldn't go live" : "Couldn't end the space", error), {
      error: true,
    });
    renderHost();
    if (error instanceof ApiError && error.status === 409) watcher?.refresh(); // stale state
  }
}

ui.goLive.addEventListener("click", () => hostAction("start"));
ui.end.addEventListener("click", () => {
  confirmingEnd = true;
  setHostStatus("");
  renderHost();
  ui.endCancel.focus(); // the safe choice has the focus; ending takes a deliberate press
});
ui.endYes.addEventListener("click", () => hostAction("end"));
function cancelEnd() {
  confirmingEnd = false;
  renderHost();
  ui.end.focus();
}
ui.endCancel.addEventListener("click", cancelEnd);
ui.endConfirm.addEventListener("keydown", (event) => {
  if (event.key === "Escape") cancelEnd();
});
window.addEventListener("hashchange", () => {
  const before = hostToken;
  takeHostToken();
  if (hostToken !== before) setHostStatus(""); // what went wrong with the old link is moot
  renderHost();
});

// ---- controls ------------------------------------------------------------------------------

ui.play.addEventListener("click", () => {
  if (state.phase === "idle") startListening();
  else stopListening();
});

// Pausing from outside the page (media keys, the lock screen) stops listening like the button.
// Only once sound has played: attaching the stream may pause the element on its way.
ui.audio.addEventListener("playing", () => {
  soundStarted = true;
});
ui.audio.addEventListener("pause", () => {
  if (state.phase === "playing" && soundStarted && !ui.audio.ended) stopListening();
});

ui.audio.addEventListener("waiting", () => {
  if (state.phase === "playing") setStatus("Buffering…");
});

ui.volume.addEventListener("input", () => {
  ui.audio.volume = Number(ui.volume.value);
  try {
    localStorage.setItem("causerie.volume", ui.volume.value);
  } catch {
    // Storage may be disabled; the volume just won't be remembered.
  }
});

function setUpVolume() {
  let saved = null;
  try {
    saved = localStorage.getItem("causerie.volume");
  } catch {
    // As above.
  }
  if (saved !== null && Number.isFinite(Number(saved))) ui.volume.value = saved;
  ui.audio.volume = Number(ui.volume.value);
  // iOS ignores volume set by pages (the hardware buttons rule): hide a slider that does nothing.
  ui.audio.volume = 0.5;
  const settable = ui.audio.volume === 0.5;
  ui.audio.volume = Number(ui.volume.value);
  volumeSettable = settable;
}

ui.copy.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(ui.playlist.value);
    setText(ui.copy, "Copied");
  } catch {
    ui.playlist.select(); // let the listener copy it by hand
  }
  setTimeout(() => setText(ui.copy, "Copy"), 2000);
});

// ---- start -----------------------------------------------------------------------------------

setUpVolume();
takeHostToken();
renderControls();
let watcher = null;
if (spaceId) {
  watcher = watchSpace(spaceId, renderSpace, renderError);
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
  get hls() {
    return player?.hls ?? null;
  },
  play: startListening,
  stop: () => stopListening(),
  refresh: () => watcher?.refresh(),
  /** How the details arrive: "events", "polling", "connecting" or "stopped" (see watchSpace). */
  get watching() {
    return watcher?.mode ?? null;
  },
};
