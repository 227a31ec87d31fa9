// An invite link (/invite/{code}): says what it gives, asks for a name, makes the account and
// keeps its token where the studio (a host) or the console (an operator) looks for it.
//
// Text from the API only ever goes into the page as text (textContent), never as HTML.

import { callApi } from "./api.js";
import {
  $,
  ACCOUNT_KEY,
  copyOnClick,
  formatWhen,
  problemText,
  setStatus,
  setText,
  storageSet,
} from "./page.js";

const ui = {
  invite: $("invite"),
  what: $("invite-what"),
  form: $("invite-form"),
  name: $("name-input"),
  status: $("invite-status"),
  done: $("done"),
  token: $("token"),
  copy: $("token-copy"),
  next: $("next"),
};

const code = decodeURIComponent(location.pathname.split("/").pop() || "");
const url = `/api/invites/${encodeURIComponent(code)}`;
const state = { info: null, account: null };
window.causerie = { state };

async function load() {
  try {
    state.info = await callApi("GET", url);
    const what =
      state.info.role === "operator"
        ? "an operator's account: you run this causerie from its console"
        : "a host account: you can create and host spaces";
    setText(
      ui.what,
      `This link gives you ${what}. It works once, until ${formatWhen(state.info.expires_at)}.`,
    );
    ui.form.hidden = false;
    ui.name.focus();
  } catch (error) {
    setStatus(ui.status, problemText("This invite can't be used", error), { error: true });
  } finally {
    ui.invite.removeAttribute("aria-busy");
  }
}

ui.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  if (!name) {
    setStatus(ui.status, "Say your name first.", { error: true });
    ui.name.focus();
    return;
  }
  const button = ui.form.querySelector("button");
  button.disabled = true;
  try {
    const made = await callApi("POST", url, { json: { name } });
    state.account = made.account;
    const operator = made.account.role === "operator";
    storageSet("local", operator ? "causerie.operator" : ACCOUNT_KEY, made.token);
    ui.token.value = made.token;
    ui.next.href = operator ? "/admin" : "/studio";
    setText(ui.next, operator ? "Open the console" : "Open the studio");
    ui.invite.hidden = true;
    ui.done.hidden = false;
  } catch (error) {
    setStatus(ui.status, problemText("Couldn't create the account", error), { error: true });
    button.disabled = false;
  }
});

copyOnClick(ui.copy, ui.token);
load();
