// The speaker view (/s/{id}/speak): for a listener the host brought on stage (or invited).
// "Go live" publishes the microphone with WHIP, with the listener token the listener page keeps
// for this tab, and plays what comes back: the others, in real time (no LL-HLS delay). A
// self-mute toggle; "Leave the stage". When the host takes the role away (a `space` event
// without this listener on stage) or the space ends, the connection is torn down at once.
//
// Text that comes from the API (titles, names, messages) only ever goes into the page as text.

import { ApiError, callApi, watchSpace } from "./api.js";
import {
  $,
  olderThan,
  personItem,
  problemText,
  readListenerSession,
  roleLabel,
  setStatus as showStatus,
  setText,
  spaceIdFromLocation,
  stateLabel,
} from "./page.js";
import {
  WhipSession,
  levelFraction,
  levelMeter,
  micProblemText,
  openMicrophone,
  setVoiceProcessing,
  voiceProcessing,
} from "./whip.js";

const ui = {
  card: $("speak"),
  back: $("back"),
  badge: $("badge"),
  spaceTitle: $("space-title"),
  heading: $("heading"),
  note: $("note"),
  controls: $("controls"),
  live: $("live"),
  liveLabel: $("live-label"),
  mute: $("mute"),
  muteLabel: $("mute-label"),
  level: $("level"),
  status: $("status"),
  leave: $("leave"),
  processing: $("processing"),
  elsewhere: $("elsewhere"),
  listenLink: $("listen-link"),
  invitation: $("invitation"),
  accept: $("accept"),
  actionStatus: $("action-status"),
  stage: $("stage"),
  stageList: $("stage-list"),
  personTemplate: $("person"),
  returnAudio: $("return-audio"),
};

const spaceId = spaceIdFromLocation(/^\/s\/([^/]+)\/speak\/?$/);
const spaceUrl = `/api/spaces/${encodeURIComponent(spaceId || "")}`;
const listenerUrl = `/s/${encodeURIComponent(spaceId || "")}`;

/** The listener token the listener page keeps for this space and tab (see space.js). */
function readSession() {
  const session = readListenerSession(spaceId);
  return session?.listenerId ? session : null;
}

/** Everything the page knows; also what tests look at through window.causerie.state. */
const state = {
  spaceId,
  space: null,
  notFound: false,
  session: readSession(),
  onStage: false,
  wasOnStage: false, // on stage at some point while this page was open
  offStageReason: null, // "left" | "moved" | "ended" once off stage again
  phase: "idle", // "idle" | "connecting" | "live" | "reconnecting"
  speaking: [],
};

let air = null; // {session, stream, meter, timer}
let busy = false; // a leave, mute or accept on its way
let watcher = null;
let stageKey = null;

const setStatus = (text, options) => showStatus(ui.status, text, options);
const setActionStatus = (text, options) => showStatus(ui.actionStatus, text, options);

const myId = () => state.session?.listenerId ?? null;
const me = () => (state.space?.stage || []).find((person) => person.id === myId()) || null;

// ---- the space ------------------------------------------------------------------------------

function renderSpace(space) {
  const previous = state.space;
  if (olderThan(space, previous)) return;
  state.space = space;
  state.notFound = false;
  ui.card.setAttribute("aria-busy", "false");
  document.title = `Speaker view: ${space.title} · causerie`;
  setText(ui.spaceTitle, space.title);
  ui.badge.hidden = false;
  setText(ui.badge, stateLabel(space.state));
  ui.badge.dataset.state = space.state;

  const wasOn = state.onStage;
  state.onStage = space.state === "live" && Boolean(me());
  if (state.onStage) {
    state.wasOnStage = true;
    state.offStageReason = null;
  } else if (wasOn) {
    // Off stage now: the host moved this listener back, or the space ended.
    state.offStageReason ??= space.state === "ended" ? "ended" : "moved";
    // The server ends the sessions of whoever leaves the stage (and of a space that ends).
    if (air) stopAir({ tellServer: false });
  }
  // The node no longer hears us though we hear it: the way out broke. Reconnect.
  if (air && me()?.reconnecting) air.session.nudge();
  render();
}

function renderError(error) {
  if (error instanceof ApiError && error.status === 404) {
    state.notFound = true;
    state.onStage = false;
    if (air) stopAir({ tellServer: false });
    ui.card.setAttribute("aria-busy", "false");
    render();
  } else if (!state.space) {
    showNote("Couldn't load this space yet. Trying again…");
  }
}

function showNote(text) {
  setText(ui.note, text);
  ui.note.hidden = !text;
}

/** The heading and the note say where this listener stands; the controls follow. */
function render() {
  const space = state.space;
  let heading;
  let note = "";
  if (state.notFound) {
    heading = "Space not found";
    note = "We couldn't find this space. It may have been removed, or the link is wrong.";
  } else if (!space) {
    heading = "Loading…";
  } else if (state.onStage) {
    heading = "You're on stage";
    const role = roleLabel(me().role).toLowerCase();
    note =
      state.phase === "live"
        ? `You're live as a ${role}: everyone hears you, and you hear the others here.`
        : `You're a ${role} in “${space.title}”. Press Go live when you're ready to talk.`;
  } else if (space.state === "ended") {
    heading = "This space has ended";
    note = state.wasOnStage ? "Thanks for speaking!" : "Thanks for being here.";
  } else if (state.offStageReason === "left") {
    heading = "You left the stage";
    note = "You're back in the audience. Raise your hand again to speak.";
  } else if (state.offStageReason === "moved") {
    heading = "You're back in the audience";
    note = "The host moved you back to the audience: your microphone is off.";
  } else if (!state.session) {
    heading = "You're not on stage";
    note =
      "This tab hasn't joined the space. Open the space, ask to speak, and come back here " +
      "once the host brings you on stage.";
  } else if (space.state === "scheduled") {
    heading = "You're not on stage";
    note = "The space hasn't started yet.";
  } else {
    heading = "You're not on stage";
    note = "Ask to speak on the space's page: once the host approves, come back here.";
  }
  if (ui.heading.textContent !== heading) {
    const moved = ui.heading.textContent !== "Loading…";
    setText(ui.heading, heading);
    // The page changed its meaning: take the keyboard (and screen readers) to its heading.
    if (moved) ui.heading.focus();
  }
  showNote(note);

  ui.back.href = listenerUrl;
  ui.listenLink.href = listenerUrl;
  ui.controls.hidden = !state.onStage;
  ui.elsewhere.hidden = state.onStage || state.notFound || !space;
  setText(ui.listenLink, space?.state === "ended" ? "See the space" : "Back to the space");
  ui.invitation.hidden = !(space?.state === "live" && state.session && !state.onStage);
  renderControls();
  renderStage();
}

function renderControls() {
  if (!state.onStage) return;
  const publishing = Boolean(air);
  const muted = Boolean(me()?.muted);
  ui.live.hidden = publishing;
  ui.liveLabel.parentElement.hidden = publishing;
  ui.live.disabled = busy;
  ui.live.setAttribute("aria-label", "Go live");
  ui.mute.hidden = !publishing;
  ui.mute.disabled = busy;
  ui.mute.setAttribute("aria-pressed", String(muted));
  setText(ui.muteLabel, muted ? "Muted" : "Mute");
  ui.mute.setAttribute("aria-label", "Mute my microphone");
  ui.leave.disabled = busy;
  if (air) air.stream.getAudioTracks().forEach((track) => (track.enabled = !muted));
  ui.controls.dataset.phase = state.phase;
}

function renderStage() {
  const space = state.space;
  const people = space?.state === "live" && Array.isArray(space.stage) ? space.stage : [];
  ui.stage.hidden = !people.length;
  const key = JSON.stringify([
    myId(),
    people.map((p) => [p.id, p.name, p.role, p.muted, Boolean(p.reconnecting)]),
  ]);
  if (key === stageKey) return;
  stageKey = key;
  ui.stageList.replaceChildren(
    ...people.map((person) => personItem(ui.personTemplate, person, { you: person.id === myId() })),
  );
  markSpeaking();
}

function setSpeaking(ids) {
  state.speaking = Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  markSpeaking();
}

function markSpeaking() {
  for (const item of ui.stageList.children) {
    const talking = state.speaking.includes(item.dataset.id);
    item.classList.toggle("is-speaking", talking);
    item.querySelector(".person-speaking").hidden = !talking;
  }
}

// ---- going live -------------------------------------------------------------------------------

async function goLive() {
  if (air || busy || !state.onStage) return;
  state.phase = "connecting";
  setStatus("Asking for your microphone…");
  busy = true;
  renderControls();
  let stream;
  try {
    stream = await openMicrophone({ processing: ui.processing.checked });
  } catch (error) {
    busy = false;
    state.phase = "idle";
    setStatus(micProblemText(error) || problemText("Couldn't open the microphone", error), {
      error: true,
    });
    renderControls();
    return;
  }
  busy = false;
  if (!state.onStage) {
    for (const track of stream.getTracks()) track.stop();
    state.phase = "idle";
    return;
  }
  const session = new WhipSession(`/whip/${encodeURIComponent(spaceId)}`, state.session.token, {
    onTrack: (remote) => {
      ui.returnAudio.srcObject = remote;
      ui.returnAudio.play().catch(() => {
        setStatus("The browser blocked the others' sound. Leave and go live again.");
      });
    },
    onState: onConnection,
  });
  air = { session, stream, meter: levelMeter(stream), timer: setInterval(showLevel, 100) };
  setStatus("Connecting…");
  render();
  try {
    await session.publish(stream);
  } catch (error) {
    if (air?.session !== session) return;
    stopAir({ tellServer: false });
    let text = problemText("Couldn't go live", error);
    if (error instanceof ApiError && error.status === 401) {
      text =
        "Your session for this space has expired. Go back to the space and ask to speak again.";
    }
    setStatus(text, { error: true });
    if (error instanceof ApiError && error.status === 403) watcher?.refresh();
  }
}

function onConnection(connection) {
  if (!air) return;
  if (connection === "connected") {
    state.phase = "live";
    setStatus(me()?.muted ? "You're live, muted." : "You're live.");
  } else if (connection === "reconnecting") {
    state.phase = "reconnecting";
    setStatus("Your connection dropped: reconnecting…");
  } else if (connection === "failed" || connection === "closed") {
    stopAir({ tellServer: true });
    setStatus("The connection was lost. Press Go live to try again.", { error: true });
    watcher?.refresh(); // the server may have ended it: still on stage?
  }
  render();
}

function showLevel() {
  if (!air) return;
  const fraction = me()?.muted ? 0 : levelFraction(air.meter.read());
  ui.level.style.transform = `scaleX(${fraction.toFixed(3)})`;
}

/** Off the air: the connection closed, the microphone released, the session ended. */
function stopAir({ tellServer = true } = {}) {
  if (!air) return Promise.resolve();
  const { session, stream, meter, timer } = air;
  air = null;
  state.phase = "idle";
  clearInterval(timer);
  meter.close();
  for (const track of stream.getTracks()) track.stop();
  ui.returnAudio.srcObject = null;
  ui.level.style.transform = "scaleX(0)";
  setStatus("");
  render();
  return session.stop({ tellServer });
}

ui.live.addEventListener("click", goLive);

ui.mute.addEventListener("click", async () => {
  if (busy || !state.onStage) return;
  const muted = !me()?.muted;
  busy = true;
  renderControls();
  try {
    const space = await callApi("PUT", `${spaceUrl}/stage/${encodeURIComponent(myId())}/muted`, {
      token: state.session.token,
      json: { muted },
    });
    busy = false;
    renderSpace(space);
    setStatus(muted ? "You're muted: nobody hears you." : "You're live.");
  } catch (error) {
    busy = false;
    setStatus(problemText(muted ? "Couldn't mute you" : "Couldn't unmute you", error), {
      error: true,
    });
    renderControls();
  }
});

ui.leave.addEventListener("click", async () => {
  if (busy || !state.onStage) return;
  busy = true;
  renderControls();
  setStatus("Leaving the stage…");
  try {
    state.offStageReason = "left";
    const space = await callApi("DELETE", `${spaceUrl}/stage/${encodeURIComponent(myId())}`, {
      token: state.session.token,
    });
    busy = false;
    await stopAir({ tellServer: true }); // most likely ended by the server already: a 404
    renderSpace(space);
  } catch (error) {
    busy = false;
    state.offStageReason = null;
    setStatus(problemText("Couldn't leave the stage", error), { error: true });
    renderControls();
    if (error instanceof ApiError && error.status === 409) watcher?.refresh();
  }
});

ui.accept.addEventListener("click", async () => {
  if (busy || !state.session) return;
  busy = true;
  ui.accept.disabled = true;
  setActionStatus("Accepting…");
  try {
    const space = await callApi("POST", `${spaceUrl}/invitations/accept`, {
      token: state.session.token,
    });
    setActionStatus("");
    renderSpace(space);
  } catch (error) {
    const none = error instanceof ApiError && error.status === 404;
    setActionStatus(
      none
        ? "There's no invitation for you right now. Ask to speak on the space's page instead."
        : problemText("Couldn't accept the invitation", error),
      { error: true },
    );
  } finally {
    busy = false;
    ui.accept.disabled = false;
  }
});

ui.processing.addEventListener("change", () => {
  setVoiceProcessing(ui.processing.checked);
  if (air) setStatus("This applies the next time you go live.");
});

window.addEventListener("pagehide", () => {
  if (air) air.session.stop(); // a DELETE that outlives the page (keepalive)
});

// ---- start ------------------------------------------------------------------------------------

ui.processing.checked = voiceProcessing();
render();
if (spaceId) {
  watcher = watchSpace(spaceId, renderSpace, renderError, {
    on: { speaking: (data) => setSpeaking(data.speaking) },
  });
} else {
  renderError(new ApiError(404, "not_found", "No space in the address.", null));
}

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
};
