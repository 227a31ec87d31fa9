// The operator's console (/admin): every space with its live numbers, every node, the
// recordings' disk, the reports queue and the audit log; host invites and accounts.
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
  decidedBox: $("decided-box"),
  decided: $("decided"),
  audit: $("audit"),
  auditEmpty: $("audit-empty"),
  auditStatus: $("audit-status"),
  auditCsv: $("audit-csv"),
  auditJson: $("audit-json"),
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
  decided: [], // what this console decided, newest first: {group, action, reason, result}
  audit: [], // the latest audit entries, newest first
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
  refreshAudit();
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
  renderAudit(); // the spaces' titles
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
// The overview's `reports` says how many reports are open. The queue itself is read from
// GET /api/admin/reports (open reports grouped per target, each group with the decisions that
// fit it) whenever that count moves, and every LISTS_REFRESH_SECONDS; a decision is POSTed to
// /api/admin/reports/{ref}/actions with the reason it needs. A group's box is made once and
// then updated in place, so that a reason being typed survives the queue's refreshes.

/** The decisions' buttons, mildest first. */
const DECISION_LABELS = {
  dismiss: "Dismiss",
  hide_question: "Hide the question",
  remove_speaker: "Remove the speaker",
  end_space: "End the space",
  take_down_replay: "Take the replay down",
  ban_account: "Ban the account",
};
/** Decisions that cannot be undone from here: their button asks to be pressed again. */
const ASK_TWICE = new Set(["end_space", "take_down_replay", "ban_account"]);
const DECIDED_SHOWN = 20;

/** A group's ref -> the parts of its box: {box, title, reasons, notes, reason, buttons…}. */
const groupBoxes = new Map();

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
      ? `${number(groups.length)} reported ${groups.length === 1 ? "thing" : "things"}, ` +
          "most reported first. Each decision needs a reason, kept in the audit log."
      : "No open reports.",
  );
  const boxes = groups.map((group) => {
    if (!groupBoxes.has(group.ref)) groupBoxes.set(group.ref, reportGroup(group));
    const parts = groupBoxes.get(group.ref);
    updateGroup(parts, group);
    return parts.box;
  });
  const shown = new Set(groups.map((g) => g.ref));
  for (const ref of groupBoxes.keys()) if (!shown.has(ref)) groupBoxes.delete(ref);
  // Boxes already in place are not moved (moving one would take the focus from its reason).
  boxes.forEach((box, i) => {
    const here = ui.reports.children[i] ?? null;
    if (here !== box) ui.reports.insertBefore(box, here);
  });
  while (ui.reports.children.length > boxes.length) ui.reports.lastElementChild.remove();
}

/** What a group is about, in words: “The question “…” in “Town hall””. */
function describe(group) {
  const { kind, id } = group.target;
  const space = group.space_title
    ? `“${group.space_title}”`
    : `the space ${group.target.space_id}`;
  if (kind === "space") return `The space ${space}`;
  const what = group.label ? `“${group.label}”` : `(${id}, gone)`;
  return `${kind === "question" ? "The question" : "The speaker"} ${what} in ${space}`;
}

function reportGroup(group) {
  const box = element("article", "admin-report");
  box.dataset.ref = group.ref;
  box.dataset.kind = group.target.kind;
  const title = element("p", "admin-report-title");
  const reasons = element("p", "hint");
  const notes = element("ul", "admin-report-notes");
  const form = element("form", "admin-report-form");
  form.noValidate = true;
  const inputId = `why-${group.ref}`;
  const label = element("label", "", "Why (kept in the audit log)");
  label.htmlFor = inputId;
  const reason = element("input");
  reason.id = inputId;
  reason.type = "text";
  reason.maxLength = 500;
  reason.autocomplete = "off";
  const status = element("p", "small-status");
  status.id = `status-${group.ref}`;
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  reason.setAttribute("aria-describedby", status.id);
  reason.addEventListener("input", () => {
    reason.removeAttribute("aria-invalid");
    if (status.classList.contains("is-error")) setStatus(status, "");
  });
  const buttons = element("div", "actions");
  const parts = { box, title, reasons, notes, reason, buttons, status, asking: null };
  // The mildest first, in DECISION_LABELS' order (the API lists them alphabetically).
  const order = Object.keys(DECISION_LABELS);
  const actions = [...group.actions].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  for (const action of actions) {
    const kind = action === "dismiss" ? "button" : "button button-danger-quiet";
    const button = element("button", kind, DECISION_LABELS[action] || action);
    button.type = "button";
    button.dataset.action = action;
    button.addEventListener("click", () => decide(group, action, parts));
    buttons.append(button);
  }
  form.append(label, reason, buttons);
  form.addEventListener("submit", (event) => event.preventDefault());
  box.append(title, reasons, notes, form, status);
  return parts;
}

function updateGroup(parts, group) {
  const count = `${group.count} ${group.count === 1 ? "report" : "reports"}`;
  setText(parts.title, `${describe(group)}: ${count}`);
  const reasons = Object.entries(group.reasons).map(([reason, n]) => `${reason} ×${n}`);
  setText(parts.reasons, `${reasons.join(", ")}. Waiting since ${formatWhen(group.first_at)}.`);
  const notes = group.reports.filter((r) => r.note);
  parts.notes.replaceChildren(...notes.map((r) => element("li", "", `${r.ref}: ${r.note}`)));
  parts.notes.hidden = notes.length === 0;
}

async function decide(group, action, parts) {
  const { reason: input, status } = parts;
  const reason = input.value.trim();
  const label = DECISION_LABELS[action] || action;
  if (!reason) {
    input.setAttribute("aria-invalid", "true");
    setStatus(status, `Say why before “${label}”: every decision is kept in the audit log.`, {
      error: true,
    });
    input.focus();
    return;
  }
  if (ASK_TWICE.has(action) && parts.asking !== action) {
    askAgain(parts, action);
    return;
  }
  askAgain(parts, null);
  for (const button of parts.buttons.children) button.disabled = true;
  setStatus(status, `${label}…`);
  try {
    const result = await callApi(
      "POST",
      `/api/admin/reports/${encodeURIComponent(group.ref)}/actions`,
      { token, json: { action, reason } },
    );
    state.decided.unshift({ group, action, reason, result });
    state.decided.length = Math.min(state.decided.length, DECIDED_SHOWN);
    renderDecided();
    setStatus(ui.consoleStatus, `Done: ${label} (${describe(group)}).`, { clearAfter: 8 });
    refreshAudit();
  } catch (error) {
    if (refused(error)) return;
    const text = problemText(`Couldn't ${label.toLowerCase()}`, error);
    setStatus(status, text, { error: true });
    for (const button of parts.buttons.children) button.disabled = false;
    await refreshReports();
    // Decided elsewhere meanwhile (409): the box is gone, so say it at the top.
    if (!groupBoxes.has(group.ref)) setStatus(ui.consoleStatus, text, { error: true });
    return;
  }
  await refreshReports();
}

/** Turn `action`'s button into “Really …?” (null: every button back to its label). */
function askAgain(parts, action) {
  parts.asking = action;
  for (const button of parts.buttons.children) {
    const label = DECISION_LABELS[button.dataset.action] || button.dataset.action;
    const asking = button.dataset.action === action;
    setText(button, asking ? `Really ${label.toLowerCase()}?` : label);
    button.classList.toggle("button-danger", asking);
  }
}

function renderDecided() {
  ui.decidedBox.hidden = state.decided.length === 0;
  const items = state.decided.map(({ group, action, reason, result }) => {
    const closed = result.reports_closed.length;
    const item = element(
      "li",
      "",
      `${DECISION_LABELS[action] || action}: ${describe(group)} (${closed} ` +
        `${closed === 1 ? "report" : "reports"} closed). Why: ${reason}`,
    );
    item.dataset.ref = group.ref;
    item.dataset.action = action;
    return item;
  });
  ui.decided.replaceChildren(...items);
}

// ---- the audit log ----------------------------------------------------------------------------
//
// The latest entries come from GET /api/admin/audit/latest. The export reads the whole log,
// page after page (GET /api/admin/audit: JSON's `next`, CSV's Link header), with the token in
// the Authorization header; so it is fetched and saved as a file from memory, not linked to.

const AUDIT_SHOWN = 20;
const EXPORT_PAGE = 1000;
const EXPORT_PAGES_MAX = 1000;
const ACTION_LABELS = {
  mute: "Muted",
  unmute: "Unmuted",
  move_to_audience: "Moved to the audience",
  remove_member: "Removed",
  hide_question: "Hid a question",
  show_question: "Showed a question again",
  end_space: "Ended the space",
  dismiss_reports: "Dismissed reports",
  remove_speaker: "Removed a speaker",
  take_down_replay: "Took the replay down",
  ban_account: "Banned an account",
};

async function refreshAudit() {
  try {
    const latest = await callApi("GET", `/api/admin/audit/latest?limit=${AUDIT_SHOWN}`, {
      token,
    });
    state.audit = latest.entries;
    renderAudit();
  } catch (error) {
    refused(error);
  }
}

function renderAudit() {
  const titles = new Map((state.overview?.spaces || []).map((s) => [s.id, s.title]));
  const rows = state.audit.map((entry) => {
    const row = element("tr");
    row.dataset.id = entry.id;
    row.dataset.action = entry.action;
    cell(row, formatWhen(entry.at));
    cell(row, `${entry.actor} (${entry.actor_role})`, "mono");
    cell(row, ACTION_LABELS[entry.action] || entry.action);
    cell(row, entry.target, "mono");
    cell(row, titles.get(entry.space_id) || entry.space_id);
    cell(row, entry.reason || "–", "reason-cell");
    cell(row, entry.report_ref || "–", "mono");
    return row;
  });
  ui.audit.replaceChildren(...rows);
  ui.auditEmpty.hidden = rows.length > 0;
}

/** The URL of a Link header's rel="next" (RFC 8288), or null. */
function nextLink(header) {
  const found = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header || "");
  return found ? found[1] : null;
}

async function exportAudit(format, button) {
  button.disabled = true;
  setStatus(ui.auditStatus, "Reading the audit log…");
  try {
    const parts = [];
    const entries = [];
    const first = `/api/admin/audit?format=${format}&limit=${EXPORT_PAGE}`;
    let url = first;
    for (let page = 0; url; page++) {
      if (page === EXPORT_PAGES_MAX) throw new Error("the log is too long to export from here");
      const response = await fetch(url, {
        headers: { Authorization: `Bearer ${token}` },
        cache: "no-store",
      });
      if (!response.ok) throw await errorFrom(response);
      if (format === "csv") {
        parts.push(await response.text());
        url = nextLink(response.headers.get("Link"));
      } else {
        const body = await response.json();
        entries.push(...body.entries);
        url = body.next ? `${first}&after=${encodeURIComponent(body.next)}` : null;
      }
    }
    const file =
      format === "csv"
        ? new Blob(parts, { type: "text/csv;charset=utf-8" })
        : new Blob([JSON.stringify({ entries }, null, 2)], { type: "application/json" });
    const day = new Date().toISOString().slice(0, 10);
    save(file, `causerie-audit-${day}.${format}`);
    setStatus(ui.auditStatus, "Exported.", { clearAfter: 8 });
  } catch (error) {
    if (!refused(error)) {
      setStatus(ui.auditStatus, problemText("Couldn't export the audit log", error), {
        error: true,
      });
    }
  } finally {
    button.disabled = false;
  }
}

/** Hand `blob` to the browser as a download named `name`. */
function save(blob, name) {
  const link = element("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

ui.auditCsv.addEventListener("click", () => exportAudit("csv", ui.auditCsv));
ui.auditJson.addEventListener("click", () => exportAudit("json", ui.auditJson));

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
    refreshAudit();
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
