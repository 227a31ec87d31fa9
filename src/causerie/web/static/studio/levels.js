// Who is talking on stage, and how loud: the `speaking` events, and while live the mic levels
// (moderators read them four times a second), shown on the stage's rows.

import { ApiError, callApi } from "../api.js";
import { levelFraction } from "../whip.js";
import { isLive, isModerator, spaceUrl, state, studio, ui } from "./context.js";

const LEVELS_EVERY = 250; // ms, while live

let levelTimer = null;
let levelReading = false;
let levelRefused = false;
let levelsRead = false; // since polling started: a first answer came (who isn't in it is off air)

/** Who is talking now (a `speaking` event). */
export function setSpeaking(ids) {
  state.speaking = Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  for (const item of ui.stageList.children) markSpeaking(item);
}

export function markSpeaking(item) {
  // The `speaking` events only say when the set changes; the levels (read four times a second)
  // also say it, from the moment the page opens.
  const id = item.dataset.id;
  const talking = isLive() && (state.speaking.includes(id) || Boolean(state.levels[id]?.speaking));
  item.classList.toggle("is-speaking", talking);
  item.querySelector(".studio-speaking").hidden = !talking;
}

export function showLevel(item) {
  const level = state.levels[item.dataset.id];
  const fill = item.querySelector(".studio-level-fill");
  const fraction = level && !level.muted ? levelFraction(level.level_dbfs) : 0;
  fill.style.transform = `scaleX(${fraction.toFixed(3)})`;
  fill.parentElement.hidden = !levelsRead; // no levels (not live, or not a moderator)
  const offAir = isLive() && levelsRead && !level;
  item.classList.toggle("is-off-air", offAir);
  item.querySelector(".studio-offair").hidden = !offAir;
}

function redrawLevels() {
  for (const item of ui.stageList.children) {
    showLevel(item);
    markSpeaking(item);
  }
}

export function syncLevelPolling() {
  const wanted = isLive() && isModerator() && !document.hidden && !levelRefused;
  if (wanted && !levelTimer) {
    levelTimer = setInterval(pollLevels, LEVELS_EVERY);
    pollLevels();
  } else if (!wanted && levelTimer) {
    clearInterval(levelTimer);
    levelTimer = null;
    levelsRead = false;
    state.levels = {};
    redrawLevels();
  }
}

async function pollLevels() {
  if (levelReading) return;
  levelReading = true;
  try {
    const body = await callApi("GET", `${spaceUrl}/levels`, { token: studio.token });
    if (!levelTimer) return;
    state.levels = body?.levels && typeof body.levels === "object" ? body.levels : {};
    levelsRead = true;
    redrawLevels();
  } catch (error) {
    if (error instanceof ApiError && [401, 403, 404].includes(error.status)) {
      levelRefused = true; // not for this token: stop asking
      syncLevelPolling();
    }
  } finally {
    levelReading = false;
  }
}

document.addEventListener("visibilitychange", syncLevelPolling);
