// The audience report of one space (/s/{id}/report): its numbers with their definitions, a plot
// of listeners minute by minute drawn as inline SVG (no chart library), and, where the server
// has them, the top questions and the reaction totals.
//
// Text that comes from the API only ever goes into the page as text (textContent), never as
// HTML; the plot is built element by element with createElementNS.

import { ApiError, callApi, withRetry } from "./api.js";
import { $, formatWhen, fromTemplate, setText, spaceIdFromLocation, stateLabel } from "./page.js";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_SECONDS = 10; // while live; the numbers move with 15-s heartbeats
const TOP_QUESTIONS = 5;

const ui = {
  report: $("report"),
  back: $("back"),
  badge: $("badge"),
  when: $("when"),
  title: $("title"),
  host: $("host"),
  notice: $("notice"),
  numbersCard: $("numbers-card"),
  numbers: $("numbers"),
  updated: $("updated"),
  numberTemplate: $("number"),
  chartCard: $("chart-card"),
  chartBox: $("chart-box"),
  chartFigure: $("chart-figure"),
  chartEmpty: $("chart-empty"),
  csv: $("csv"),
  questionsCard: $("questions-card"),
  questions: $("questions"),
  reactionsCard: $("reactions-card"),
  reactions: $("reactions"),
};

const spaceId = spaceIdFromLocation(/^\/s\/([^/]+)\/report\/?$/);
const base = `/api/spaces/${encodeURIComponent(spaceId || "")}`;

/** What the page shows; also what tests read through window.causerie.state. */
const state = {
  spaceId,
  space: null,
  stats: null,
  questions: null, // null: the server has no questions for us (or not yet)
  reactions: null,
  renders: 0,
  notFound: false,
};
window.causerie = { state };

// Used when the server's answer has no definition for a number (an older server).
const FALLBACK = {
  listening_now: ["Listening now", "Distinct listeners seen in the last 15–30 seconds."],
  peak: ["Peak", "The most listeners at once, sampled every 15 seconds while live."],
  average_minute_audience: ["Average minute audience", "Listeners in an average minute."],
  unique_listeners: ["Unique listeners", "Distinct listeners who joined."],
  minutes: ["Minutes", "Minutes of the program."],
  joins: ["Joins admitted", "Listener tokens issued."],
  join_attempts: ["Joins attempted", "Requests to join, admitted or not."],
  node_refused: ["Refused by overload", "Requests this node turned away with 503."],
  replay_plays: ["Replay plays", "Distinct devices that opened the replay, once a day."],
};

// ---- reading -------------------------------------------------------------------------------

function getJson(url, { signal } = {}) {
  return callApi("GET", url, { signal });
}

/** An optional part of the report: its JSON if the endpoint answers 200, else null. */
async function optionalJson(url) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (response.status !== 200) return null;
    return await response.json();
  } catch {
    return null;
  }
}

// ---- rendering -----------------------------------------------------------------------------

function showNotice(text) {
  setText(ui.notice, text);
  ui.notice.hidden = !text;
}

const integer = (n) => (Number(n) || 0).toLocaleString();
const decimal = (n) =>
  (Number(n) || 0).toLocaleString(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

function clock(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function definition(stats, key) {
  const known = stats.definitions?.[key];
  const [name, text] = FALLBACK[key] || [key, ""];
  return {
    name: String(known?.name ?? name),
    text: String(known?.definition ?? text),
  };
}

function numberItem(stats, key, value, extra = "") {
  const item = fromTemplate(ui.numberTemplate);
  const { name, text } = definition(stats, key);
  item.dataset.key = key;
  item.querySelector("dt").textContent = name;
  item.querySelector(".value").textContent = value;
  item.querySelector(".note").textContent = extra ? `${extra} ${text}` : text;
  return item;
}

function renderHeader() {
  const { space, stats } = state;
  const title = space?.title ?? "";
  document.title = title ? `${title} · Audience report · causerie` : "Audience report · causerie";
  setText(ui.title, title || "Audience report");
  setText(ui.host, space?.host?.name ? `Hosted by ${space.host.name}` : "");
  const spaceState = stats?.state ?? space?.state;
  ui.badge.hidden = !spaceState;
  setText(ui.badge, stateLabel(spaceState));
  if (spaceState) ui.badge.dataset.state = spaceState;
  const started = stats?.started_at ?? space?.started_at;
  if (spaceState === "scheduled") {
    const when = space?.scheduled_start ? formatWhen(space.scheduled_start) : "";
    setText(ui.when, when ? `Starts ${when}` : "");
    showNotice("This space hasn't started yet: its numbers begin when it goes live.");
  } else {
    setText(ui.when, started ? `Went live ${formatWhen(started)}` : "");
    showNotice("");
  }
  ui.report.setAttribute("aria-busy", "false");
}

function renderNumbers() {
  const { stats } = state;
  const items = [];
  if (stats.state === "live") {
    items.push(numberItem(stats, "listening_now", integer(stats.listening_now)));
  }
  if (stats.peak) {
    const at = stats.peak.at ? `At ${clock(stats.peak.at)}.` : "";
    items.push(numberItem(stats, "peak", integer(stats.peak.listeners), at));
  }
  if (stats.average_minute_audience != null) {
    items.push(
      numberItem(stats, "average_minute_audience", decimal(stats.average_minute_audience)),
    );
  }
  items.push(numberItem(stats, "unique_listeners", integer(stats.unique_listeners)));
  if (stats.state !== "scheduled") items.push(numberItem(stats, "minutes", integer(stats.minutes)));
  items.push(numberItem(stats, "joins", integer(stats.joins?.admitted)));
  items.push(numberItem(stats, "join_attempts", integer(stats.joins?.attempted)));
  if (stats.joins?.node_refused) {
    items.push(numberItem(stats, "node_refused", integer(stats.joins.node_refused)));
  }
  if (stats.state === "ended" || stats.replay?.plays) {
    items.push(numberItem(stats, "replay_plays", integer(stats.replay?.plays)));
  }
  ui.numbers.replaceChildren(...items);
  const generated = stats.generated_at ? clock(stats.generated_at) : "";
  setText(
    ui.updated,
    stats.state === "live" && generated ? `Updated ${generated}; refreshes by itself.` : "",
  );
  ui.numbersCard.hidden = false;
}

/** A round top for the axis: the smallest of 1, 1.5, 2, 3, 4, 5, 6, 8 (×10ⁿ) at least `value`,
 * kept even so that the middle line is a whole number too. */
function niceCeiling(value) {
  if (value <= 2) return 2;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 3, 4, 5, 6, 8, 10]) {
    const top = step * power;
    if (top >= value && top % 2 === 0) return top;
  }
  return 10 * power;
}

function svgElement(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

/** The plot: the average (a line over a light area) and the peak (dashed) of every minute. */
function drawChart(series) {
  // One unit of the drawing is one CSS pixel at the width it is shown, so labels stay legible.
  const width = Math.max(280, Math.round(ui.chartBox.clientWidth || 600));
  const height = Math.round(Math.min(300, Math.max(180, width * 0.5)));
  const pad = { left: 46, right: 14, top: 12, bottom: 28 };
  const rows = series.map((row) => ({
    minute: row.minute,
    average: Number(row.average) || 0,
    peak: Number(row.peak) || 0,
  }));
  const top = niceCeiling(Math.max(1, ...rows.map((r) => Math.max(r.peak, r.average))));
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;
  const x = (i) =>
    pad.left + (rows.length === 1 ? (i ? plotWidth : 0) : (plotWidth * i) / (rows.length - 1));
  const y = (value) => pad.top + plotHeight * (1 - value / top);
  // One minute alone is drawn as a flat segment across the plot.
  const points = (key) => {
    const list = rows.map((r, i) => [x(i), y(r[key])]);
    if (rows.length === 1) list.push([x(1), y(rows[0][key])]);
    return list;
  };
  const fmt = (n) => n.toFixed(1);

  const svg = svgElement("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    preserveAspectRatio: "xMidYMid meet",
  });
  const first = rows[0];
  const last = rows[rows.length - 1];
  const peak = Math.max(...rows.map((r) => r.peak));
  svg.setAttribute(
    "aria-label",
    `Listeners per minute from ${clock(first.minute)} to ${clock(last.minute)}; ` +
      `at most ${integer(peak)} at once.`,
  );

  for (const value of [0, top / 2, top]) {
    svg.append(
      svgElement("line", {
        class: "grid",
        x1: pad.left,
        x2: width - pad.right,
        y1: fmt(y(value)),
        y2: fmt(y(value)),
      }),
    );
    const label = svgElement("text", {
      class: "axis-label",
      x: pad.left - 8,
      y: fmt(y(value) + 4),
      "text-anchor": "end",
    });
    label.textContent = integer(value);
    svg.append(label);
  }
  const ticks = rows.length === 1 ? [[0, first], [1, first]] : [[0, first], [rows.length - 1, last]];
  if (rows.length > 4) ticks.push([Math.floor((rows.length - 1) / 2), rows[Math.floor((rows.length - 1) / 2)]]);
  for (const [i, row] of ticks) {
    const anchor = i === 0 ? "start" : x(i) >= width - pad.right - 1 ? "end" : "middle";
    const label = svgElement("text", {
      class: "axis-label",
      x: fmt(x(i)),
      y: height - 8,
      "text-anchor": anchor,
    });
    label.textContent = clock(row.minute);
    svg.append(label);
  }

  const average = points("average");
  const line = average.map(([px, py], i) => `${i ? "L" : "M"}${fmt(px)} ${fmt(py)}`).join(" ");
  const floor = fmt(y(0));
  svg.append(
    svgElement("path", {
      class: "area-average",
      d: `${line} L${fmt(average[average.length - 1][0])} ${floor} L${fmt(average[0][0])} ${floor} Z`,
    }),
    svgElement("polyline", {
      class: "line-peak",
      points: points("peak")
        .map(([px, py]) => `${fmt(px)},${fmt(py)}`)
        .join(" "),
    }),
    svgElement("path", { class: "line-average", d: line }),
  );
  return svg;
}

function renderChart() {
  const series = Array.isArray(state.stats.series) ? state.stats.series : [];
  ui.chartCard.hidden = state.stats.state === "scheduled";
  ui.csv.href = `${base}/stats.csv`;
  ui.chartEmpty.hidden = series.length > 0;
  ui.chartFigure.hidden = series.length === 0;
  ui.chartBox.replaceChildren(...(series.length ? [drawChart(series)] : []));
}

function questionList(body) {
  const list = Array.isArray(body) ? body : body?.questions;
  return Array.isArray(list) ? list : null;
}

function renderQuestions() {
  const list = questionList(state.questions);
  const shown = (list || [])
    .filter((q) => q && typeof q.text === "string" && !["hidden", "withdrawn"].includes(q.state))
    .sort((a, b) => (Number(b.votes) || 0) - (Number(a.votes) || 0))
    .slice(0, TOP_QUESTIONS);
  ui.questionsCard.hidden = !shown.length;
  ui.questions.replaceChildren(
    ...shown.map((q) => {
      const item = document.createElement("li");
      const text = document.createElement("span");
      text.className = "question-text";
      text.textContent = q.text;
      const votes = document.createElement("span");
      votes.className = "question-votes";
      const n = Number(q.votes) || 0;
      votes.textContent = ` · ${integer(n)} ${n === 1 ? "vote" : "votes"}`;
      const answered = q.state === "answered" ? " · answered" : "";
      votes.textContent += answered;
      item.append(text, votes);
      return item;
    }),
  );
}

function renderReactions() {
  const totals = state.reactions?.totals;
  const entries =
    totals && typeof totals === "object"
      ? Object.entries(totals)
          .map(([emoji, count]) => [String(emoji), Number(count) || 0])
          .filter(([, count]) => count > 0)
          .sort((a, b) => b[1] - a[1])
      : [];
  ui.reactionsCard.hidden = !entries.length;
  ui.reactions.replaceChildren(
    ...entries.map(([emoji, count]) => {
      const item = document.createElement("li");
      item.textContent = `${emoji} ${integer(count)}`;
      return item;
    }),
  );
}

function render() {
  renderHeader();
  renderNumbers();
  renderChart();
  renderQuestions();
  renderReactions();
  state.renders += 1;
}

function renderNotFound() {
  state.notFound = true;
  ui.report.setAttribute("aria-busy", "false");
  setText(ui.title, "Space not found");
  showNotice("We couldn't find this space. It may have been removed, or the link is wrong.");
  ui.numbersCard.hidden = ui.chartCard.hidden = true;
  ui.questionsCard.hidden = ui.reactionsCard.hidden = true;
}

// ---- the page ------------------------------------------------------------------------------

let timer = null;

async function load() {
  clearTimeout(timer);
  try {
    const [stats, space, questions, reactions] = await Promise.all([
      withRetry(() => getJson(`${base}/stats`), { maxAttempts: 4 }),
      getJson(base).catch(() => null), // the title and host; the numbers stand without them
      optionalJson(`${base}/questions`),
      optionalJson(`${base}/reactions`),
    ]);
    state.stats = stats;
    if (space) state.space = space;
    state.questions = questions;
    state.reactions = reactions;
    render();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      renderNotFound();
      return;
    }
    showNotice(state.stats ? "" : "Couldn't load the numbers yet. Trying again…");
  }
  if (!state.stats || state.stats.state !== "ended") {
    // ±10 %, so that the reports open together do not all ask together.
    timer = setTimeout(load, REFRESH_SECONDS * (0.9 + 0.2 * Math.random()) * 1000);
  }
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => state.stats && renderChart(), 150);
});

if (spaceId) {
  ui.back.href = `/s/${encodeURIComponent(spaceId)}`;
  load();
} else {
  renderNotFound();
}
