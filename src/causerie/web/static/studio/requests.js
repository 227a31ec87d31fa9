// Raised hands: who asks to speak (read again whenever the space's count of them changes), said
// to screen readers as they come, and approved onto the stage or declined.

import { callApi } from "../api.js";
import {
  NEWS,
  announce,
  fillAvatar,
  fromTemplate,
  problemText,
  setStatus,
  setText,
} from "../page.js";
import {
  focusedRow,
  isLive,
  isModerator,
  renderSpace,
  restoreFocus,
  spaceUrl,
  state,
  studio,
  ui,
} from "./context.js";

let requestsLoading = null;
let requestsAgain = false;
let requestsReadFailed = false; // the status line says so (until a read works again)
let requestsSeen = null; // ids seen in the last read (null before the first)
const requestsBusy = new Set();

export async function loadRequests() {
  if (!isModerator() || !isLive()) return;
  if (requestsLoading) {
    requestsAgain = true;
    return;
  }
  const asked = Number(state.space.requests_waiting) || 0;
  requestsLoading = callApi("GET", `${spaceUrl}/speak-requests`, { token: studio.token });
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
    let news = "";
    if (fresh.length === 1) news = `${fresh[0].name} asks to speak.`;
    else if (fresh.length > 1) news = `${fresh.length} people ask to speak.`;
    if (news) announce(ui.requestsAnnounce, news);
  }
  requestsSeen = ids;
}

function agoText(iso) {
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(seconds) || seconds < 60) return "asked just now";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `asked ${minutes} min ago`;
  return `asked ${Math.floor(minutes / 60)} h ago`;
}

export function renderRequests() {
  const show = isModerator() && isLive();
  ui.requests.hidden = !show;
  if (!show) return;
  const requests = state.requests;
  setText(ui.requestsCount, requests.length ? String(requests.length) : "");
  ui.requestsEmpty.hidden = requests.length > 0;
  const focused = focusedRow(ui.requestList);
  ui.requestList.replaceChildren(
    ...requests.map((request) => {
      const item = fromTemplate(ui.requestTemplate);
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
      { token: studio.token },
    );
    state.requests = state.requests.filter((r) => r.user_id !== userId);
    requestsSeen?.delete(userId);
    setStatus(
      ui.requestsStatus,
      approve ? `${name} is on stage now.` : `${name}'s request was declined.`,
      { clearAfter: NEWS },
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

/** The space changed: read the hands again if their count moved (moderators, while live). */
export function followRequests() {
  if (isModerator() && isLive()) {
    const waiting = Number(state.space.requests_waiting) || 0;
    if (waiting !== state.requestsWaiting) loadRequests();
  } else {
    state.requests = [];
    state.requestsWaiting = null;
  }
  renderRequests();
}
