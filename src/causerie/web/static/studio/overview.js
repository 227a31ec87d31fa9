// The space at the top of /studio/{id}: its title, state, start time, listeners, the link to
// share, the signed-in account's role in it, and what the page says when there is no such space.

import { ApiError } from "../api.js";
import {
  copyOnClick,
  formatWhen,
  listenersText,
  setStatus,
  setText,
  stateLabel,
  tokenClaims,
  untilText,
} from "../page.js";
import { isModerator, spaceId, state, studio, ui } from "./context.js";
import { syncLevelPolling } from "./levels.js";
import { renderSpaceActions } from "./lifecycle.js";
import { currentAir, stopAir } from "./mic.js";

/** The links to the listener page, once the studio of a space opens. */
export function showLinks() {
  ui.listenerLink.href = `/s/${encodeURIComponent(spaceId)}`;
  ui.shareUrl.value = new URL(`/s/${encodeURIComponent(spaceId)}`, location.href).href;
}

copyOnClick(ui.copy, ui.shareUrl);

export function renderOverview() {
  const space = state.space;
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
}

/** The start time, with how long until it (it moves on: called again every few seconds); and
 * the end the server announced for a space nobody is on the microphone in. */
export function tickWhen() {
  const space = state.space;
  if (!space) return;
  renderIdleEnd();
  let text = "";
  if (space.state === "scheduled" && space.scheduled_start) {
    const until = untilText(Date.parse(space.scheduled_start) - Date.now());
    text = `Starts ${formatWhen(space.scheduled_start)}${until ? ` (in ${until})` : ""}`;
  } else if (space.state === "scheduled") {
    text = "Not scheduled: go live when you're ready";
  }
  setText(ui.when, text);
}

/**
 * A live space with nobody on the microphone ends by itself after a while (the server's
 * --end-idle-after); the server announces the end a few minutes ahead (`ending_at`), and going
 * on air cancels it. Said here, so that a host who stepped away can keep the space going.
 */
function renderIdleEnd() {
  const space = state.space;
  const endsAt = space?.state === "live" && !state.notFound ? Date.parse(space.ending_at) : NaN;
  if (Number.isNaN(endsAt)) {
    ui.idleNotice.hidden = true;
    setText(ui.idleNotice, "");
    return;
  }
  const until = untilText(endsAt - Date.now());
  const at = new Date(endsAt).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  setText(
    ui.idleNotice,
    `Nobody has been on the microphone for a while, so this space ends by itself at ${at}` +
      `${until ? ` (in ${until})` : ""}. Go on air to keep it going.`,
  );
  ui.idleNotice.hidden = false;
}

function renderRole() {
  const space = state.space;
  let note = "";
  if (!isModerator()) {
    const who = tokenClaims(studio.token)?.name || "This account";
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

/** A read of the space failed: "not found" empties the page; anything else waits for the next. */
export function renderError(error) {
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
    ui.idleNotice.hidden = true;
    ui.share.hidden = true;
    ui.listenerLink.hidden = true;
    for (const card of [ui.mic, ui.requests, ui.stage, ui.questions]) card.hidden = true;
    renderSpaceActions();
    syncLevelPolling();
    if (currentAir()) stopAir({ tellServer: true });
  } else if (!state.space) {
    setStatus(ui.spaceStatus, "Couldn't load this space yet. Trying again…");
  }
}
