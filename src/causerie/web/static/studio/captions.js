// The host's captions switch: live captions (and the replay's transcript) on or off, before
// the end (PUT /api/spaces/{id}/captions). What the server can do is said beside it.

import { callApi } from "../api.js";
import { NEWS, problemText, setStatus } from "../page.js";
import { isModerator, renderSpace, spaceUrl, state, studio, ui } from "./context.js";

let busy = false;

const STATES = {
  waiting: "Captions are starting (or this server captions as many spaces as it can).",
  unavailable: "This server can't caption right now",
};

export function renderCaptions() {
  const space = state.notFound ? null : state.space;
  ui.captionsRow.hidden = !space || space.state === "ended" || !isModerator();
  if (!space || busy) return;
  ui.captionsSwitch.checked = Boolean(space.captions);
  ui.captionsSwitch.disabled = busy;
  const why = space.captions_state === "unavailable" ? space.captions_problem : null;
  const note = space.captions ? STATES[space.captions_state] : null;
  if (note && !ui.captionsStatus.classList.contains("is-error")) {
    setStatus(ui.captionsStatus, why ? `${note}: ${why}` : note);
  }
}

ui.captionsSwitch.addEventListener("change", async () => {
  if (busy) return;
  const enabled = ui.captionsSwitch.checked;
  busy = true;
  ui.captionsSwitch.disabled = true;
  setStatus(ui.captionsStatus, "Saving…");
  try {
    const space = await callApi("PUT", `${spaceUrl}/captions`, {
      token: studio.token,
      json: { enabled },
    });
    busy = false;
    renderSpace(space);
    setStatus(ui.captionsStatus, enabled ? "Captions on." : "Captions off.", { clearAfter: NEWS });
  } catch (error) {
    busy = false;
    ui.captionsSwitch.checked = !enabled;
    setStatus(ui.captionsStatus, problemText("Couldn't change captions", error), { error: true });
  } finally {
    ui.captionsSwitch.disabled = false;
  }
});
