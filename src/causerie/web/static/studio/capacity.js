// The listener limit (the waiting room): beyond it, listeners wait in line. Set when creating a
// space, and changed on the space by its hosts.

import { callApi } from "../api.js";
import { NEWS, problemText, setStatus } from "../page.js";
import { isModerator, renderSpace, spaceUrl, state, studio, ui } from "./context.js";

let most = null; // the largest limit the server takes (its settings), once known
let capacityBusy = false;

/** The server's largest listener limit: the number fields hold no more. */
export function setCapacityLimit(limit) {
  most = limit;
  for (const input of [ui.createCapacity, ui.capacityInput]) input.max = String(limit);
}

/** What is wrong with a limit that `readCapacity` refused, said for people. */
export function capacityProblem() {
  const range = most ? `from 1 to ${most.toLocaleString()}` : "of at least 1";
  return `The listener limit is a whole number ${range}, or empty.`;
}

/** A listener limit typed in `input`: a number, null (empty: no limit), or undefined (bad). */
export function readCapacity(input) {
  const text = input.value.trim();
  if (!text) return input.validity?.badInput ? undefined : null;
  const value = Number(text);
  const fits = Number.isInteger(value) && value >= 1 && (most === null || value <= most);
  return fits ? value : undefined;
}

export function renderCapacity() {
  const space = state.notFound ? null : state.space;
  ui.capacityForm.hidden = !space || space.state === "ended" || !isModerator();
  ui.capacitySave.disabled = capacityBusy;
  // Not while the host is typing a new value.
  if (document.activeElement !== ui.capacityInput && !capacityBusy) {
    ui.capacityInput.value = space?.capacity == null ? "" : String(space.capacity);
  }
}

ui.capacityForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (capacityBusy) return;
  const capacity = readCapacity(ui.capacityInput);
  if (capacity === undefined) {
    setStatus(ui.capacityStatus, capacityProblem(), { error: true });
    ui.capacityInput.focus();
    return;
  }
  capacityBusy = true;
  renderCapacity();
  setStatus(ui.capacityStatus, "Saving…");
  try {
    const space = await callApi("PATCH", spaceUrl, { token: studio.token, json: { capacity } });
    ui.capacityInput.blur();
    renderSpace(space);
    const saved =
      capacity === null
        ? "No limit: everyone gets in."
        : `Limit saved: ${capacity.toLocaleString()} listener${capacity === 1 ? "" : "s"}.`;
    setStatus(ui.capacityStatus, saved, { clearAfter: NEWS });
  } catch (error) {
    setStatus(ui.capacityStatus, problemText("Couldn't save the limit", error), { error: true });
  } finally {
    capacityBusy = false;
    renderCapacity();
  }
});
