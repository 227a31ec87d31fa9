// The public transparency page (/transparency): GET /api/transparency as a table, newest month
// first. Text from the API only ever goes into the page as text.

import { callApi, withRetry } from "./api.js";
import { $, failedText, setText } from "./page.js";

const ACT_NAMES = {
  mute: "muted",
  unmute: "unmuted",
  move_to_audience: "moved to the audience",
  remove_member: "removed by a host",
  hide_question: "question hidden",
  show_question: "question shown again",
  end_space: "space ended",
  dismiss_reports: "reports dismissed",
  remove_speaker: "speaker removed by an operator",
  take_down_replay: "replay taken down",
  ban_account: "account banned",
};

/** "3 h 20 min", "12 min", "40 s", or "—" when nothing was acted on. */
export function durationText(seconds) {
  if (seconds == null) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  return `${Math.round(hours / 24)} days`;
}

function monthText(month) {
  const [year, number] = month.split("-").map(Number);
  const date = new Date(Date.UTC(year, number - 1, 1));
  return date.toLocaleDateString(undefined, { year: "numeric", month: "long", timeZone: "UTC" });
}

function row(month) {
  const tr = document.createElement("tr");
  const cells = [
    monthText(month.month),
    String(month.reports_received),
    String(month.reports_dismissed),
    String(month.reports_actioned),
    durationText(month.median_seconds_to_action),
    String(Object.values(month.actions).reduce((sum, n) => sum + n, 0)),
    Object.entries(month.actions)
      .map(([kind, n]) => `${ACT_NAMES[kind] ?? kind}: ${n}`)
      .join(", ") || "—",
  ];
  cells.forEach((text, index) => {
    const cell = document.createElement(index === 0 ? "th" : "td");
    if (index === 0) cell.scope = "row";
    if (index === cells.length - 1) cell.className = "kinds";
    cell.textContent = text;
    tr.append(cell);
  });
  tr.dataset.month = month.month;
  return tr;
}

async function show() {
  try {
    const figures = await withRetry(() => callApi("GET", "/api/transparency"), { maxAttempts: 5 });
    $("rows").replaceChildren(...figures.months.map(row));
    $("figures").hidden = false;
    setText($("status"), "");
  } catch (error) {
    setText($("status"), failedText("Couldn't load the figures", error));
  }
}

show();
