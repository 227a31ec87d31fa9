// The operator's console (/admin): every space with its live numbers, every node, the
// recordings' disk, the reports queue when the node has one; host invites and accounts.
//
// Signing in: an operator's token, pasted once or given in the address as #token=…, kept in
// localStorage (as the studio keeps an account's) and taken out of the address bar.
// Live: the overview comes from /api/admin/events, Server-Sent Events read with fetch() so that
// the token travels in the Authorization header (EventSource cannot send one, and a token in
// the address would end up in logs). The stream is followed again after a drop, with backoff.
// Actions on spaces use the routes every moderator uses (POST /api/spaces/{id}/end, /removals):
// the server lets an operator act in any space.
//
// Text from the API only ever goes into the page as text (textContent), never as HTML.

import { ApiError, backoffSeconds, callApi, errorFrom, sleep } from "./api.js";
import {
  $,
  copyOnClick,
  element,
  formatWhen,
  problemText,
  setStatus,
  setText,
  stateLabel,
  storageGet,
  storageSet,
  tokenClaims,
} from "./page.js";

const OPERATOR_KEY = "causerie.operator";
const LISTS_REFRESH_SECONDS = 10;

const ui = {
  signin: $("signin"),
  signinForm: $("signin-form"),
  signinStatus: $("signin-status"),
  tokenInput: $("token-input"),
  console: $("console"),
  consoleStatus: $("console-status"),
  liveStatus: $("live-status"),
  accountName: $("account-name"),
  signOut: $("sign-out"),
  spaces: $("spaces"),
  spacesSummary: $("spaces-summary"),
  reportsCard: $("reports-card"),
  reportsSummary: $("reports-summary"),
  reports: $("reports"),
  nodes: $("nodes"),
  disk: $("disk"),
  diskMeter: $("disk-meter"),
  inviteForm: $("invite-form"),
  inviteRole: $("invite-role"),
  inviteHours: $("invite-hours"),
  inviteNote: $("invite-note"),
  inviteMade: $("invite-made"),
  inviteLink: $("invite-link"),
  inviteCopy: $("invite-copy"),
  inviteStatus: $("invite-status"),
  invites: $("invites"),
  accounts: $("accounts"),
  accountsStatus: $("accounts-status"),
};

/** What the console shows; also what tests read through window.causerie.state. */
const state = {
  overview: null,
  invites: [],
  accounts: [],
  connected: false,
  renders: 0,
  confirmEnd: null, // the id of the space whose End button asks to be pressed again
  reports: null, // the open reports, grouped per target; null: this node has no queue
  reportsOpen: null,
};
window.causerie = { state };

let token = null;
let following = null; // the AbortController of the live stream

// ---- signing in -----------------------------------------------------------------------------

function usable(candidate) {
  const claims = tokenClaims(candidate);
  return Boolean(claims) && !(claims.exp && claims.exp * 1000 < Date.now());
}

function takeTokenFromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has("token")) return;
  const given = (params.get("token") || "").trim();
  params.delete("token");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + (rest ? `#${rest}` : ""));
  if (given) storageSet("local", OPERATOR_KEY, given);
}

function showSignIn(message = "") {
  following?.abort();
  token = null;
  ui.signin.hidden = false;
  ui.console.hidden = true;
  ui.signOut.hidden = true;
  setText(ui.accountName, "");
  setText(ui.liveStatus, "");
  if (message) setStatus(ui.signinStatus, message, { error: true });
}

function signedIn(given) {
  token = given;
  ui.signin.hidden = true;
  ui.console.hidden = false;
  ui.signOut.hidden = false;
  setText(ui.accountName, tokenClaims(token)?.name || "Operator");
  follow();
  refreshLists();
}

/** A refusal of the operator's token: back to signing in, saying why. */
function refused(error) {
  if (!(error instanceof ApiError) || ![401, 403].includes(error.status)) return false;
  storageSet("local", OPERATOR_KEY, null);
  showSignIn(
    error.status === 403
      ? "That token is not an operator's. Use the one `causerie token --operator` printed."
      : `${problemText("Signed out", error)}`,
  );
  return true;
}

ui.signinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const given = ui.tokenInput.value.trim();
  if (!given || !tokenClaims(given)) {
    setStatus(ui.signinStatus, "That doesn't look like a causerie token.", { error: true });
    return;
  }
  if (!usable(given)) {
    setStatus(ui.signinStatus, "That token has expired.", { error: true });
    return;
  }
  ui.tokenInput.value = "";
  setStatus(ui.signinStatus, "");
  storageSet("local", OPERATOR_KEY, given);
  signedIn(given);
});

ui.signOut.addEventListener("click", () => {
  storageSet("local", OPERATOR_KEY, null);
  showSignIn();
});

// ---- the live overview ----------------------------------------------------------------------

/** The events of an SSE body, as {event, data} (https://html.spec.whatwg.org/#event-stream). */
async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

async function follow() {
  following?.abort();
  const controller = new AbortController();
  following = controller;
  for (let attempt = 0; !controller.signal.aborted; attempt++) {
    try {
      const response = await fetch("/api/admin/events", {
        headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
        cache: "no-store",
        signal: controller.signal,
      });
      if (!response.ok) throw await errorFrom(response);
      for await (const { event, data } of serverSentEvents(response.body)) {
        if (event === "overview") {
          attempt = 0;
          setConnected(true);
          render(JSON.parse(data));
        } else if (event === "end") {
          throw new ApiError(401, "unauthorized", JSON.parse(data).reason, null);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      if (refused(error)) return;
    }
    setConnected(false);
    await sleep(1 + backoffSeconds(attempt, { cap: 15 }), controller.signal).catch(() => {});
  }
}

function setConnected(connected) {
  state.connected = connected;
  setText(ui.liveStatus, connected ? "● Live" : "Reconnecting…");
  ui.liveStatus.classList.toggle("is-live", connected);
}

// ---- rendering ------------------------------------------------------------------------------

const number = (n) => (n == null ? "–" : Number(n).toLocaleString());

function bytesText(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function cell(row, text, className = "") {
  const td = element("td", className, text);
  row.append(td);
  return td;
}

function render(overview) {
  state.overview = overview;
  renderSpaces(overview.spaces);
  renderReports(overview.reports);
  renderNodes(overview.nodes);
  renderDisk(overview.recordings, overview.nodes);
  state.renders++;
}

function renderSpaces(spaces) {
  const counts = { live: 0, scheduled: 0, ended: 0 };
  for (const space of spaces) counts[space.state]++;
  setText(
    ui.spacesSummary,
    `${counts.live} live, ${counts.scheduled} scheduled, ${counts.ended} recently ended.`,
  );
  const rows = spaces.map((space) => {
    const row = element("tr");
    row.dataset.id = space.id;
    row.dataset.state = space.state;
    const title = cell(row, "");
    const link = element("a", "", space.title);
    link.href = `/s/${encodeURIComponent(space.id)}`;
    title.append(link);
    const badge = element("span", "badge", stateLabel(space.state));
    badge.dataset.state = space.state;
    cell(row, "").append(badge);
    cell(row, space.host.name);
    cell(row, number(space.listeners_now), "num listening");
    cell(row, number(space.peak), "num");
    cell(row, number(space.unique_listeners), "num");
    renderStage(cell(row, "", "stage-cell"), space);
    cell(row, space.owner || (space.state === "live" ? "–" : ""), "node-cell");
    renderSpaceActions(cell(row, "", "actions-cell"), space);
    return row;
  });
  ui.spaces.replaceChildren(...rows);
}

function renderStage(td, space) {
  const list = element("ul", "admin-stage");
  for (const person of space.stage) {
    const item = element("li", "", person.name);
    item.dataset.id = person.id;
    if (space.state === "live" && person.id !== space.host.id) {
      const remove = element("button", "admin-link-button", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${person.name} from ${space.title}`);
      remove.addEventListener("click", () => removePerson(space, person, remove));
      item.append(" ", remove);
    }
    list.append(item);
  }
  if (space.state === "live") {
    const talking = element("span", "hint", ` ${space.speaking} talking`);
    td.append(list, talking);
  } else {
    td.append(list);
  }
}

function renderSpaceActions(td, space) {
  if (space.state === "ended") {
    if (space.replay_url) {
      const replay = element("a", "", "Replay");
      replay.href = `/s/${encodeURIComponent(space.id)}`;
      td.append(replay);
    }
    return;
  }
  const asking = state.confirmEnd === space.id;
  const end = element(
    "button",
    asking ? "button button-danger" : "button button-danger-quiet",
    asking ? "Really end?" : space.state === "live" ? "End" : "Cancel",
  );
  end.type = "button";
  end.setAttribute("aria-label", `${asking ? "Really end" : "End"} ${space.title}`);
  end.addEventListener("click", () => {
    if (state.confirmEnd !== space.id) {
      state.confirmEnd = space.id;
      renderSpaces(state.overview.spaces);
      return;
    }
    state.confirmEnd = null;
    endSpace(space, end);
  });
  td.append(end);
}

async function endSpace(space, button) {
  button.disabled = true;
  try {
    await callApi("POST", `/api/spaces/${encodeURIComponent(space.id)}/end`, { token });
    setStatus(ui.consoleStatus, `“${space.title}” was ended.`, { clearAfter: 8 });
  } catch (error) {
    if (!refused(error)) setStatus(ui.consoleStatus, problemText("Couldn't end it", error), {
      error: true,
    });
    button.disabled = false;
  }
}

async function removePerson(space, person, button) {
  button.disabled = true;
  try {
    await callApi("POST", `/api/spaces/${encodeURIComponent(space.id)}/removals`, {
      token,
      json: { user_id: person.id },
    });
    setStatus(ui.consoleStatus, `${person.name} was removed from “${space.title}”.`, {
      clearAfter: 8,
    });
  } catch (error) {
    if (!refused(error)) {
      setStatus(ui.consoleStatus, problemText(`Couldn't remove ${person.name}`, error), {
        error: true,
      });
    }
    button.disabled = false;
  }
}

// ---- the reports queue ------------------------------------------------------------------------
//
// The overview's `reports` says how many reports are open (null: the node has no reports
// queue, and the section stays hidden). The queue itself is read from GET /api/admin/reports
// (open reports grouped per target, each group with the decisions that fit it) whenever that
// count moves, and every LISTS_REFRESH_SECONDS; a decision is POSTed to
// /api/admin/reports/{ref}/actions with the reason it needs.

const DECISION_LABELS = {
  dismiss: "Dismiss",
  hide_question: "Hide the question",
  remove_speaker: "Remove the speaker",
  end_space: "End the space",
  take_down_replay: "Take the replay down",
  ban_account: "Ban the account",
};

function renderReports(summary) {
  if (!summary) {
    state.reports = null;
    state.reportsOpen = null;
    renderQueue();
  } else if (summary.open !== state.reportsOpen) {
    state.reportsOpen = summary.open;
    refreshReports();
  }
}

async function refreshReports() {
  try {
    const queue = await callApi("GET", "/api/admin/reports", { token });
    state.reports = queue.groups;
  } catch (error) {
    if (refused(error)) return;
    if (error instanceof ApiError && error.status === 404) state.reports = null;
    else return; // a passing failure: the next refresh shows it
  }
  renderQueue();
}

function renderQueue() {
  const groups = state.reports;
  ui.reportsCard.hidden = groups == null;
  if (groups == null) return;
  setText(
    ui.reportsSummary,
    groups.length
      ? `${number(groups.length)} reported ${groups.length === 1 ? "target" : "targets"}.`
      : "No open reports.",
  );
  ui.reports.replaceChildren(...groups.map(reportGroup));
}

function reportGroup(group) {
  const box = element("article", "admin-report");
  box.dataset.ref = group.ref;
  const space = state.overview?.spaces.find((s) => s.id === group.target.space_id);
  const what =
    group.target.kind === "space" ? "The space" : `A ${group.target.kind} (${group.target.id})`;
  box.append(
    element(
      "p",
      "admin-report-title",
      `${what} in “${space ? space.title : group.target.space_id}”: ` +
        `${group.count} ${group.count === 1 ? "report" : "reports"}`,
    ),
  );
  const reasons = Object.entries(group.reasons).map(([reason, n]) => `${reason} ×${n}`);
  box.append(element("p", "hint", reasons.join(", ")));
  const notes = element("ul", "admin-report-notes");
  for (const report of group.reports.filter((r) => r.note)) {
    notes.append(element("li", "", `${report.ref}: ${report.note}`));
  }
  if (notes.childElementCount) box.append(notes);
  const form = element("form", "admin-report-form");
  const reason = element("input");
  reason.type = "text";
  reason.maxLength = 500;
  reason.placeholder = "Why (kept in the audit log)";
  reason.setAttribute("aria-label", `Why, for the reports on ${what.toLowerCase()}`);
  const buttons = element("div", "actions");
  for (const action of group.actions) {
    const kind = action === "dismiss" ? "button" : "button button-danger-quiet";
    const button = element("button", kind);
    button.type = "button";
    button.textContent = DECISION_LABELS[action] || action;
    button.dataset.action = action;
    button.addEventListener("click", () => decide(group, action, reason, button));
    buttons.append(button);
  }
  form.append(reason, buttons);
  form.addEventListener("submit", (event) => event.preventDefault());
  box.append(form);
  return box;
}

async function decide(group, action, reasonInput, button) {
  const reason = reasonInput.value.trim();
  if (!reason) {
    setStatus(ui.consoleStatus, "Say why first: every decision is kept in the audit log.", {
      error: true,
    });
    reasonInput.focus();
    return;
  }
  button.disabled = true;
  try {
    await callApi("POST", `/api/admin/reports/${encodeURIComponent(group.ref)}/actions`, {
      token,
      json: { action, reason },
    });
    setStatus(ui.consoleStatus, `Done: ${DECISION_LABELS[action] || action}.`, {
      clearAfter: 8,
    });
  } catch (error) {
    if (!refused(error)) {
      setStatus(ui.consoleStatus, problemText("Couldn't do it", error), { error: true });
    }
    button.disabled = false;
  }
  await refreshReports();
}

function renderNodes(nodes) {
  const rows = nodes.map((node) => {
    const row = element("tr");
    row.dataset.url = node.url;
    row.dataset.status = node.status;
    cell(row, node.this_node ? `${node.url} (this one)` : node.url);
    const health = element(
      "span",
      `badge ${node.status === "up" ? "badge-up" : "badge-silent"}`,
      node.status === "up" ? "Up" : `Silent since ${formatWhen(node.seen_at)}`,
    );
    cell(row, "").append(health);
    cell(row, node.version);
    cell(row, node.cpu == null ? "–" : `${Math.round(node.cpu * 100)} %`, "num");
    cell(row, `${Math.round(node.event_loop_lag_seconds * 1000)} ms`, "num");
    cell(row, number(node.requests_in_flight), "num");
    cell(row, number(node.live_spaces.length), "num spaces");
    cell(row, number(node.listeners_now), "num");
    const unreachable = node.redis?.reachable === false;
    cell(row, redisText(node.redis), unreachable ? "is-error redis-cell" : "redis-cell");
    cell(row, bytesText(node.recordings.bytes), "num");
    return row;
  });
  ui.nodes.replaceChildren(...rows);
}

function redisText(redis) {
  if (!redis) return "Embedded";
  if (redis.reachable == null) return "Checking…";
  if (!redis.reachable) return "Unreachable";
  return `Reachable (${Math.round((redis.ping_seconds || 0) * 1000)} ms)`;
}

function renderDisk(totals, nodes) {
  const keepDays = nodes.map((n) => n.recordings.keep_days).filter((d) => d > 0);
  const kept = keepDays.length ? ` Kept ${Math.min(...keepDays)} days.` : " Kept forever.";
  const budget = totals.max_bytes
    ? ` of a ${bytesText(totals.max_bytes)} budget`
    : " (no disk budget)";
  const over = nodes.some((n) => n.recordings.over_budget) ? " Over budget!" : "";
  setText(
    ui.disk,
    `${number(totals.count)} recordings take ${bytesText(totals.bytes)}${budget}.${kept}${over}`,
  );
  const share = totals.max_bytes ? Math.min(1, totals.bytes / totals.max_bytes) : 0;
  ui.diskMeter.style.width = `${(share * 100).toFixed(1)}%`;
}

// ---- invites and accounts -------------------------------------------------------------------

async function refreshLists() {
  try {
    const [invites, accounts] = await Promise.all([
      callApi("GET", "/api/admin/invites", { token }),
      callApi("GET", "/api/admin/accounts", { token }),
    ]);
    state.invites = invites.invites;
    state.accounts = accounts.accounts;
    renderInvites();
    renderAccounts();
  } catch (error) {
    refused(error);
  }
}

setInterval(() => {
  if (token && document.visibilityState === "visible") {
    refreshLists();
    if (state.reports != null) refreshReports();
  }
}, LISTS_REFRESH_SECONDS * 1000);

const INVITE_STATES = { open: "Open", used: "Used", expired: "Expired", revoked: "Revoked" };

function renderInvites() {
  const rows = state.invites.map((invite) => {
    const row = element("tr");
    row.dataset.id = invite.id;
    row.dataset.state = invite.state;
    cell(row, invite.note || "–");
    cell(row, invite.role === "operator" ? "Operator" : "Host");
    cell(row, INVITE_STATES[invite.state] || invite.state, "state-cell");
    cell(row, formatWhen(invite.expires_at));
    const actions = cell(row, "");
    if (invite.state === "open") {
      const revoke = element("button", "admin-link-button", "Revoke");
      revoke.type = "button";
      revoke.setAttribute("aria-label", `Revoke the invite for ${invite.note || "someone"}`);
      revoke.addEventListener("click", () => revokeInvite(invite, revoke));
      actions.append(revoke);
    }
    return row;
  });
  ui.invites.replaceChildren(...rows);
}

async function revokeInvite(invite, button) {
  button.disabled = true;
  try {
    await callApi("DELETE", `/api/admin/invites/${encodeURIComponent(invite.id)}`, { token });
    setStatus(ui.inviteStatus, "The invite link no longer works.", { clearAfter: 8 });
  } catch (error) {
    if (!refused(error)) {
      setStatus(ui.inviteStatus, problemText("Couldn't revoke it", error), { error: true });
    }
  }
  await refreshLists();
}

function renderAccounts() {
  const me = tokenClaims(token)?.sub;
  const rows = state.accounts.map((account) => {
    const row = element("tr");
    row.dataset.id = account.id;
    cell(row, account.name);
    cell(row, account.role === "operator" ? "Operator" : "Host");
    cell(row, account.id, "mono");
    cell(row, formatWhen(account.created_at));
    const actions = cell(row, "", "state-cell");
    if (account.revoked_at) {
      actions.textContent = `Revoked ${formatWhen(account.revoked_at)}`;
    } else if (account.id !== me) {
      const revoke = element("button", "admin-link-button", "Revoke");
      revoke.type = "button";
      revoke.setAttribute("aria-label", `Revoke ${account.name}'s account`);
      revoke.addEventListener("click", () => revokeAccount(account, revoke));
      actions.append(revoke);
    }
    return row;
  });
  ui.accounts.replaceChildren(...rows);
}

async function revokeAccount(account, button) {
  button.disabled = true;
  try {
    await callApi("POST", `/api/admin/accounts/${encodeURIComponent(account.id)}/revoke`, {
      token,
    });
    setStatus(ui.accountsStatus, `${account.name}'s account was revoked.`, { clearAfter: 8 });
  } catch (error) {
    if (!refused(error)) {
      setStatus(ui.accountsStatus, problemText("Couldn't revoke it", error), { error: true });
    }
  }
  await refreshLists();
}

ui.inviteForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const hours = Number(ui.inviteHours.value);
  if (!(hours > 0 && hours <= 720)) {
    setStatus(ui.inviteStatus, "A link is valid for 1 to 720 hours.", { error: true });
    return;
  }
  try {
    const made = await callApi("POST", "/api/admin/invites", {
      token,
      json: { role: ui.inviteRole.value, hours, note: ui.inviteNote.value.trim() },
    });
    ui.inviteLink.value = new URL(made.url, location.origin).href;
    ui.inviteMade.hidden = false;
    ui.inviteNote.value = "";
    setStatus(ui.inviteStatus, "Give this link to them: it works once, and is shown only now.");
  } catch (error) {
    if (!refused(error)) {
      setStatus(ui.inviteStatus, problemText("Couldn't make the invite", error), { error: true });
    }
  }
  await refreshLists();
});

copyOnClick(ui.inviteCopy, ui.inviteLink);

// ---- start ----------------------------------------------------------------------------------

takeTokenFromAddress();
const kept = storageGet("local", OPERATOR_KEY);
if (kept && usable(kept)) signedIn(kept);
else showSignIn(kept ? "Your token has expired. Paste a new one." : "");
