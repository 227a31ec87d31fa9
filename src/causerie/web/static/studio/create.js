// /studio: create and schedule a space, and go back to one's own.

import { callApi, listSpaces } from "../api.js";
import {
  STATE_ORDER,
  element,
  formatWhen,
  listenersText,
  problemText,
  setStatus,
  stateLabel,
} from "../page.js";
import { capacityProblem, readCapacity } from "./capacity.js";
import { state, studio, ui } from "./context.js";

/** A datetime-local value as ISO 8601 with this browser's offset: 2026-05-01T18:30:00+02:00. */
export function localToIso(value) {
  const date = new Date(value); // a datetime-local value is read as local time
  if (Number.isNaN(date.getTime())) return null;
  const pad = (n) => String(n).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

export function startCreate() {
  ui.create.hidden = false;
  document.title = "New space · causerie";
  loadMine();
}

/** The server's limits (GET /api/settings): the fields hold no more than it accepts. */
export function setTextLimits({ title, description }) {
  ui.createName.maxLength = title;
  ui.createDescription.maxLength = description;
}

let creating = false;

ui.createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (creating) return;
  const title = ui.createName.value.trim();
  if (!title) {
    setStatus(ui.createStatus, "Give your space a title.", { error: true });
    ui.createName.focus();
    return;
  }
  const json = {
    title,
    description: ui.createDescription.value.trim(),
    recording: ui.createRecording.checked,
  };
  const capacity = readCapacity(ui.createCapacity);
  if (capacity === undefined) {
    setStatus(ui.createStatus, capacityProblem(), { error: true });
    ui.createCapacity.focus();
    return;
  }
  if (capacity !== null) json.capacity = capacity;
  if (ui.createStart.value) {
    const iso = localToIso(ui.createStart.value);
    if (!iso) {
      setStatus(ui.createStatus, "That start time isn't a date.", { error: true });
      ui.createStart.focus();
      return;
    }
    if (Date.parse(iso) < Date.now() - 60_000) {
      setStatus(ui.createStatus, "That start time has passed. Pick one in the future.", {
        error: true,
      });
      ui.createStart.focus();
      return;
    }
    json.scheduled_start = iso;
  }
  creating = true;
  ui.createSubmit.disabled = true;
  setStatus(ui.createStatus, "Creating…");
  try {
    const space = await callApi("POST", "/api/spaces", { token: studio.token, json });
    setStatus(ui.createStatus, "Created. Opening its studio…");
    location.assign(`/studio/${encodeURIComponent(space.id)}`);
  } catch (error) {
    setStatus(ui.createStatus, problemText("Couldn't create the space", error), { error: true });
    creating = false;
    ui.createSubmit.disabled = false;
  }
});

function mineItem(space) {
  const link = element("a", "studio-mine-link");
  link.href = `/studio/${encodeURIComponent(space.id)}`;
  const badge = element("span", "badge", stateLabel(space.state));
  badge.dataset.state = space.state;
  const when =
    space.state === "live"
      ? listenersText(space.listeners_now)
      : space.scheduled_start
        ? `Starts ${formatWhen(space.scheduled_start)}`
        : "Not scheduled";
  link.append(
    badge,
    " ",
    element("span", "studio-mine-title", space.title),
    element("span", "studio-sub", when),
  );
  const item = element("li");
  item.append(link);
  return item;
}

async function loadMine() {
  try {
    const spaces = (await listSpaces()).filter((space) => space.host?.id === state.me);
    spaces.sort((a, b) => (STATE_ORDER[a.state] ?? 3) - (STATE_ORDER[b.state] ?? 3));
    ui.mineList.replaceChildren(...spaces.map(mineItem));
    ui.mine.hidden = spaces.length === 0; // nothing to go back to yet
  } catch {
    ui.mine.hidden = true; // only a convenience
  }
}
