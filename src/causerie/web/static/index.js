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

window.causerie = { spaces: [], refresh };
refresh();
