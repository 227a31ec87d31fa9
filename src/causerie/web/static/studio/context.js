// The host studio's shared parts: its elements, what it knows, who is signed in, and the one
// place the space's details are drawn from (renderSpace), card by card.

import { $, olderThan, spaceIdFromLocation } from "../page.js";

export const ui = {
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
  captionsRow: $("captions-row"),
  captionsSwitch: $("captions-switch"),
  captionsStatus: $("captions-status"),
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
  idleNotice: $("idle-notice"),
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

/** The space's id, from /studio/{id} (or ?id= when the page is opened as a plain file); null on
 * /studio. */
export const spaceId = spaceIdFromLocation(/^\/studio\/([^/]+)\/?$/);
export const spaceUrl = `/api/spaces/${encodeURIComponent(spaceId || "")}`;

/** Everything the page knows; also what tests look at through window.causerie.state. */
export const state = {
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

/** Who is signed in (`token`), and the space's live details (`watcher`, see watchSpace). */
export const studio = { token: null, watcher: null };

export const isModerator = () => state.role === "host" || state.role === "cohost";
export const isLive = () => !state.notFound && state.space?.state === "live";

function roleIn(space) {
  if (!space || !state.me) return "listener";
  if (space.host?.id === state.me) return "host";
  const mine = (space.stage || []).find((person) => person.id === state.me);
  return mine ? mine.role : "listener";
}

/** The signed-in account's place on stage, or null. */
export function me() {
  return (state.space?.stage || []).find((person) => person.id === state.me) || null;
}

let cards = [];

/** What redraws the page when the space's details change, in order (set once, at the start). */
export function drawCardsWith(renderers) {
  cards = renderers;
}

/** New details of the space (from the live events, or an action's answer): every card redraws. */
export function renderSpace(space) {
  if (olderThan(space, state.space)) return;
  state.space = space;
  state.notFound = false;
  state.role = roleIn(space);
  for (const render of cards) render();
}

// ---- keeping the keyboard in place across redraws ---------------------------------------------

/** The row (by id) and the button (by class) that has the focus, to give it back after a redraw. */
export function focusedRow(list) {
  const active = document.activeElement;
  if (!active || !list.contains(active)) return null;
  const row = active.closest("li");
  const kind = Array.from(active.classList).find((c) => c !== "button" && !c.startsWith("button-"));
  return { id: row?.dataset.id, kind };
}

export function restoreFocus(list, focused) {
  if (!focused || list.contains(document.activeElement)) return;
  const row = Array.from(list.children).find((li) => li.dataset.id === focused.id);
  const target =
    row?.querySelector(`button.${CSS.escape(focused.kind || "")}:not([hidden]):not(:disabled)`) ||
    row?.querySelector("button:not([hidden]):not(:disabled)");
  target?.focus();
}
