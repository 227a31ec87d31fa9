// The stage: who is on it (host first), with their live mic level, and what moderators do with
// them: mute, move back to the audience, make co-host or speaker, remove (after a confirmation).

import { ApiError, callApi } from "../api.js";
import {
  NEWS,
  fillAvatar,
  fromTemplate,
  problemText,
  roleLabel,
  setStatus,
  setText,
} from "../page.js";
import {
  focusedRow,
  isModerator,
  renderSpace,
  restoreFocus,
  spaceUrl,
  state,
  studio,
  ui,
} from "./context.js";
import { markSpeaking, showLevel } from "./levels.js";

let stageKey = null;
let rowNumber = 0; // for unique element ids in rows
let confirmingRemove = null; // the id whose removal waits for a confirmation
const stageBusy = new Set();

function outranks(person) {
  if (person.role === "host") return false;
  if (person.role === "cohost") return state.role === "host";
  return isModerator();
}

export function renderStage() {
  const space = state.space;
  const people = space && space.state !== "ended" && Array.isArray(space.stage) ? space.stage : [];
  ui.stage.hidden = !people.length;
  setText(ui.stageCount, people.length ? String(people.length) : "");
  const key = JSON.stringify([
    state.role,
    space?.state,
    confirmingRemove,
    [...stageBusy],
    people.map((p) => [p.id, p.name, p.role, Boolean(p.muted), Boolean(p.reconnecting)]),
  ]);
  if (key === stageKey) return;
  stageKey = key;
  if (confirmingRemove && !people.some((p) => p.id === confirmingRemove)) confirmingRemove = null;
  const focused = focusedRow(ui.stageList);
  ui.stageList.replaceChildren(...people.map(memberItem));
  for (const item of ui.stageList.children) {
    markSpeaking(item);
    showLevel(item);
  }
  restoreFocus(ui.stageList, focused);
}

function memberItem(person) {
  const item = fromTemplate(ui.memberTemplate);
  const self = person.id === state.me;
  item.dataset.id = person.id;
  item.dataset.role = person.role;
  fillAvatar(item.querySelector(".avatar"), person);
  item.querySelector(".person-name").textContent = self ? `${person.name} (you)` : person.name;
  item.querySelector(".person-role").textContent = roleLabel(person.role);
  item.querySelector(".studio-muted").hidden = !person.muted;
  item.querySelector(".studio-reconnecting").hidden = !person.reconnecting;
  item.classList.toggle("is-reconnecting", Boolean(person.reconnecting));
  item.classList.toggle("is-muted", Boolean(person.muted));
  const live = state.space?.state === "live";
  const can = isModerator() && !self && state.space?.state !== "ended";
  const mute = item.querySelector(".mute");
  mute.hidden = !can || !live;
  mute.querySelector(".label").textContent = person.muted ? "Unmute" : "Mute";
  item.querySelector(".audience").hidden = !can || !outranks(person);
  const hosting = can && state.role === "host";
  item.querySelector(".cohost").hidden = !(hosting && person.role === "speaker");
  item.querySelector(".speaker").hidden = !(hosting && person.role === "cohost");
  item.querySelector(".remove").hidden = !can || !outranks(person);
  const confirm = item.querySelector(".studio-remove-confirm");
  const confirming = confirmingRemove === person.id;
  confirm.hidden = !confirming;
  item.querySelector(".studio-actions").hidden = confirming;
  const question = confirm.querySelector(".confirm-question");
  question.id = `remove-question-${(rowNumber += 1)}`;
  question.textContent =
    `Remove ${person.name} from the space? They leave the stage and can't ask to speak ` +
    "again here.";
  confirm.setAttribute("aria-labelledby", question.id);
  confirm.querySelector(".remove-yes").textContent = `Remove ${person.name}`;
  const busy = stageBusy.has(person.id);
  for (const button of item.querySelectorAll(".studio-actions button")) {
    // The visible words first (what voice control users say), then whom it is for.
    button.setAttribute("aria-label", `${button.textContent.trim()}, ${person.name}`);
  }
  for (const button of item.querySelectorAll("button")) button.disabled = busy;
  return item;
}

async function stageAction(person, kind) {
  if (stageBusy.has(person.id)) return;
  const id = encodeURIComponent(person.id);
  const name = person.name;
  const calls = {
    mute: ["PUT", `${spaceUrl}/stage/${id}/muted`, { muted: !person.muted }],
    audience: ["DELETE", `${spaceUrl}/stage/${id}`],
    cohost: ["PUT", `${spaceUrl}/cohosts/${id}`, { name }],
    speaker: ["DELETE", `${spaceUrl}/cohosts/${id}`],
    remove: ["POST", `${spaceUrl}/removals`, { user_id: person.id }],
  };
  const done = {
    mute: person.muted ? `${name} is unmuted.` : `${name} is muted.`,
    audience: `${name} is back in the audience.`,
    cohost: `${name} is a co-host now.`,
    speaker: `${name} is a speaker now.`,
    remove: `${name} was removed.`,
  };
  const failed = {
    mute: person.muted ? `Couldn't unmute ${name}` : `Couldn't mute ${name}`,
    audience: `Couldn't move ${name} to the audience`,
    cohost: `Couldn't make ${name} a co-host`,
    speaker: `Couldn't make ${name} a speaker`,
    remove: `Couldn't remove ${name}`,
  };
  const [method, url, json] = calls[kind];
  stageBusy.add(person.id);
  confirmingRemove = null;
  renderStage();
  try {
    const space = await callApi(method, url, { token: studio.token, json });
    stageBusy.delete(person.id);
    setStatus(ui.stageStatus, done[kind], { clearAfter: NEWS });
    renderSpace(space);
  } catch (error) {
    stageBusy.delete(person.id);
    setStatus(ui.stageStatus, problemText(failed[kind], error), { error: true });
    stageKey = null;
    renderStage();
    if (error instanceof ApiError && [404, 409].includes(error.status)) studio.watcher?.refresh();
  }
  if (!ui.stageList.contains(document.activeElement)) ui.stage.querySelector("h2").focus();
}

ui.stageList.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const id = button?.closest("li")?.dataset.id;
  const person = (state.space?.stage || []).find((p) => p.id === id);
  if (!person) return;
  const kind = ["mute", "audience", "cohost", "speaker"].find((k) => button.classList.contains(k));
  if (kind) {
    stageAction(person, kind);
  } else if (button.classList.contains("remove")) {
    confirmingRemove = person.id;
    renderStage();
    ui.stageList.querySelector(`li[data-id="${CSS.escape(id)}"] .remove-cancel`)?.focus();
  } else if (button.classList.contains("remove-yes")) {
    stageAction(person, "remove");
  } else if (button.classList.contains("remove-cancel")) {
    confirmingRemove = null;
    renderStage();
    ui.stageList.querySelector(`li[data-id="${CSS.escape(id)}"] .remove`)?.focus();
  }
});

ui.stageList.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !confirmingRemove) return;
  const id = confirmingRemove;
  confirmingRemove = null;
  renderStage();
  ui.stageList.querySelector(`li[data-id="${CSS.escape(id)}"] .remove`)?.focus();
});
