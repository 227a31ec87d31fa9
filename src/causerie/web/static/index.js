// The front page (/): the live and scheduled spaces, live ones first.
// Text from the API goes into the page as text (textContent), never as HTML.

import { listSpaces, retryDelaySeconds } from "./api.js";
import { $, formatWhen, fromTemplate, listenersText, stateLabel } from "./page.js";

const REFRESH_SECONDS = 15;
// Live first, then what is coming, then what is over.
const ORDER = { live: 0, scheduled: 1, ended: 2 };

const list = $("spaces");
const summary = $("summary");
const template = $("space-item");

/** Live first (busiest first), then scheduled (soonest first), then ended. */
export function sortSpaces(spaces) {
  const start = (space) => Date.parse(space.scheduled_start || "") || Infinity;
  return [...spaces].sort(
    (a, b) =>
      (ORDER[a.state] ?? 3) - (ORDER[b.state] ?? 3) ||
      (a.state === "live" ? (b.listeners_now || 0) - (a.listeners_now || 0) : 0) ||
      start(a) - start(b),
  );
}

function renderItem(space) {
  const item = fromTemplate(template);
  const link = item.querySelector("a");
  link.href = `/s/${encodeURIComponent(space.id)}`;
  const badge = item.querySelector(".badge");
  badge.textContent = stateLabel(space.state);
  badge.dataset.state = space.state;
  item.querySelector(".title").textContent = space.title;
  item.querySelector(".host").textContent = space.host?.name ? `with ${space.host.name}` : "";
  const when = space.state === "scheduled" && space.scheduled_start;
  item.querySelector(".when").textContent = when ? formatWhen(space.scheduled_start) : "";
  item.querySelector(".listeners").textContent =
    space.state === "live" ? listenersText(space.listeners_now) : "";
  return item;
}

function render(spaces) {
  const sorted = sortSpaces(spaces);
  list.replaceChildren(...sorted.map(renderItem));
  const live = spaces.filter((space) => space.state === "live").length;
  if (!spaces.length) {
    summary.textContent = "No spaces right now. Come back soon!";
  } else {
    const what = live === 1 ? "1 space live now" : `${live} spaces live now`;
    const later = spaces.length - live;
    summary.textContent = later ? `${what}, ${later} coming up.` : `${what}.`;
  }
  window.causerie.spaces = sorted;
}

let failures = 0;
let timer = null;
async function refresh() {
  clearTimeout(timer);
  let wait = REFRESH_SECONDS;
  try {
    render(await listSpaces());
    failures = 0;
  } catch (error) {
    failures += 1;
    if (!list.children.length) summary.textContent = "Couldn't load the spaces. Trying again…";
    wait = Math.max(REFRESH_SECONDS, retryDelaySeconds(error, failures));
  }
  timer = setTimeout(refresh, wait * 1000);
}

// Search: the transcripts of past spaces (GET /api/search?q=), each result a link to the
// minute it was said.

const search = {
  form: $("search"),
  input: $("search-input"),
  section: $("search-section"),
  status: $("search-status"),
  results: $("search-results"),
};

function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const pad = (n) => String(n).padStart(2, "0");
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

function renderResult(result) {
  const item = document.createElement("li");
  item.className = "card";
  const title = document.createElement("a");
  title.className = "title";
  title.href = result.url;
  title.textContent = result.title;
  item.append(title);
  for (const line of result.lines) {
    const hit = document.createElement("a");
    hit.className = "hit";
    hit.href = `/s/${encodeURIComponent(result.space_id)}?t=${Math.floor(line.start)}`;
    hit.textContent = `${clock(line.start)} — ${line.text}`;
    item.append(hit);
  }
  return item;
}

async function runSearch(query) {
  search.section.hidden = false;
  search.results.replaceChildren();
  search.status.textContent = "Searching…";
  try {
    const response = await fetch(`/api/search?q=${encodeURIComponent(query)}`);
    const body = await response.json();
    if (!response.ok) {
      search.status.textContent = body.message || "The search failed.";
      return;
    }
    search.results.replaceChildren(...body.results.map(renderResult));
    const count = body.results.length;
    search.status.textContent = count
      ? `${count === 1 ? "1 space" : `${count} spaces`} said it.`
      : "Nothing found in the transcripts of past spaces.";
    window.causerie.search = body;
  } catch {
    search.status.textContent = "Couldn't reach the server. Try again.";
  }
}

search.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = search.input.value.trim();
  const url = new URL(location.href);
  url.searchParams.set("q", query);
  history.replaceState(history.state, "", url);
  runSearch(query);
});

window.causerie = { spaces: [], refresh, search: null, runSearch };
refresh();
const asked = new URLSearchParams(location.search).get("q");
if (asked) {
  search.input.value = asked;
  runSearch(asked);
}
