// The questions, for hosts and co-hosts: every one (hidden ones too), in the audience's order,
// kept live by the `questions` events; pin, mark answered, hide or show again.

import { ApiError, callApi } from "../api.js";
import { fromTemplate, problemText, setStatus, setText } from "../page.js";
import { orderQuestions } from "../questions.js";
import { isModerator, spaceUrl, state, studio, ui } from "./context.js";

let questionsLoading = null;
let questionsAgain = false;
let questionsLoaded = false;
let questionsReadFailed = false;
const questionItems = new Map();

export function renderQuestionsCard() {
  const show =
    isModerator() && state.space && (state.space.state !== "ended" || state.questions.size > 0);
  ui.questions.hidden = !show;
  if (show && !questionsLoaded && !questionsLoading) loadQuestions();
  if (show) renderQuestions();
}

export async function loadQuestions() {
  if (!isModerator() || !state.space) return;
  if (questionsLoading) {
    questionsAgain = true;
    return;
  }
  questionsLoading = callApi("GET", `${spaceUrl}/questions?include=all`, {
    token: studio.token,
  });
  try {
    const body = await questionsLoading;
    const known = state.questions;
    state.questions = new Map();
    for (const view of Array.isArray(body?.questions) ? body.questions : []) {
      mergeQuestion(view, known.get(view?.id));
    }
    questionsLoaded = true;
    if (questionsReadFailed) setStatus(ui.questionsStatus, "");
    questionsReadFailed = false;
  } catch (error) {
    questionsReadFailed = true;
    setStatus(ui.questionsStatus, problemText("Couldn't read the questions", error), {
      error: true,
    });
  } finally {
    questionsLoading = null;
  }
  renderQuestionsCard();
  if (questionsAgain) {
    questionsAgain = false;
    loadQuestions();
  }
}

function mergeQuestion(view, previous = state.questions.get(view?.id)) {
  if (!view || typeof view.id !== "string") return true;
  if (typeof view.text !== "string") {
    // Hidden or withdrawn: the public event carries only the id and the state.
    if (!previous) return false;
    state.questions.set(view.id, { ...previous, state: view.state, pinned: false });
    return true;
  }
  const votes = Number(view.votes) || 0;
  state.questions.set(view.id, {
    ...view,
    votes: previous ? Math.max(votes, previous.votes) : votes,
  });
  return true;
}

/** A `questions` event: the questions that changed (`{id, state}` only, if hidden). */
export function handleQuestions(data) {
  if (!isModerator()) return;
  let complete = true;
  for (const view of Array.isArray(data?.questions) ? data.questions : []) {
    complete = mergeQuestion(view) && complete;
  }
  if (!complete) loadQuestions(); // one we never saw, already hidden: read its text
  renderQuestions();
}

function renderQuestions() {
  if (ui.questions.hidden) return;
  const shown = orderQuestions(
    [...state.questions.values()].filter((q) => q.state !== "withdrawn"),
  );
  const open = shown.filter((q) => q.state === "open").length;
  setText(ui.questionsCount, open ? String(open) : "");
  ui.questionsEmpty.hidden = shown.length > 0 || !questionsLoaded;
  const active = document.activeElement;
  const keep = ui.questionList.contains(active) ? active : null;
  let before = ui.questionList.firstElementChild;
  for (const question of shown) {
    let item = questionItems.get(question.id);
    if (!item) {
      item = fromTemplate(ui.questionTemplate);
      item.dataset.id = question.id;
      questionItems.set(question.id, item);
    }
    fillQuestion(item, question);
    if (item !== before) ui.questionList.insertBefore(item, before);
    else before = before.nextElementSibling;
  }
  const ids = new Set(shown.map((q) => q.id));
  for (const [id, item] of questionItems) {
    if (!ids.has(id)) {
      item.remove();
      questionItems.delete(id);
    }
  }
  if (keep && document.activeElement !== keep && keep.isConnected) keep.focus();
}

function fillQuestion(item, question) {
  const flag = question.pinned
    ? "Now answering"
    : { answered: "Answered", hidden: "Hidden" }[question.state] || "";
  const flagElement = item.querySelector(".question-flag");
  setText(flagElement, flag);
  flagElement.hidden = !flag;
  item.dataset.state = question.state;
  item.classList.toggle("is-pinned", Boolean(question.pinned));
  setText(item.querySelector(".question-text"), question.text);
  setText(item.querySelector(".question-author"), question.author_name || "Guest");
  const votes = Number(question.votes) || 0;
  setText(item.querySelector(".question-votes"), votes === 1 ? "1 vote" : `${votes} votes`);
  const ended = state.space?.state === "ended";
  const pin = item.querySelector(".pin");
  // Pin what is open; unpin what is pinned.
  pin.hidden = ended || (question.pinned ? false : question.state !== "open");
  setText(pin.querySelector(".label"), question.pinned ? "Unpin" : "Pin");
  pin.dataset.action = question.pinned ? "unpin" : "pin";
  item.querySelector(".answer").hidden = ended || question.state !== "open";
  const hide = item.querySelector(".hide");
  hide.hidden = ended;
  setText(hide.querySelector(".label"), question.state === "hidden" ? "Show" : "Hide");
  hide.dataset.action = question.state === "hidden" ? "show" : "hide";
  const short = Array.from(question.text).slice(0, 60).join("");
  const busy = questionsBusy.has(question.id);
  for (const button of item.querySelectorAll("button")) {
    button.setAttribute("aria-label", `${button.textContent.trim()}: ${short}`);
    button.disabled = busy;
  }
}

const questionsBusy = new Set();

async function moderateQuestion(id, action) {
  if (questionsBusy.has(id)) return;
  questionsBusy.add(id);
  renderQuestions();
  const words = {
    pin: "pin",
    unpin: "unpin",
    answer: "mark as answered",
    hide: "hide",
    show: "show",
  };
  try {
    const view = await callApi(
      "POST",
      `${spaceUrl}/questions/${encodeURIComponent(id)}/${action}`,
      { token: studio.token },
    );
    if (action === "pin") {
      for (const [other, question] of state.questions) {
        if (other !== id && question.pinned) {
          state.questions.set(other, { ...question, pinned: false });
        }
      }
    }
    mergeQuestion(view);
    setStatus(ui.questionsStatus, "");
  } catch (error) {
    setStatus(ui.questionsStatus, problemText(`Couldn't ${words[action]} the question`, error), {
      error: true,
    });
    if (error instanceof ApiError && error.status === 409) loadQuestions();
  } finally {
    questionsBusy.delete(id);
  }
  renderQuestions();
}

ui.questionList.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const id = button?.closest("li")?.dataset.id;
  if (!id) return;
  if (button.classList.contains("answer")) moderateQuestion(id, "answer");
  else if (button.dataset.action) moderateQuestion(id, button.dataset.action);
});
