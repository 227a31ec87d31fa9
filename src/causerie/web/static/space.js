// The listener page of one space (/s/{id}): its details, kept fresh, and the player; the
// audience's part (questions, reactions, a raised hand; a countdown before the start, the replay
// after the end); and, for whoever opened it with a host link (/s/{id}#host=<token>), a small
// card to start and end it.
//
// Text that comes from the API (titles, descriptions, names, messages) only ever goes into the
// page as text (textContent), never as HTML.

import {
  ApiError,
  backoffSeconds,
  endSpace,
  getSettings,
  joinSpace,
  lowerHand,
  raiseHand,
  sendHeartbeat,
  sleep,
  startSpace,
  waitDelaySeconds,
  withRetry,
} from "./api.js";
import { embedCode } from "./embed-code.js";
import { LiveCaptions, Transcript } from "./captions.js";
import { followSpace } from "./feed.js";
import { Flagging } from "./flagging.js";
import {
  $,
  copyOnClick,
  failedText,
  formatWhen,
  keepHostToken,
  keepListenerSession,
  keptHostToken,
  listenersText,
  olderThan,
  personItem,
  readListenerSession,
  retryInText,
  sentence,
  setStatus as showStatus,
  setText,
  spaceIdFromLocation,
  stateLabel,
  storageGet,
  storageSet,
  unreachableText,
  untilText,
  waitingText,
} from "./page.js";
import { HLS_JS, Player, choosePlayer, forcedPlayer, loadScript, replayPlayer } from "./player.js";
import { Questions, savedName } from "./questions.js";
import { Reactions } from "./reactions.js";

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
  embedding: $("embedding"),
  embedCode: $("embed-code"),
  copyEmbed: $("copy-embed"),
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
  schedule: $("schedule"),
  countdown: $("countdown"),
  calendar: $("calendar"),
  hand: $("hand"),
  handButton: $("hand-button"),
  handLabel: $("hand-label"),
  handStatus: $("hand-status"),
  onStage: $("on-stage"),
  speakLink: $("speak-link"),
  replay: $("replay"),
  replayAudio: $("replay-audio"),
  replayStatus: $("replay-status"),
  recordingError: $("recording-error"),
  download: $("download"),
  after: $("after"),
  reportLink: $("report-link"),
  captions: $("captions"),
  captionsButton: $("captions-button"),
  captionsStatus: $("captions-status"),
  captionLines: $("caption-lines"),
  transcript: $("transcript"),
  transcriptLines: $("transcript-lines"),
  transcriptVtt: $("transcript-vtt"),
  transcriptTxt: $("transcript-txt"),
};

/** The space's id, from /s/{id} (or ?id= when the page is opened as a plain file). */
const spaceId = spaceIdFromLocation(/^\/s\/([^/]+)\/?$/);
/** The player asked for in the address (`?player=hls.js`, say), if any. */
const forced = forcedPlayer();
/** When the page started, by the node's clock once the feed tells it (ms). */
const pageStart = performance.timeOrigin;

/** Everything the page knows; also what tests look at through window.causerie.state. */
const state = {
  spaceId,
  space: null, // the latest details from the API
  phase: "idle", // "idle" | "joining" | "playing"
  token: null, // the listener token (see listenerSession), once the page has joined
  listenerId: null, // … and who it says this listener is
  handRaised: false,
  speaking: [], // the ids of who is talking on stage now
  heartbeatInterval: null,
  waiting: null, // while the space is full: {position, estimated_wait_seconds, retry_after}
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

function showNotice(text) {
  setText(ui.notice, text);
  ui.notice.hidden = !text;
}

function renderSpace(space) {
  const previous = state.space;
  if (olderThan(space, previous)) return;
  state.space = space;
  state.notFound = false;
  ui.card.setAttribute("aria-busy", "false");

  document.title = `${space.title} · causerie`;
  setText(ui.title, space.title);
  setText(ui.description, space.description || "");
  ui.description.hidden = !space.description;
  setText(ui.host, space.host?.name ? `Hosted by ${space.host.name}` : "");
  renderStage(space);
  // Who is talking comes with the first details; after that, `speaking` events keep it fresh
  // (later details may be older than the last event).
  if (!previous && Array.isArray(space.speaking)) setSpeaking(space.speaking);
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
    showNotice(
      space.replay_url
        ? "This space has ended. You can listen to the replay below."
        : "This space has ended. Thanks for listening!",
    );
  } else {
    setText(ui.when, "");
    showNotice("");
  }

  const url = new URL(space.playlist_url, location.href).href;
  if (ui.playlist.value !== url) ui.playlist.value = url;
  ui.elsewhere.hidden = space.state !== "live";
  // The player for other sites, before and during the space (docs/embed.md).
  const code = embedCode(location.origin, space.id, space.title);
  if (ui.embedCode.value !== code) ui.embedCode.value = code;
  ui.embedding.hidden = space.state === "ended";

  if (space.state === "ended" && state.phase !== "idle") {
    player?.refresh(); // the manifest says it is over: dash.js plays what it has, then ends
    stopListening({ finishing: true });
  }
  if (previous?.state === "scheduled" && space.state === "live" && state.phase === "idle") {
    setStatus("The space is live. Press play to listen.");
  }
  renderControls();
  renderHost();
  renderAudience();
}

/** The audience's part, for the space's state: what to do before, during and after it. */
function renderAudience() {
  const space = state.notFound ? null : state.space;
  captions.setSpace(space);
  transcript.setSpace(space);
  if (space) questions.setSpace(space);
  else questions.clear();
  reactions.setLive(space?.state === "live");
  if (space?.state !== "live" && state.speaking.length) setSpeaking([]);
  renderCountdown();
  renderHand();
  renderReplay();
}

/** Who is on stage (host first), as a list of names and roles; hidden once the space ends. */
function renderStage(space) {
  const people = space.state === "ended" || !Array.isArray(space.stage) ? [] : space.stage;
  setText(ui.stageTitle, space.state === "live" ? "On stage" : "Speakers");
  ui.stage.hidden = !people.length;
  const key = JSON.stringify(
    people.map((p) => [p.id, p.name, p.role, Boolean(p.muted), Boolean(p.reconnecting)]),
  );
  if (key === stageKey) return;
  stageKey = key;
  ui.stageList.replaceChildren(...people.map((person) => personItem(ui.personTemplate, person)));
  for (const item of ui.stageList.children) markSpeaking(item);
}

/** Who is talking now (a `speaking` event): their row on stage says so. */
function setSpeaking(ids) {
  state.speaking = Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  for (const item of ui.stageList.children) markSpeaking(item);
}

function markSpeaking(item) {
  const talking = state.space?.state === "live" && state.speaking.includes(item.dataset.id);
  item.classList.toggle("is-speaking", talking);
  item.querySelector(".person-speaking").hidden = !talking;
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
    ui.embedding.hidden = true;
    ui.stage.hidden = true;
    ui.hostCard.hidden = true;
    ui.card.setAttribute("aria-busy", "false");
    setText(ui.title, "Space not found");
    showNotice("We couldn't find this space. It may have been removed, or the link is wrong.");
    renderControls();
    renderAudience();
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

/** Which player the page uses ("dash.js", "native", "hls.js"): `data-player` on #player. */
function showPlayer(method) {
  if (method) ui.player.dataset.player = method;
  else delete ui.player.dataset.player;
}

// ---- listening ---------------------------------------------------------------------------

async function startListening() {
  if (state.phase !== "idle" || state.space?.state !== "live") return;
  if (!choosePlayer(ui.audio, forced)) {
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
  const pressed = Date.now();
  try {
    const current = await listenerSession({
      signal,
      forever: true,
      onRetry(error, _attempt, delay) {
        const why = error.status === 0 ? "Can't reach the server" : "The space is very busy";
        setStatus(`${why}. Trying again in ${Math.ceil(delay)} s…`);
      },
    });
    if (signal.aborted) return;
    state.heartbeatInterval = current.heartbeatInterval || state.heartbeatInterval || 15;
    state.phase = "playing";
    renderControls();
    // The listener count now includes this listener: the server pushes it within a few seconds.
    setStatus("Connecting to the stream…");
    const sources = {
      dash: new URL(`/dash/${encodeURIComponent(spaceId)}/manifest.mpd`, location.href).href,
      hls: new URL(current.playlistUrl || state.space.playlist_url, location.href).href,
      time: new URL("/time", location.href).href,
    };
    const started = new Player(ui.audio, sources, {
      prefer: forced,
      onStatus: (_kind, text) => {
        setStatus(text);
        showPlayer(started.method);
      },
    });
    player = started;
    showPlayer(player.method);
    // A join counts the listener; a token kept from earlier needs a heartbeat to, at once.
    startHeartbeats({ now: current.joinedAt < pressed });
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

function startHeartbeats({ now = false } = {}) {
  // Every heartbeat_interval, ±10 %: after a join storm, listeners' heartbeats spread out
  // instead of arriving in waves.
  const next = (seconds) => {
    heartbeatTimer = setTimeout(beat, seconds * (0.9 + 0.2 * Math.random()) * 1000);
  };
  async function beat() {
    if (state.phase !== "playing") return;
    let wait = state.heartbeatInterval;
    const used = session;
    try {
      await sendHeartbeat(spaceId, used?.token);
      state.heartbeatsSent += 1;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        // The token expired: get a fresh one, quietly (a join costs the server no state).
        dropSession(used);
        try {
          await listenerSession();
        } catch {
          // Try again at the next beat.
        }
      } else if (error instanceof ApiError && error.retryAfter != null) {
        wait = Math.max(wait, error.retryAfter);
      }
    }
    if (state.phase === "playing") next(wait);
  }
  if (now) heartbeatTimer = setTimeout(beat, 0);
  else next(state.heartbeatInterval);
}

function startLatencyDisplay() {
  clearInterval(latencyTimer);
  latencyTimer = setInterval(() => {
    const seconds = player && !ui.audio.paused ? player.latency() : null;
    state.latency = seconds;
    setText(ui.latency, seconds == null ? "" : `${seconds.toFixed(1)} s behind live`);
  }, 1000);
}

// ---- the listener's identity --------------------------------------------------------------
//
// One listener token per space and tab, kept in sessionStorage with its expiry: the same
// listener listens, asks, votes, reacts and raises a hand. Joining is what gets it, once:
// when the listener presses play, or first does something that needs it. The display name
// chosen on the page goes with the join (the token carries it, and questions show it).

const handKey = `causerie.hand.${spaceId}`;
let session = readListenerSession(spaceId);
let joining = null; // the join on its way, shared by whoever needs the token meanwhile

/** Whether a kept token is still good for a while (a minute's margin before its expiry). */
function sessionUsable(kept) {
  return Boolean(kept?.token) && !(kept.expiresAt && kept.expiresAt - Date.now() < 60_000);
}

function keepSession(joined, name) {
  const expires = Date.parse(joined.expires_at);
  session = {
    token: joined.token,
    listenerId: joined.listener_id ?? null,
    expiresAt: Number.isFinite(expires) ? expires : null,
    heartbeatInterval: joined.heartbeat_interval ?? null,
    playlistUrl: joined.playlist_url ?? null,
    name,
    joinedAt: Date.now(),
  };
  keepListenerSession(spaceId, session);
  showSession();
  return session;
}

/** Forget a token the server refused (unless it was replaced already). */
function dropSession(refused) {
  if (!refused || session !== refused) return;
  session = null;
  keepListenerSession(spaceId, null);
  showSession();
}

function showSession() {
  state.token = session?.token ?? null;
  state.listenerId = session?.listenerId ?? null;
  state.handRaised = Boolean(session) && storageGet("session", handKey) === session.token;
}

function setHandRaised(raised) {
  state.handRaised = raised && Boolean(session);
  storageSet("session", handKey, state.handRaised ? session.token : null);
}

function startJoin({ signal, onRetry, maxAttempts }) {
  const name = savedName();
  const promise = joinThroughLine({ signal, onRetry, maxAttempts, name }).then((joined) =>
    keepSession(joined, name),
  );
  joining = promise;
  const done = () => {
    if (joining === promise) joining = null;
  };
  promise.then(done, done);
  return promise;
}

/**
 * Join, waiting in line while the space is full: the server says where one stands and when to
 * ask again; the page shows it, waits a random time up to then (full jitter), and asks again
 * with its ticket, which keeps its place. A ticket the server no longer takes (expired, say)
 * is dropped: the next try queues anew. Overload answers (503, 429) are retried by withRetry.
 */
async function joinThroughLine({ signal, onRetry, maxAttempts, name }) {
  let ticket = null;
  for (;;) {
    let answer;
    try {
      answer = await withRetry(
        () => {
          state.joinAttempts += 1;
          return joinSpace(spaceId, { signal, name, ticket });
        },
        { signal, onRetry, maxAttempts },
      );
    } catch (error) {
      if (ticket && error instanceof ApiError && error.status === 422) {
        ticket = null;
        continue;
      }
      state.waiting = null;
      throw error;
    }
    if (!answer?.waiting) {
      state.waiting = null;
      return answer;
    }
    const { waiting } = answer;
    ticket = waiting.ticket;
    state.waiting = {
      position: waiting.position,
      estimated_wait_seconds: waiting.estimated_wait_seconds,
      retry_after: waiting.retry_after,
    };
    setStatus(`${waitingText(waiting)}. You'll be let in automatically.`);
    await sleep(waitDelaySeconds(waiting), signal);
  }
}

/**
 * The listener's session for this space: the kept one, or a new one (joining, with retries:
 * a few, or until `signal` aborts when `forever`). With `rename`, a new display name (set since
 * the join) gets a new token that carries it, unless that would lose a raised hand or the stage.
 */
async function listenerSession({ signal, onRetry, forever = false, rename = false } = {}) {
  if (joining) {
    try {
      await joining;
    } catch (error) {
      if (signal?.aborted) throw error;
      // That join gave up (or its listener stopped it): this one tries by itself.
    }
  }
  const renamed =
    rename && session && session.name !== savedName() && !state.handRaised && !onStage();
  if (sessionUsable(session) && !renamed) return session;
  return startJoin({ signal, onRetry, maxAttempts: forever ? Infinity : 5 });
}

/** Run `action(token, session)` as this listener; a refused (expired) token is renewed once. */
async function withListener(action, { rename = false } = {}) {
  let current = await listenerSession({ rename });
  try {
    return await action(current.token, current);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) throw error;
    dropSession(current);
    current = await listenerSession();
    return action(current.token, current);
  }
}

/** Whether this listener is on stage (a raised hand was approved). */
function onStage() {
  const me = session?.listenerId;
  const stage = state.space?.state === "live" ? state.space.stage : null;
  return Boolean(me) && Array.isArray(stage) && stage.some((person) => person.id === me);
}

// ---- raising a hand ---------------------------------------------------------------------------

let handBusy = false;

function renderHand() {
  const live = !state.notFound && state.space?.state === "live";
  const me = live && onStage();
  // On stage, or the space is over: the request is answered, or moot.
  if (state.handRaised && (me || !live)) setHandRaised(false);
  ui.hand.hidden = !live || me;
  ui.onStage.hidden = !me;
  ui.speakLink.href = `/s/${encodeURIComponent(spaceId)}/speak`;
  setText(ui.handLabel, state.handRaised ? "Cancel request" : "Request to speak");
  ui.handButton.classList.toggle("is-raised", state.handRaised);
  ui.handButton.disabled = handBusy;
  if (me || !live) setHandStatus("");
}

const setHandStatus = (text, options) => showStatus(ui.handStatus, text, options);

function handErrorText(raising, error) {
  const what = raising ? "Couldn't send your request" : "Couldn't cancel your request";
  const status = error instanceof ApiError ? error.status : -1;
  if (status === 0) return unreachableText(what);
  if (status === 409) return `${what}: the space isn't live.`;
  if (status === 429 || status === 503) {
    return `${what}: too many tries. Try again${retryInText(error)}.`;
  }
  return failedText(what, error);
}

async function toggleHand() {
  if (handBusy) return;
  const raising = !state.handRaised;
  handBusy = true;
  setHandStatus(raising ? "Sending your request…" : "Cancelling…");
  renderHand();
  try {
    if (raising) {
      await withListener((token) => raiseHand(spaceId, token, savedName()));
      setHandRaised(true);
      setHandStatus("Your hand is up: the hosts see your request.");
    } else {
      await withListener((token) => lowerHand(spaceId, token));
      setHandRaised(false);
      setHandStatus("Request cancelled.");
    }
  } catch (error) {
    setHandStatus(handErrorText(raising, error), { error: true });
    if (error instanceof ApiError && error.status === 409) watcher?.refresh();
  } finally {
    handBusy = false;
    renderHand();
  }
}

ui.handButton.addEventListener("click", toggleHand);

// ---- before the start: a countdown ------------------------------------------------------------

let countdownTimer = null;

function renderCountdown() {
  const space = state.notFound ? null : state.space;
  const start = space?.state === "scheduled" ? Date.parse(space.scheduled_start) : NaN;
  ui.schedule.hidden = !Number.isFinite(start);
  if (ui.schedule.hidden) {
    clearInterval(countdownTimer);
    countdownTimer = null;
    return;
  }
  ui.calendar.href = `/api/spaces/${encodeURIComponent(spaceId)}.ics`;
  tickCountdown();
  countdownTimer ??= setInterval(tickCountdown, 1000);
}

function tickCountdown() {
  const start = Date.parse(state.space?.scheduled_start);
  const until = Number.isFinite(start) ? untilText(start - Date.now()) : "";
  // Past the time and not live yet: the host is on their way.
  setText(ui.countdown, until ? `Starts in ${until}` : "Starting any moment now");
}

// ---- after the end: the replay ----------------------------------------------------------------
//
// An HLS VOD playlist in an <audio> with the browser's own controls (seeking included): through
// hls.js where there is Media Source Extensions, natively elsewhere (Safari). Nothing is loaded
// before the listener presses play or seeks.

let replay = null; // {url, hls, listeners}

function renderReplay() {
  const space = state.notFound ? null : state.space;
  const ended = space?.state === "ended";
  const url = ended && space.replay_url ? new URL(space.replay_url, location.href).href : null;
  const download = ended && space.download_url ? space.download_url : null;
  ui.after.hidden = !ended;
  ui.reportLink.href = `/s/${encodeURIComponent(spaceId)}/report`;
  ui.replay.hidden = !url && !download;
  ui.replayAudio.hidden = !url;
  ui.download.hidden = !download;
  ui.download.parentElement.hidden = !download;
  if (download) ui.download.href = new URL(download, location.href).href;
  const problem = ended && space.recording_error ? sentence(space.recording_error) : "";
  setText(ui.recordingError, problem ? `The recording may be incomplete: ${problem}` : "");
  ui.recordingError.hidden = !problem;
  if (url !== (replay?.url ?? null)) {
    stopReplay();
    if (url) startReplay(url);
  }
}

function setReplayStatus(text) {
  setText(ui.replayStatus, text);
}

async function startReplay(url) {
  const audio = ui.replayAudio;
  const method = replayPlayer(audio);
  const listeners = new AbortController();
  const mine = { url, hls: null, listeners };
  replay = mine;
  if (!method) {
    setReplayStatus("This browser can't play the replay here: download it instead.");
    return;
  }
  if (method === "native") {
    audio.src = url;
    return;
  }
  try {
    await loadScript(HLS_JS);
  } catch {
    setReplayStatus("The player could not be loaded: download the replay instead.");
    return;
  }
  if (replay !== mine) return; // replaced or stopped meanwhile
  const Hls = window.Hls;
  const hls = new Hls({ autoStartLoad: false, backBufferLength: 90 });
  replay.hls = hls;
  let loading = false;
  let failures = 0;
  const load = () => {
    if (loading || replay?.hls !== hls) return;
    loading = true;
    hls.startLoad(audio.currentTime > 0 ? audio.currentTime : -1);
  };
  const { signal } = listeners;
  audio.addEventListener("play", load, { signal });
  audio.addEventListener("seeking", load, { signal });
  audio.addEventListener("playing", () => setReplayStatus(""), { signal });
  hls.on(Hls.Events.FRAG_LOADED, () => {
    failures = 0;
  });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal || replay?.hls !== hls) return;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      setReplayStatus("Connection lost. Retrying…");
      const delay = 1 + backoffSeconds(failures++, { base: 1, cap: 15 });
      setTimeout(() => {
        if (replay?.hls === hls) hls.startLoad(audio.currentTime > 0 ? audio.currentTime : -1);
      }, delay * 1000);
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else {
      setReplayStatus("The replay can't be played here. Try the download.");
    }
  });
  hls.loadSource(url);
  hls.attachMedia(audio);
}

function stopReplay() {
  if (!replay) return;
  replay.listeners.abort();
  replay.hls?.destroy();
  if (!replay.hls) {
    ui.replayAudio.removeAttribute("src");
    ui.replayAudio.load();
  }
  replay = null;
  setReplayStatus("");
}

// ---- host controls -------------------------------------------------------------------------
//
// A host link carries the host's token in the fragment (never sent to the server with the
// page). It is kept in sessionStorage for this space, so that reloading the tab keeps the
// controls, and taken out of the address bar, so that copying the URL to share the space does
// not share the token too.

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
      keepHostToken(spaceId, token);
    }
  } else if (!hostToken) {
    hostToken = keptHostToken(spaceId);
  }
  state.hosting = Boolean(spaceId && hostToken);
}

function setHostStatus(text, { error = false, about = null } = {}) {
  showStatus(ui.hostStatus, text, { error });
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

function hostErrorText(what, error) {
  const status = error instanceof ApiError ? error.status : -1;
  if (status === 0) return unreachableText(what);
  if (status === 401) return `${what}: this host link isn't valid. ${sentence(error.message)}`;
  if (status === 403) {
    return `${what}: your host link doesn't allow it. ${sentence(error.message)}`;
  }
  if (status === 429 || status === 503) return `${what}: the server is busy. Try again soon.`;
  return failedText(what, error);
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

const VOLUME_KEY = "causerie.volume";

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
  storageSet("local", VOLUME_KEY, ui.volume.value);
});

function setUpVolume() {
  const saved = storageGet("local", VOLUME_KEY);
  if (saved !== null && Number.isFinite(Number(saved))) ui.volume.value = saved;
  ui.audio.volume = Number(ui.volume.value);
  // iOS ignores volume set by pages (the hardware buttons rule): hide a slider that does nothing.
  ui.audio.volume = 0.5;
  const settable = ui.audio.volume === 0.5;
  ui.audio.volume = Number(ui.volume.value);
  volumeSettable = settable;
}

copyOnClick(ui.copy, ui.playlist);
copyOnClick(ui.copyEmbed, ui.embedCode);

// ---- start -----------------------------------------------------------------------------------

setUpVolume();
takeHostToken();
showSession();
const questions = new Questions({ spaceId, withListener, listenerId: () => state.listenerId });
// Live captions follow what this listener hears (the player's PROGRAM-DATE-TIME); without a
// player they show as they come.
const captions = new LiveCaptions({
  root: ui.captions,
  button: ui.captionsButton,
  status: ui.captionsStatus,
  lines: ui.captionLines,
  playingAt: () => (player && !ui.audio.paused ? player.playingAt() : null),
});
const transcript = new Transcript({
  root: ui.transcript,
  list: ui.transcriptLines,
  vtt: ui.transcriptVtt,
  txt: ui.transcriptTxt,
  audio: ui.replayAudio,
});
// A link to a moment of the replay (a search result): /s/{id}?t=SECONDS.
const startAt = Number(new URLSearchParams(location.search).get("t"));
if (Number.isFinite(startAt) && startAt > 0) {
  ui.replayAudio.addEventListener(
    "loadedmetadata",
    () => {
      if (ui.replayAudio.currentTime < 1) ui.replayAudio.currentTime = startAt;
    },
    { once: true },
  );
}
const reactions = new Reactions({ spaceId, withListener });
const flagging = new Flagging({ spaceId, withListener });
// The text limits and the reactions on offer are the server's (read once, cacheable).
getSettings().then(
  (settings) => {
    questions.setLimits(settings.limits);
    reactions.setChoices(settings.reactions);
    flagging.setChoices(settings.report_reasons ?? [], settings.limits.report_note);
  },
  () => {
    // A server without settings: no reactions to offer; it still checks what is sent.
  },
);
renderControls();
showPlayer(choosePlayer(ui.audio, forced));
let watcher = null;
if (spaceId) {
  // Listeners follow the feed every listener reads alike (edges share it), not a stream of
  // their own: feed.js.
  watcher = followSpace(spaceId, renderSpace, renderError, {
    on: {
      questions: (data) => questions.handle(data),
      reactions: (data, event) => {
        // A window replays from its start: what was sent before this page opened is past.
        if (event.at * 1000 >= pageStart + watcher.clockOffset) reactions.handle(data);
      },
      speaking: (data) => setSpeaking(data.speaking),
      caption: (data) => captions.handle(data),
      run: (data) => {
        // A new run (a failover): its Period has new URLs, which dash.js learns from the MPD.
        const playing = player?.run();
        if (playing && data.run && data.run !== playing) player.refresh();
      },
    },
    onResync: () => questions.resync(),
  });
} else {
  renderError(new ApiError(404, "not_found", "No space in the address.", null));
}

// Questions come with the live events; while those fail (polling), they are read now and then.
setInterval(
  () => {
    const mode = watcher?.mode;
    if (mode === "polling" && state.space && !document.hidden) questions.load();
  },
  (5 + Math.random()) * 1000,
);

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
  get dash() {
    return player?.dash ?? null;
  },
  get questions() {
    return questions;
  },
  get reactions() {
    return reactions;
  },
  get replay() {
    return replay;
  },
  get captions() {
    return captions;
  },
  get transcript() {
    return transcript;
  },
  play: startListening,
  stop: () => stopListening(),
  refresh: () => watcher?.refresh(),
  /** How the details arrive: "events", "polling", "connecting" or "stopped" (see followSpace). */
  get watching() {
    return watcher?.mode ?? null;
  },
};
