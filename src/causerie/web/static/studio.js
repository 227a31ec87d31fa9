// The host studio: /studio creates and schedules spaces; /studio/{id} runs one. Going live and
// ending, the host's own microphone (WHIP, hearing the others back on the same connection),
// raised hands, the stage with live mic levels, and the questions, for hosts and co-hosts.
//
// Signing in: an account token, pasted once or given in the address as #token=… (or #host=…,
// as `causerie demo` prints it), kept in localStorage and taken out of the address bar. A token
// for one space only (the demo's host link) is kept in sessionStorage for that space, where the
// listener page keeps it too.
//
// Text that comes from the API (titles, names, questions, messages) only ever goes into the
// page as text (textContent), never as HTML.

import {
  ApiError,
  endSpace,
  formatWhen,
  listSpaces,
  listenersText,
  roleLabel,
  startSpace,
  stateLabel,
  untilText,
  watchSpace,
} from "./api.js";
import { orderQuestions } from "./questions.js";
import {
  WhipSession,
  callApi,
  levelFraction,
  levelMeter,
  micProblemText,
  openMicrophone,
  problemText,
  setVoiceProcessing,
  tokenClaims,
  voiceProcessing,
} from "./whip.js";

const ACCOUNT_KEY = "causerie.account";
const ANY_SPACE = "*";
const LEVELS_EVERY = 250; // ms, while live
const STATE_ORDER = { scheduled: 0, live: 1, ended: 2 };

const $ = (id) => document.getElementById(id);
const ui = {
  accountName: $("account-name"),
  signOut: $("sign-out"),
  signin: $("signin"),
  signinForm: $("signin-form"),
  tokenInput: $("token-input"),
  signinStatus: $("signin-status"),
  create: $("create"),
  createForm: $("create-form"),
  createName: $("create-name"),
  createDescription: $("create-description"),
  createStart: $("create-start"),
  createRecording: $("create-recording"),
  createCapacity: $("create-capacity"),
  capacityForm: $("capacity-form"),
  capacityInput: $("capacity-input"),
  capacitySave: $("capacity-save"),
  capacityStatus: $("capacity-status"),
  createSubmit: $("create-submit"),
  createStatus: $("create-status"),
  mine: $("mine"),
  mineList: $("mine-list"),
  studio: $("studio"),
  overview: $("overview"),
  badge: $("badge"),
  when: $("when"),
  listeners: $("listeners"),
  title: $("title"),
  roleNote: $("role-note"),
  goLive: $("go-live"),
  end: $("end"),
  listenerLink: $("listener-link"),
  endConfirm: $("end-confirm"),
  endQuestion: $("end-question"),
  endYes: $("end-yes"),
  endCancel: $("end-cancel"),
  spaceStatus: $("space-status"),
  recordingProblem: $("recording-problem"),
  share: $("share"),
  shareUrl: $("share-url"),
  copy: $("copy"),
  mic: $("mic"),
  air: $("air"),
  selfMute: $("self-mute"),
  micLevel: $("mic-level"),
  micStatus: $("mic-status"),
  processing: $("processing"),
  returnAudio: $("return-audio"),
  requests: $("requests"),
  requestsCount: $("requests-count"),
  requestList: $("request-list"),
  requestsEmpty: $("requests-empty"),
  requestsStatus: $("requests-status"),
  requestsAnnounce: $("requests-announce"),
  requestTemplate: $("request-item"),
  stage: $("stage"),
  stageCount: $("stage-count"),
  stageList: $("stage-list"),
  stageStatus: $("stage-status"),
  memberTemplate: $("member-item"),
  questions: $("questions"),
  questionsCount: $("questions-count"),
  questionList: $("question-list"),
  questionsEmpty: $("questions-empty"),
  questionsStatus: $("questions-status"),
  questionTemplate: $("question-item"),
};

/** The space's id, from /studio/{id} (or ?id= when the page is opened as a plain file). */
function spaceIdFromLocation() {
  const match = location.pathname.match(/^\/studio\/([^/]+)\/?$/);
  if (match) return decodeURIComponent(match[1]);
  return new URLSearchParams(location.search).get("id");
}

const spaceId = spaceIdFromLocation();
const spaceUrl = `/api/spaces/${encodeURIComponent(spaceId || "")}`;
const hostKey = `causerie.host.${spaceId}`;

/** Everything the page knows; also what tests look at through window.causerie.state. */
const state = {
  spaceId,
  me: null, // the signed-in account's id (the token's `sub`)
  space: null,
  notFound: false,
  role: "listener", // the account's role in the space
  speaking: [],
  requests: [],
  requestsWaiting: null, // the space's count when the list was last read
  levels: {},
  questions: new Map(),
  onAir: false,
};

let token = null;
let watcher = null;

function setText(element, text) {
  // Only touch the DOM when the text changes, so that aria-live regions speak real changes.
  if (element.textContent !== text) element.textContent = text;
}

const statusTimers = new Map();

/** A status line; `transient` ones (news of a success) clear themselves after a while. */
function setStatus(element, text, { error = false, transient = false } = {}) {
  clearTimeout(statusTimers.get(element));
  setText(element, text);
  element.classList.toggle("is-error", error);
  if (transient) {
    statusTimers.set(
      element,
      setTimeout(() => {
        if (element.textContent === text) setText(element, "");
      }, 8000),
    );
  }
}

function storageGet(storage, key) {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

function storageSet(storage, key, value) {
  try {
    if (value == null) storage.removeItem(key);
    else storage.setItem(key, value);
  } catch {
    // Storage may be disabled: the token lasts as long as the page.
  }
}

/** A stable colour for a person's initial, from their id (as the listener page does it). */
function hue(text) {
  let h = 0;
  for (const char of String(text)) h = (h * 31 + char.codePointAt(0)) % 360;
  return h;
}

function fillAvatar(element, person) {
  const name = String(person.name ?? "");
  element.textContent = (Array.from(name.trim())[0] || "?").toUpperCase();
  element.style.setProperty("--hue", String(hue(person.id || person.user_id || name)));
}

// ---- signing in ----------------------------------------------------------------------------

function usable(candidate) {
  const claims = tokenClaims(candidate);
  return Boolean(claims) && !(claims.exp && claims.exp * 1000 < Date.now());
}

/** Keep a token given in the address or pasted; false if it isn't a token at all. */
function keepToken(given) {
  const claims = tokenClaims(given);
  if (!claims) return false;
  if (claims.aud && claims.aud !== ANY_SPACE) {
    storageSet(sessionStorage, `causerie.host.${claims.aud}`, given);
  } else {
    storageSet(localStorage, ACCOUNT_KEY, given);
  }
  return true;
}

/** A #token=… or #host=… in the address: kept, then taken out of the address bar. */
function takeTokenFromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has("token") && !params.has("host")) return;
  const given = (params.get("token") || params.get("host") || "").trim();
  params.delete("token");
  params.delete("host");
  const rest = params.toString();
  const clean = location.pathname + location.search + (rest ? `#${rest}` : "");
  history.replaceState(history.state, "", clean);
  if (given && !keepToken(given)) {
    setStatus(ui.signinStatus, "The link's token isn't valid. Paste your token below.", {
      error: true,
    });
  }
}

/** The token to use here: this space's own host token if there is one, else the account's. */
function currentToken() {
  const forSpace = spaceId ? storageGet(sessionStorage, hostKey) : null;
  if (forSpace && usable(forSpace) && tokenClaims(forSpace).aud === spaceId) return forSpace;
  const account = storageGet(localStorage, ACCOUNT_KEY);
  return account && usable(account) ? account : null;
}

function expiredTokenKept() {
  const account = storageGet(localStorage, ACCOUNT_KEY);
  return Boolean(account) && !usable(account);
}

function showSignIn() {
  ui.signin.hidden = false;
  ui.create.hidden = true;
  ui.mine.hidden = true;
  ui.studio.hidden = true;
  ui.signOut.hidden = true;
  setText(ui.accountName, "");
  if (expiredTokenKept() && !ui.signinStatus.textContent) {
    setStatus(ui.signinStatus, "Your token has expired. Paste a new one.", { error: true });
  }
}

ui.signinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const given = ui.tokenInput.value.trim();
  if (!given) {
    setStatus(ui.signinStatus, "Paste your account token first.", { error: true });
    ui.tokenInput.focus();
    return;
  }
  if (!keepToken(given) || !usable(given)) {
    setStatus(
      ui.signinStatus,
      usable(given) || !tokenClaims(given)
        ? "That doesn't look like a causerie token. It has two dots in it."
        : "That token has expired. Make a new one with `causerie token`.",
      { error: true },
    );
    ui.tokenInput.focus();
    return;
  }
  if (spaceId && tokenClaims(given).aud !== ANY_SPACE && tokenClaims(given).aud !== spaceId) {
    setStatus(ui.signinStatus, "That token is for another space.", { error: true });
    return;
  }
  ui.tokenInput.value = "";
  setStatus(ui.signinStatus, "");
  begin();
});

ui.signOut.addEventListener("click", () => {
  storageSet(localStorage, ACCOUNT_KEY, null);
  if (spaceId) storageSet(sessionStorage, hostKey, null);
  location.reload();
});

// ---- /studio: create and schedule ------------------------------------------------------------

/** A datetime-local value as ISO 8601 with this browser's offset: 2026-05-01T18:30:00+02:00. */
export function localToIso(value) {
  const date = new Date(value); // a datetime-local value is read as local time
  if (Number.isNaN(date.getTime())) return null;
  const pad = (n) => String(n).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

function startCreate() {
  ui.create.hidden = false;
  document.title = "New space · causerie";
  loadMine();
}

let creating = false;

const MAX_CAPACITY = 10_000_000;
const CAPACITY_PROBLEM =
  `The listener limit is a whole number from 1 to ${MAX_CAPACITY.toLocaleString()}, or empty.`;

/** A listener limit typed in `input`: a number, null (empty: no limit), or undefined (bad). */
function readCapacity(input) {
  const text = input.value.trim();
  if (!text) return input.validity?.badInput ? undefined : null;
  const value = Number(text);
  return Number.isInteger(value) && value >= 1 && value <= MAX_CAPACITY ? value : undefined;
}

ui.createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (creating) return;
  const title = ui.createName.value.trim();
  if (!title) {
    setStatus(ui.createStatus, "Give your space a title.", { error: true });
    ui.createName.focus();
    return;
  }
  const json = {
    title,
    description: ui.createDescription.value.trim(),
    recording: ui.createRecording.checked,
  };
  const capacity = readCapacity(ui.createCapacity);
  if (capacity === undefined) {
    setStatus(ui.createStatus, CAPACITY_PROBLEM, { error: true });
    ui.createCapacity.focus();
    return;
  }
  if (capacity !== null) json.capacity = capacity;
  if (ui.createStart.value) {
    const iso = localToIso(ui.createStart.value);
    if (!iso) {
      setStatus(ui.createStatus, "That start time isn't a date.", { error: true });
      ui.createStart.focus();
      return;
    }
    if (Date.parse(iso) < Date.now() - 60_000) {
      setStatus(ui.createStatus, "That start time has passed. Pick one in the future.", {
        error: true,
      });
      ui.createStart.focus();
      return;
    }
    json.scheduled_start = iso;
  }
  creating = true;
  ui.createSubmit.disabled = true;
  setStatus(ui.createStatus, "Creating…");
  try {
    const space = await callApi("POST", "/api/spaces", { token, json });
    setStatus(ui.createStatus, "Created. Opening its studio…");
    location.assign(`/studio/${encodeURIComponent(space.id)}`);
  } catch (error) {
    setStatus(ui.createStatus, problemText("Couldn't create the space", error), { error: true });
    creating = false;
    ui.createSubmit.disabled = false;
  }
});

async function loadMine() {
  try {
    const spaces = (await listSpaces()).filter((space) => space.host?.id === state.me);
    spaces.sort((a, b) => (STATE_ORDER[a.state] ?? 3) - (STATE_ORDER[b.state] ?? 3));
    ui.mineList.replaceChildren(
      ...spaces.map((space) => {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.className = "studio-mine-link";
        link.href = `/studio/${encodeURIComponent(space.id)}`;
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.dataset.state = space.state;
        badge.textContent = stateLabel(space.state);
        const title = document.createElement("span");
        title.className = "studio-mine-title";
        title.textContent = space.title;
        const when = document.createElement("span");
        when.className = "studio-sub";
        when.textContent =
          space.state === "live"
            ? listenersText(space.listeners_now)
            : space.scheduled_start
              ? `Starts ${formatWhen(space.scheduled_start)}`
              : "Not scheduled";
        link.append(badge, " ", title, when);
        item.append(link);
        return item;
      }),
    );
    ui.mine.hidden = spaces.length === 0; // nothing to go back to yet
  } catch {
    ui.mine.hidden = true; // only a convenience
  }
}

// ---- /studio/{id}: the space ----------------------------------------------------------------

const isModerator = () => state.role === "host" || state.role === "cohost";
const isLive = () => !state.notFound && state.space?.state === "live";

function roleIn(space) {
  if (!space || !state.me) return "listener";
  if (space.host?.id === state.me) return "host";
  const mine = (space.stage || []).find((person) => person.id === state.me);
  return mine ? mine.role : "listener";
}

function me() {
  return (state.space?.stage || []).find((person) => person.id === state.me) || null;
}

function startStudio() {
  ui.studio.hidden = false;
  ui.listenerLink.href = `/s/${encodeURIComponent(spaceId)}`;
  ui.shareUrl.value = new URL(`/s/${encodeURIComponent(spaceId)}`, location.href).href;
  ui.processing.checked = voiceProcessing();
  watcher = watchSpace(spaceId, renderSpace, renderError, {
    on: {
      speaking: (data) => setSpeaking(data.speaking),
      questions: (data) => handleQuestions(data),
    },
    onResync: () => {
      loadRequests();
      loadQuestions();
    },
  });
  setInterval(() => {
    if (!document.hidden) {
      renderRequests(); // "asked 2 min ago" moves on
      tickWhen();
    }
  }, 15_000);
}

function renderSpace(space) {
  const previous = state.space;
  if (previous && STATE_ORDER[space.state] < STATE_ORDER[previous.state]) return; // stale
  state.space = space;
  state.notFound = false;
  state.role = roleIn(space);
  ui.overview.setAttribute("aria-busy", "false");

  const waiting = Number(space.requests_waiting) || 0;
  const badge = waiting && isModerator() ? `(${waiting}) ` : ""; // raised hands, in the tab
  document.title = `${badge}Studio: ${space.title} · causerie`;
  setText(ui.title, space.title);
  ui.badge.hidden = false;
  setText(ui.badge, stateLabel(space.state));
  ui.badge.dataset.state = space.state;
  tickWhen();
  setText(ui.listeners, space.state === "live" ? listenersText(space.listeners_now) : "");
  ui.share.hidden = space.state === "ended";

  // A failing recording (a full disk, say): the live stream goes on, but the host must know.
  setText(
    ui.recordingProblem,
    space.recording_error ? `The recording is failing: ${space.recording_error}.` : "",
  );

  renderRole();
  renderSpaceActions();
  renderCapacity();
  renderMic();
  renderStage();
  if (isModerator() && isLive()) {
    if (waiting !== state.requestsWaiting) loadRequests();
  } else {
    state.requests = [];
    state.requestsWaiting = null;
  }
  renderRequests();
  renderQuestionsCard();
  syncLevelPolling();
}

// ---- the listener limit (the waiting room) ----

let capacityBusy = false;

function renderCapacity() {
  const space = state.notFound ? null : state.space;
  ui.capacityForm.hidden = !space || space.state === "ended" || !isModerator();
  ui.capacitySave.disabled = capacityBusy;
  // Not while the host is typing a new value.
  if (document.activeElement !== ui.capacityInput && !capacityBusy) {
    ui.capacityInput.value = space?.capacity == null ? "" : String(space.capacity);
  }
}

ui.capacityForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (capacityBusy) return;
  const capacity = readCapacity(ui.capacityInput);
  if (capacity === undefined) {
    setStatus(ui.capacityStatus, CAPACITY_PROBLEM, { error: true });
    ui.capacityInput.focus();
    return;
  }
  capacityBusy = true;
  renderCapacity();
  setStatus(ui.capacityStatus, "Saving…");
  try {
    const space = await callApi("PATCH", spaceUrl, { token, json: { capacity } });
    ui.capacityInput.blur();
    renderSpace(space);
    const saved =
      capacity === null
        ? "No limit: everyone gets in."
        : `Limit saved: ${capacity.toLocaleString()} listener${capacity === 1 ? "" : "s"}.`;
    setStatus(ui.capacityStatus, saved, { transient: true });
  } catch (error) {
    setStatus(ui.capacityStatus, problemText("Couldn't save the limit", error), { error: true });
  } finally {
    capacityBusy = false;
    renderCapacity();
  }
});

function tickWhen() {
  const space = state.space;
  if (!space) return;
  let text = "";
  if (space.state === "scheduled" && space.scheduled_start) {
    const until = untilText(Date.parse(space.scheduled_start) - Date.now());
    text = `Starts ${formatWhen(space.scheduled_start)}${until ? ` (in ${until})` : ""}`;
  } else if (space.state === "scheduled") {
    text = "Not scheduled: go live when you're ready";
  }
  setText(ui.when, text);
}

function renderRole() {
  const space = state.space;
  let note = "";
  if (!isModerator()) {
    const who = tokenClaims(token)?.name || "This account";
    note =
      state.role === "speaker"
        ? `${who} is a speaker here, not a host: the host and co-hosts run this space.`
        : `${who} isn't a host or co-host of this space, so there is nothing to run here. ` +
          "Sign out to use another token.";
  } else if (space.state === "ended") {
    note = space.replay_url
      ? "This space has ended. Its replay is on the listener page."
      : "This space has ended. Thanks for hosting!";
  } else if (state.role === "cohost") {
    note = "You're a co-host: you run the stage with the host. Only the host ends the space.";
  }
  setText(ui.roleNote, note);
  ui.roleNote.hidden = !note;
}

function renderError(error) {
  if (error instanceof ApiError && error.status === 404) {
    state.notFound = true;
    state.space = null;
    state.role = "listener";
    ui.overview.setAttribute("aria-busy", "false");
    setText(ui.title, "Space not found");
    setText(ui.when, "");
    setText(ui.listeners, "");
    ui.badge.hidden = true;
    setText(ui.roleNote, "There's no such space. It may have been removed, or the link is wrong.");
    ui.roleNote.hidden = false;
    ui.share.hidden = true;
    ui.listenerLink.hidden = true;
    for (const card of [ui.mic, ui.requests, ui.stage, ui.questions]) card.hidden = true;
    renderSpaceActions();
    syncLevelPolling();
    if (air) stopAir({ tellServer: true });
  } else if (!state.space) {
    setStatus(ui.spaceStatus, "Couldn't load this space yet. Trying again…");
  }
}

// ---- going live, ending ---------------------------------------------------------------------

let spaceBusy = false;
let confirmingEnd = false;

function renderSpaceActions() {
  const space = state.notFound ? null : state.space;
  const st = space?.state;
  const host = state.role === "host";
  if (!host || (st !== "live" && st !== "scheduled")) confirmingEnd = false;
  ui.goLive.hidden = !(st === "scheduled" && isModerator());
  ui.end.hidden = !host || confirmingEnd || (st !== "live" && st !== "scheduled");
  setText(ui.end, st === "scheduled" ? "Cancel space" : "End space");
  setText(
    ui.endQuestion,
    st === "scheduled"
      ? "Cancel this space? Listeners waiting for it see that it won't happen. " +
          "This can't be undone."
      : "End the space for everyone? Speakers go off the air and listeners hear the last " +
          "seconds. This can't be undone.",
  );
  setText(ui.endYes, st === "scheduled" ? "Yes, cancel it" : "Yes, end it");
  ui.endConfirm.hidden = !confirmingEnd;
  for (const button of [ui.goLive, ui.end, ui.endYes, ui.endCancel]) button.disabled = spaceBusy;
}

async function spaceAction(kind) {
  if (spaceBusy) return;
  const starting = kind === "start";
  const cancelling = !starting && state.space?.state === "scheduled";
  spaceBusy = true;
  const doing = starting ? "Going live…" : cancelling ? "Cancelling…" : "Ending the space…";
  setStatus(ui.spaceStatus, doing);
  renderSpaceActions();
  try {
    const space = await (starting ? startSpace : endSpace)(spaceId, token);
    spaceBusy = false;
    confirmingEnd = false;
    setStatus(
      ui.spaceStatus,
      starting
        ? "You're live. Go on air below to speak."
        : cancelling
          ? "The space was cancelled."
          : "The space has ended.",
    );
    renderSpace(space);
    (starting && !ui.air.hidden ? ui.air : ui.title).focus();
  } catch (error) {
    spaceBusy = false;
    confirmingEnd = false;
    setStatus(
      ui.spaceStatus,
      problemText(starting ? "Couldn't go live" : "Couldn't end the space", error),
      { error: true },
    );
    renderSpaceActions();
    if (error instanceof ApiError && error.status === 409) watcher?.refresh();
  }
}

ui.goLive.addEventListener("click", () => spaceAction("start"));
ui.end.addEventListener("click", () => {
  confirmingEnd = true;
  setStatus(ui.spaceStatus, "");
  renderSpaceActions();
  ui.endCancel.focus(); // the safe choice has the focus; ending takes a deliberate press
});
ui.endYes.addEventListener("click", () => spaceAction("end"));
function cancelEnd() {
  confirmingEnd = false;
  renderSpaceActions();
  ui.end.focus();
}
ui.endCancel.addEventListener("click", cancelEnd);
ui.endConfirm.addEventListener("keydown", (event) => {
  if (event.key === "Escape") cancelEnd();
});

ui.copy.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(ui.shareUrl.value);
    setText(ui.copy, "Copied");
  } catch {
    ui.shareUrl.select(); // copy by hand
  }
  setTimeout(() => setText(ui.copy, "Copy"), 2000);
});

// ---- the host's own microphone ----------------------------------------------------------------

let air = null; // {session, stream, meter, timer} while on air (or getting there)
let airBusy = false;
let muteBusy = false;

function renderMic() {
  const onStage = Boolean(me());
  const show = isModerator() && onStage && state.space && state.space.state !== "ended";
  ui.mic.hidden = !show;
  if (air && (!isLive() || !onStage)) {
    const why = !isLive()
      ? "The space has ended: you're off the air."
      : "You're no longer on stage: you're off the air.";
    stopAir({ tellServer: false, message: why }); // the server ended the session itself
  }
  if (!show) return;
  const live = isLive();
  setText(ui.air, air ? "Leave the air" : "Go on air");
  ui.air.classList.toggle("button-primary", !air);
  ui.air.classList.toggle("is-on-air", Boolean(air));
  ui.air.disabled = airBusy || !live;
  const muted = Boolean(me()?.muted);
  ui.selfMute.hidden = !live;
  ui.selfMute.setAttribute("aria-pressed", String(muted));
  ui.selfMute.disabled = muteBusy;
  setText(ui.selfMute, muted ? "Muted" : "Mute");
  ui.selfMute.setAttribute("aria-label", "Mute my microphone");
  if (air) air.stream.getAudioTracks().forEach((track) => (track.enabled = !muted));
  ui.mic.classList.toggle("is-on-air", Boolean(air) && state.onAir);
  ui.micLevel.parentElement.hidden = !air;
  if (!live && !air && !airBusy) {
    setStatus(ui.micStatus, "Go live first, then go on air to speak.");
  } else if (!air && !airBusy && ui.micStatus.textContent.startsWith("Go live first")) {
    setStatus(ui.micStatus, "");
  }
}

function showMicLevel() {
  if (!air) return;
  const muted = Boolean(me()?.muted);
  const fraction = muted ? 0 : levelFraction(air.meter.read());
  ui.micLevel.style.transform = `scaleX(${fraction.toFixed(3)})`;
}

function onAirState(connection) {
  if (!air) return;
  if (connection === "connected") {
    state.onAir = true;
    setStatus(
      ui.micStatus,
      me()?.muted
        ? "You're on air, muted. You hear the others here, live."
        : "You're on air. You hear the others here, live.",
    );
  } else if (connection === "disconnected") {
    setStatus(ui.micStatus, "The connection is unstable. Hold on…");
  } else if (connection === "failed" || connection === "closed") {
    stopAir({
      tellServer: true,
      message: "The connection was lost: you're off the air. Try again.",
      error: true,
    });
  }
  renderMic();
}

async function goOnAir() {
  if (airBusy || air || !isLive()) return;
  airBusy = true;
  renderMic();
  setStatus(ui.micStatus, "Asking for your microphone…");
  let stream;
  try {
    stream = await openMicrophone({ processing: ui.processing.checked });
  } catch (error) {
    airBusy = false;
    const text = micProblemText(error) || problemText("Couldn't open the microphone", error);
    setStatus(ui.micStatus, text, { error: true });
    renderMic();
    return;
  }
  const session = new WhipSession(`/whip/${encodeURIComponent(spaceId)}`, token, {
    onTrack: playReturn,
    onState: onAirState,
  });
  air = { session, stream, meter: levelMeter(stream), timer: setInterval(showMicLevel, 100) };
  setStatus(ui.spaceStatus, ""); // "go on air below" is done
  renderMic();
  setStatus(ui.micStatus, "Connecting…");
  try {
    await session.publish(stream);
    if (air?.session !== session) return; // left meanwhile
    airBusy = false;
    if (session.state !== "connected") setStatus(ui.micStatus, "Connecting…");
  } catch (error) {
    airBusy = false;
    if (air?.session === session) {
      const message = problemText("Couldn't go on air", error);
      stopAir({ tellServer: false, message, error: true });
    }
    if (error instanceof ApiError && error.status === 409) watcher?.refresh();
  }
  renderMic();
}

function playReturn(stream) {
  ui.returnAudio.srcObject = stream;
  ui.returnAudio.play().catch(() => {
    setStatus(
      ui.micStatus,
      "The browser blocked the others' sound. Leave the air, then go on air again.",
    );
  });
}

function stopAir({ tellServer = true, message = "You're off the air.", error = false } = {}) {
  if (!air) return;
  const { session, stream, meter, timer } = air;
  air = null;
  airBusy = false;
  state.onAir = false;
  clearInterval(timer);
  meter.close();
  for (const track of stream.getTracks()) track.stop();
  ui.returnAudio.srcObject = null;
  ui.micLevel.style.transform = "scaleX(0)";
  session.stop({ tellServer });
  setStatus(ui.micStatus, message, { error });
  renderMic();
}

ui.air.addEventListener("click", () => (air ? stopAir() : goOnAir()));

ui.selfMute.addEventListener("click", async () => {
  if (muteBusy || !state.me) return;
  const muted = !me()?.muted;
  muteBusy = true;
  renderMic();
  try {
    const space = await callApi("PUT", `${spaceUrl}/stage/${encodeURIComponent(state.me)}/muted`, {
      token,
      json: { muted },
    });
    muteBusy = false;
    renderSpace(space);
    if (air) onAirState(air.session.state);
    else setStatus(ui.micStatus, muted ? "You're muted." : "You're unmuted.");
  } catch (error) {
    muteBusy = false;
    const what = muted ? "Couldn't mute you" : "Couldn't unmute you";
    setStatus(ui.micStatus, problemText(what, error), { error: true });
    renderMic();
  }
});

ui.processing.addEventListener("change", () => {
  setVoiceProcessing(ui.processing.checked);
  if (air) setStatus(ui.micStatus, "This applies the next time you go on air.");
});

window.addEventListener("pagehide", () => {
  if (air) air.session.stop(); // a DELETE that outlives the page (keepalive)
});

// ---- raised hands -----------------------------------------------------------------------------

let requestsLoading = null;
let requestsAgain = false;
let requestsReadFailed = false; // the status line says so (until a read works again)
let requestsSeen = null; // ids seen in the last read (null before the first)
const requestsBusy = new Set();

async function loadRequests() {
  if (!isModerator() || !isLive()) return;
  if (requestsLoading) {
    requestsAgain = true;
    return;
  }
  const asked = Number(state.space.requests_waiting) || 0;
  requestsLoading = callApi("GET", `${spaceUrl}/speak-requests`, { token });
  try {
    const body = await requestsLoading;
    state.requests = Array.isArray(body?.requests) ? body.requests : [];
    state.requestsWaiting = asked;
    announceRequests();
    if (requestsReadFailed) setStatus(ui.requestsStatus, "");
    requestsReadFailed = false;
  } catch (error) {
    state.requestsWaiting = null; // read again at the next change
    requestsReadFailed = true;
    setStatus(ui.requestsStatus, problemText("Couldn't read the raised hands", error), {
      error: true,
    });
  } finally {
    requestsLoading = null;
  }
  renderRequests();
  if (requestsAgain) {
    requestsAgain = false;
    loadRequests();
  } else if (isLive() && (Number(state.space.requests_waiting) || 0) !== state.requestsWaiting) {
    loadRequests(); // changed while reading
  }
}

function announceRequests() {
  const ids = new Set(state.requests.map((r) => r.user_id));
  if (requestsSeen) {
    const fresh = state.requests.filter((r) => !requestsSeen.has(r.user_id));
    if (fresh.length === 1) say(ui.requestsAnnounce, `${fresh[0].name} asks to speak.`);
    else if (fresh.length > 1) say(ui.requestsAnnounce, `${fresh.length} people ask to speak.`);
  }
  requestsSeen = ids;
}

function say(element, text) {
  // Cleared first, so that the same words said twice are announced twice.
  element.textContent = "";
  setTimeout(() => {
    element.textContent = text;
  }, 50);
}

function agoText(iso) {
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(seconds) || seconds < 60) return "asked just now";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `asked ${minutes} min ago`;
  return `asked ${Math.floor(minutes / 60)} h ago`;
}

function renderRequests() {
  const show = isModerator() && isLive();
  ui.requests.hidden = !show;
  if (!show) return;
  const requests = state.requests;
  setText(ui.requestsCount, requests.length ? String(requests.length) : "");
  ui.requestsEmpty.hidden = requests.length > 0;
  const focused = focusedRow(ui.requestList);
  ui.requestList.replaceChildren(
    ...requests.map((request) => {
      const item = ui.requestTemplate.content.firstElementChild.cloneNode(true);
      item.dataset.id = request.user_id;
      fillAvatar(item.querySelector(".avatar"), request);
      item.querySelector(".person-name").textContent = request.name;
      item.querySelector(".studio-sub").textContent = agoText(request.at);
      for (const button of item.querySelectorAll("button")) {
        button.setAttribute("aria-label", `${button.textContent.trim()}, ${request.name}`);
      }
      const busy = requestsBusy.has(request.user_id);
      for (const button of item.querySelectorAll("button")) button.disabled = busy;
      return item;
    }),
  );
  restoreFocus(ui.requestList, focused);
}

async function answerRequest(userId, approve) {
  if (requestsBusy.has(userId)) return;
  const request = state.requests.find((r) => r.user_id === userId);
  const name = request?.name || "They";
  requestsBusy.add(userId);
  renderRequests();
  try {
    const space = await callApi(
      "POST",
      `${spaceUrl}/speak-requests/${encodeURIComponent(userId)}/${approve ? "approve" : "deny"}`,
      { token },
    );
    state.requests = state.requests.filter((r) => r.user_id !== userId);
    requestsSeen?.delete(userId);
    setStatus(
      ui.requestsStatus,
      approve ? `${name} is on stage now.` : `${name}'s request was declined.`,
      { transient: true },
    );
    requestsBusy.delete(userId);
    renderSpace(space);
  } catch (error) {
    requestsBusy.delete(userId);
    setStatus(
      ui.requestsStatus,
      problemText(approve ? `Couldn't bring ${name} on stage` : `Couldn't decline ${name}`, error),
      { error: true },
    );
    state.requestsWaiting = null;
    loadRequests();
  }
  renderRequests();
  // The row is gone: keep the keyboard in the card.
  if (!ui.requestList.contains(document.activeElement)) {
    (ui.requestList.querySelector("button:not(:disabled)") || ui.requests.querySelector("h2"))
      ?.focus?.();
  }
}

ui.requestList.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const id = button?.closest("li")?.dataset.id;
  if (!id) return;
  if (button.classList.contains("approve")) answerRequest(id, true);
  else if (button.classList.contains("deny")) answerRequest(id, false);
});

// ---- the stage --------------------------------------------------------------------------------

let stageKey = null;
let rowNumber = 0; // for unique element ids in rows
let confirmingRemove = null; // the id whose removal waits for a confirmation
const stageBusy = new Set();

/** The row (by id) and the button (by class) that has the focus, to give it back after a redraw. */
function focusedRow(list) {
  const active = document.activeElement;
  if (!active || !list.contains(active)) return null;
  const row = active.closest("li");
  const kind = Array.from(active.classList).find((c) => c !== "button" && !c.startsWith("button-"));
  return { id: row?.dataset.id, kind };
}

function restoreFocus(list, focused) {
  if (!focused || list.contains(document.activeElement)) return;
  const row = Array.from(list.children).find((li) => li.dataset.id === focused.id);
  const target =
    row?.querySelector(`button.${CSS.escape(focused.kind || "")}:not([hidden]):not(:disabled)`) ||
    row?.querySelector("button:not([hidden]):not(:disabled)");
  target?.focus();
}

function outranks(person) {
  if (person.role === "host") return false;
  if (person.role === "cohost") return state.role === "host";
  return isModerator();
}

function renderStage() {
  const space = state.space;
  const people = space && space.state !== "ended" && Array.isArray(space.stage) ? space.stage : [];
  ui.stage.hidden = !people.length;
  setText(ui.stageCount, people.length ? String(people.length) : "");
  const key = JSON.stringify([
    state.role,
    space?.state,
    confirmingRemove,
    [...stageBusy],
    people.map((p) => [p.id, p.name, p.role, Boolean(p.muted)]),
  ]);
  if (key === stageKey) return;
  stageKey = key;
  if (confirmingRemove && !people.some((p) => p.id === confirmingRemove)) confirmingRemove = null;
  const focused = focusedRow(ui.stageList);
  ui.stageList.replaceChildren(...people.map(memberItem));
  for (const item of ui.stageList.children) {
    markSpeaking(item);
    showLevel(item);
  }
  restoreFocus(ui.stageList, focused);
}

function memberItem(person) {
  const item = ui.memberTemplate.content.firstElementChild.cloneNode(true);
  const self = person.id === state.me;
  item.dataset.id = person.id;
  item.dataset.role = person.role;
  fillAvatar(item.querySelector(".avatar"), person);
  item.querySelector(".person-name").textContent = self ? `${person.name} (you)` : person.name;
  item.querySelector(".person-role").textContent = roleLabel(person.role);
  item.querySelector(".studio-muted").hidden = !person.muted;
  item.classList.toggle("is-muted", Boolean(person.muted));
  const live = state.space?.state === "live";
  const can = isModerator() && !self && state.space?.state !== "ended";
  const mute = item.querySelector(".mute");
  mute.hidden = !can || !live;
  mute.querySelector(".label").textContent = person.muted ? "Unmute" : "Mute";
  item.querySelector(".audience").hidden = !can || !outranks(person);
  const hosting = can && state.role === "host";
  item.querySelector(".cohost").hidden = !(hosting && person.role === "speaker");
  item.querySelector(".speaker").hidden = !(hosting && person.role === "cohost");
  item.querySelector(".remove").hidden = !can || !outranks(person);
  const confirm = item.querySelector(".studio-remove-confirm");
  const confirming = confirmingRemove === person.id;
  confirm.hidden = !confirming;
  item.querySelector(".studio-actions").hidden = confirming;
  const question = confirm.querySelector(".confirm-question");
  question.id = `remove-question-${(rowNumber += 1)}`;
  question.textContent =
    `Remove ${person.name} from the space? They leave the stage and can't ask to speak ` +
    "again here.";
  confirm.setAttribute("aria-labelledby", question.id);
  confirm.querySelector(".remove-yes").textContent = `Remove ${person.name}`;
  const busy = stageBusy.has(person.id);
  for (const button of item.querySelectorAll(".studio-actions button")) {
    // The visible words first (what voice control users say), then whom it is for.
    button.setAttribute("aria-label", `${button.textContent.trim()}, ${person.name}`);
  }
  for (const button of item.querySelectorAll("button")) button.disabled = busy;
  return item;
}

function setSpeaking(ids) {
  state.speaking = Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  for (const item of ui.stageList.children) markSpeaking(item);
}

function markSpeaking(item) {
  // The `speaking` events only say when the set changes; the levels (read four times a second)
  // also say it, from the moment the page opens.
  const id = item.dataset.id;
  const talking = isLive() && (state.speaking.includes(id) || Boolean(state.levels[id]?.speaking));
  item.classList.toggle("is-speaking", talking);
  item.querySelector(".studio-speaking").hidden = !talking;
}

function showLevel(item) {
  const level = state.levels[item.dataset.id];
  const fill = item.querySelector(".studio-level-fill");
  const fraction = level && !level.muted ? levelFraction(level.level_dbfs) : 0;
  fill.style.transform = `scaleX(${fraction.toFixed(3)})`;
  fill.parentElement.hidden = !levelsRead; // no levels (not live, or not a moderator)
  const offAir = isLive() && levelsRead && !level;
  item.classList.toggle("is-off-air", offAir);
  item.querySelector(".studio-offair").hidden = !offAir;
}

async function stageAction(person, kind) {
  if (stageBusy.has(person.id)) return;
  const id = encodeURIComponent(person.id);
  const name = person.name;
  const calls = {
    mute: ["PUT", `${spaceUrl}/stage/${id}/muted`, { muted: !person.muted }],
    audience: ["DELETE", `${spaceUrl}/stage/${id}`],
    cohost: ["PUT", `${spaceUrl}/cohosts/${id}`, { name }],
    speaker: ["DELETE", `${spaceUrl}/cohosts/${id}`],
    remove: ["POST", `${spaceUrl}/removals`, { user_id: person.id }],
  };
  const done = {
    mute: person.muted ? `${name} is unmuted.` : `${name} is muted.`,
    audience: `${name} is back in the audience.`,
    cohost: `${name} is a co-host now.`,
    speaker: `${name} is a speaker now.`,
    remove: `${name} was removed.`,
  };
  const failed = {
    mute: person.muted ? `Couldn't unmute ${name}` : `Couldn't mute ${name}`,
    audience: `Couldn't move ${name} to the audience`,
    cohost: `Couldn't make ${name} a co-host`,
    speaker: `Couldn't make ${name} a speaker`,
    remove: `Couldn't remove ${name}`,
  };
  const [method, url, json] = calls[kind];
  stageBusy.add(person.id);
  confirmingRemove = null;
  renderStage();
  try {
    const space = await callApi(method, url, { token, json });
    stageBusy.delete(person.id);
    setStatus(ui.stageStatus, done[kind], { transient: true });
    renderSpace(space);
  } catch (error) {
    stageBusy.delete(person.id);
    setStatus(ui.stageStatus, problemText(failed[kind], error), { error: true });
    stageKey = null;
    renderStage();
    if (error instanceof ApiError && [404, 409].includes(error.status)) watcher?.refresh();
  }
  if (!ui.stageList.contains(document.activeElement)) ui.stage.querySelector("h2").focus();
}

ui.stageList.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const id = button?.closest("li")?.dataset.id;
  const person = (state.space?.stage || []).find((p) => p.id === id);
  if (!person) return;
  const kind = ["mute", "audience", "cohost", "speaker"].find((k) => button.classList.contains(k));
  if (kind) {
    stageAction(person, kind);
  } else if (button.classList.contains("remove")) {
    confirmingRemove = person.id;
    renderStage();
    ui.stageList.querySelector(`li[data-id="${CSS.escape(id)}"] .remove-cancel`)?.focus();
  } else if (button.classList.contains("remove-yes")) {
    stageAction(person, "remove");
  } else if (button.classList.contains("remove-cancel")) {
    confirmingRemove = null;
    renderStage();
    ui.stageList.querySelector(`li[data-id="${CSS.escape(id)}"] .remove`)?.focus();
  }
});

ui.stageList.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !confirmingRemove) return;
  const id = confirmingRemove;
  confirmingRemove = null;
  renderStage();
  ui.stageList.querySelector(`li[data-id="${CSS.escape(id)}"] .remove`)?.focus();
});

// ---- mic levels, while live -------------------------------------------------------------------

let levelTimer = null;
let levelReading = false;
let levelRefused = false;
let levelsRead = false; // since polling started: a first answer came (who isn't in it is off air)

function syncLevelPolling() {
  const wanted = isLive() && isModerator() && !document.hidden && !levelRefused;
  if (wanted && !levelTimer) {
    levelTimer = setInterval(pollLevels, LEVELS_EVERY);
    pollLevels();
  } else if (!wanted && levelTimer) {
    clearInterval(levelTimer);
    levelTimer = null;
    levelsRead = false;
    state.levels = {};
    for (const item of ui.stageList.children) {
      showLevel(item);
      markSpeaking(item);
    }
  }
}

async function pollLevels() {
  if (levelReading) return;
  levelReading = true;
  try {
    const body = await callApi("GET", `${spaceUrl}/levels`, { token });
    if (!levelTimer) return;
    state.levels = body?.levels && typeof body.levels === "object" ? body.levels : {};
    levelsRead = true;
    for (const item of ui.stageList.children) {
      showLevel(item);
      markSpeaking(item);
    }
  } catch (error) {
    if (error instanceof ApiError && [401, 403, 404].includes(error.status)) {
      levelRefused = true; // not for this token: stop asking
      syncLevelPolling();
    }
  } finally {
    levelReading = false;
  }
}

document.addEventListener("visibilitychange", syncLevelPolling);

// ---- questions ------------------------------------------------------------------------------

let questionsLoading = null;
let questionsAgain = false;
let questionsLoaded = false;
let questionsReadFailed = false;
const questionItems = new Map();

function renderQuestionsCard() {
  const show =
    isModerator() && state.space && (state.space.state !== "ended" || state.questions.size > 0);
  ui.questions.hidden = !show;
  if (show && !questionsLoaded && !questionsLoading) loadQuestions();
  if (show) renderQuestions();
}

async function loadQuestions() {
  if (!isModerator() || !state.space) return;
  if (questionsLoading) {
    questionsAgain = true;
    return;
  }
  questionsLoading = callApi("GET", `${spaceUrl}/questions?include=all`, { token });
  try {
    const body = await questionsLoading;
    const known = state.questions;
    state.questions = new Map();
    for (const view of Array.isArray(body?.questions) ? body.questions : []) {
      mergeQuestion(view, known.get(view?.id));
    }
    questionsLoaded = true;
    if (questionsReadFailed) setStatus(ui.questionsStatus, "");
    questionsReadFailed = false;
  } catch (error) {
    questionsReadFailed = true;
    setStatus(ui.questionsStatus, problemText("Couldn't read the questions", error), {
      error: true,
    });
  } finally {
    questionsLoading = null;
  }
  renderQuestionsCard();
  if (questionsAgain) {
    questionsAgain = false;
    loadQuestions();
  }
}

function mergeQuestion(view, previous = state.questions.get(view?.id)) {
  if (!view || typeof view.id !== "string") return true;
  if (typeof view.text !== "string") {
    // Hidden or withdrawn: the public event carries only the id and the state.
    if (!previous) return false;
    state.questions.set(view.id, { ...previous, state: view.state, pinned: false });
    return true;
  }
  const votes = Number(view.votes) || 0;
  state.questions.set(view.id, {
    ...view,
    votes: previous ? Math.max(votes, previous.votes) : votes,
  });
  return true;
}

function handleQuestions(data) {
  if (!isModerator()) return;
  let complete = true;
  for (const view of Array.isArray(data?.questions) ? data.questions : []) {
    complete = mergeQuestion(view) && complete;
  }
  if (!complete) loadQuestions(); // one we never saw, already hidden: read its text
  renderQuestions();
}

function renderQuestions() {
  if (ui.questions.hidden) return;
  const shown = orderQuestions(
    [...state.questions.values()].filter((q) => q.state !== "withdrawn"),
  );
  const open = shown.filter((q) => q.state === "open").length;
  setText(ui.questionsCount, open ? String(open) : "");
  ui.questionsEmpty.hidden = shown.length > 0 || !questionsLoaded;
  const active = document.activeElement;
  const keep = ui.questionList.contains(active) ? active : null;
  let before = ui.questionList.firstElementChild;
  for (const question of shown) {
    let item = questionItems.get(question.id);
    if (!item) {
      item = ui.questionTemplate.content.firstElementChild.cloneNode(true);
      item.dataset.id = question.id;
      questionItems.set(question.id, item);
    }
    fillQuestion(item, question);
    if (item !== before) ui.questionList.insertBefore(item, before);
    else before = before.nextElementSibling;
  }
  const ids = new Set(shown.map((q) => q.id));
  for (const [id, item] of questionItems) {
    if (!ids.has(id)) {
      item.remove();
      questionItems.delete(id);
    }
  }
  if (keep && document.activeElement !== keep && keep.isConnected) keep.focus();
}

function fillQuestion(item, question) {
  const flag = question.pinned
    ? "Now answering"
    : { answered: "Answered", hidden: "Hidden" }[question.state] || "";
  const flagElement = item.querySelector(".question-flag");
  setText(flagElement, flag);
  flagElement.hidden = !flag;
  item.dataset.state = question.state;
  item.classList.toggle("is-pinned", Boolean(question.pinned));
  setText(item.querySelector(".question-text"), question.text);
  setText(item.querySelector(".question-author"), question.author_name || "Guest");
  const votes = Number(question.votes) || 0;
  setText(item.querySelector(".question-votes"), votes === 1 ? "1 vote" : `${votes} votes`);
  const ended = state.space?.state === "ended";
  const pin = item.querySelector(".pin");
  // Pin what is open; unpin what is pinned.
  pin.hidden = ended || (question.pinned ? false : question.state !== "open");
  setText(pin.querySelector(".label"), question.pinned ? "Unpin" : "Pin");
  pin.dataset.action = question.pinned ? "unpin" : "pin";
  item.querySelector(".answer").hidden = ended || question.state !== "open";
  const hide = item.querySelector(".hide");
  hide.hidden = ended;
  setText(hide.querySelector(".label"), question.state === "hidden" ? "Show" : "Hide");
  hide.dataset.action = question.state === "hidden" ? "show" : "hide";
  const short = Array.from(question.text).slice(0, 60).join("");
  const busy = questionsBusy.has(question.id);
  for (const button of item.querySelectorAll("button")) {
    button.setAttribute("aria-label", `${button.textContent.trim()}: ${short}`);
    button.disabled = busy;
  }
}

const questionsBusy = new Set();

async function moderateQuestion(id, action) {
  if (questionsBusy.has(id)) return;
  questionsBusy.add(id);
  renderQuestions();
  const words = {
    pin: "pin",
    unpin: "unpin",
    answer: "mark as answered",
    hide: "hide",
    show: "show",
  };
  try {
    const view = await callApi(
      "POST",
      `${spaceUrl}/questions/${encodeURIComponent(id)}/${action}`,
      { token },
    );
    if (action === "pin") {
      for (const [other, question] of state.questions) {
        if (other !== id && question.pinned) {
          state.questions.set(other, { ...question, pinned: false });
        }
      }
    }
    mergeQuestion(view);
    setStatus(ui.questionsStatus, "");
  } catch (error) {
    setStatus(ui.questionsStatus, problemText(`Couldn't ${words[action]} the question`, error), {
      error: true,
    });
    if (error instanceof ApiError && error.status === 409) loadQuestions();
  } finally {
    questionsBusy.delete(id);
  }
  renderQuestions();
}

ui.questionList.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const id = button?.closest("li")?.dataset.id;
  if (!id) return;
  if (button.classList.contains("answer")) moderateQuestion(id, "answer");
  else if (button.dataset.action) moderateQuestion(id, button.dataset.action);
});

// ---- start ------------------------------------------------------------------------------------

function begin() {
  token = currentToken();
  const claims = tokenClaims(token);
  if (!token || !claims) {
    showSignIn();
    ui.tokenInput.focus();
    return;
  }
  state.me = claims.sub;
  ui.signin.hidden = true;
  ui.signOut.hidden = false;
  setText(ui.accountName, claims.name ? `Signed in as ${claims.name}` : "Signed in");
  if (spaceId) startStudio();
  else startCreate();
}

takeTokenFromAddress();
begin();

// Small hooks for tests and for the curious, in the console.
window.causerie = {
  state,
  get air() {
    return air;
  },
  get returnAudio() {
    return ui.returnAudio;
  },
  refresh: () => watcher?.refresh(),
  localToIso,
};
