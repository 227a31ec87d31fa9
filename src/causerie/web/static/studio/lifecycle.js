// Going live, and ending (or cancelling, before the start) after a confirmation.

import { ApiError, endSpace, startSpace } from "../api.js";
import { problemText, setStatus, setText } from "../page.js";
import { isModerator, renderSpace, spaceId, state, studio, ui } from "./context.js";

let spaceBusy = false;
let confirmingEnd = false;

export function renderSpaceActions() {
  const space = state.notFound ? null : state.space;
  const st = space?.state;
  const host = state.role === "host";
  if (!host || (st !== "live" && st !== "scheduled")) confirmingEnd = false;
  ui.goLive.hidden = !(st === "scheduled" && isModerator());
  ui.end.hidden = !host || confirmingEnd || (st !== "live" && st !== "scheduled");
  setText(ui.end, st === "scheduled" ? "Cancel space" : "End space");
  setText(
    ui.endQuestion,
    st === "scheduled"
      ? "Cancel this space? Listeners waiting for it see that it won't happen. " +
          "This can't be undone."
      : "End the space for everyone? Speakers go off the air and listeners hear the last " +
          "seconds. This can't be undone.",
  );
  setText(ui.endYes, st === "scheduled" ? "Yes, cancel it" : "Yes, end it");
  ui.endConfirm.hidden = !confirmingEnd;
  for (const button of [ui.goLive, ui.end, ui.endYes, ui.endCancel]) button.disabled = spaceBusy;
}

async function spaceAction(kind) {
  if (spaceBusy) return;
  const starting = kind === "start";
  const cancelling = !starting && state.space?.state === "scheduled";
  spaceBusy = true;
  const doing = starting ? "Going live…" : cancelling ? "Cancelling…" : "Ending the space…";
  setStatus(ui.spaceStatus, doing);
  renderSpaceActions();
  try {
    const space = await (starting ? startSpace : endSpace)(spaceId, studio.token);
    spaceBusy = false;
    confirmingEnd = false;
    setStatus(
      ui.spaceStatus,
      starting
        ? "You're live. Go on air below to speak."
        : cancelling
          ? "The space was cancelled."
          : "The space has ended.",
    );
    renderSpace(space);
    (starting && !ui.air.hidden ? ui.air : ui.title).focus();
  } catch (error) {
    spaceBusy = false;
    confirmingEnd = false;
    setStatus(
      ui.spaceStatus,
      problemText(starting ? "Couldn't go live" : "Couldn't end the space", error),
      { error: true },
    );
    renderSpaceActions();
    if (error instanceof ApiError && error.status === 409) studio.watcher?.refresh();
  }
}

ui.goLive.addEventListener("click", () => spaceAction("start"));
ui.end.addEventListener("click", () => {
  confirmingEnd = true;
  setStatus(ui.spaceStatus, "");
  renderSpaceActions();
  ui.endCancel.focus(); // the safe choice has the focus; ending takes a deliberate press
});
ui.endYes.addEventListener("click", () => spaceAction("end"));
function cancelEnd() {
  confirmingEnd = false;
  renderSpaceActions();
  ui.end.focus();
}
ui.endCancel.addEventListener("click", cancelEnd);
ui.endConfirm.addEventListener("keydown", (event) => {
  if (event.key === "Escape") cancelEnd();
});
