// Reporting the space, a question or a speaker to the server's moderators (the "Report"
// buttons of the listener page): a reason from the server's list, an optional note, and the
// reference the server gives back, shown so the listener can quote it.
//
// The reasons and the note's length come from GET /api/settings (never copied here). Text from
// the API only ever goes into the page as text.

import { ApiError, callApi } from "./api.js";
import { $, problemText, setText } from "./page.js";

const TARGET_WORDS = { space: "this space", question: "a question", speaker: "a speaker" };

export class Flagging {
  /** `withListener(action)` runs `action(token)` as this page's listener (space.js). */
  constructor({ spaceId, withListener }) {
    this.spaceId = spaceId;
    this.withListener = withListener;
    this.ui = {
      dialog: $("flag-dialog"),
      form: $("flag-form"),
      title: $("flag-title"),
      what: $("flag-what"),
      reasons: $("flag-reasons"),
      note: $("flag-note"),
      counter: $("flag-counter"),
      status: $("flag-status"),
      done: $("flag-done"),
      ref: $("flag-ref"),
      send: $("flag-send"),
      close: $("flag-close"),
      space: $("flag-space"),
    };
    this.target = null; // {target, target_id, label} while the dialog is open
    this.noteLimit = null;
    this.sending = false;
    this.lastRef = null; // the last reference given (tests read it through window.causerie)

    const { ui } = this;
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    ui.close.addEventListener("click", () => ui.dialog.close());
    ui.note.addEventListener("input", () => this.renderCounter());
    ui.space.addEventListener("click", () =>
      this.open({ target: "space", label: "this space" }, ui.space),
    );
    // The buttons in the stage list and the questions come and go with their items: one
    // listener each on the lists that hold them.
    for (const list of [$("stage-list"), $("question-list")]) {
      list.addEventListener("click", (event) => this.fromItem(event));
    }
  }

  /** The reasons on offer and the note's length, from the server's settings. */
  setChoices(reasons, noteLimit) {
    this.noteLimit = noteLimit;
    this.ui.note.maxLength = noteLimit;
    const legend = this.ui.reasons.querySelector("legend");
    const choices = reasons.map(({ reason, label }, index) => {
      const row = document.createElement("label");
      row.className = "flag-reason";
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "flag-reason";
      input.value = reason;
      input.required = true;
      if (index === 0) input.checked = true;
      row.append(input, document.createTextNode(` ${label}`));
      return row;
    });
    this.ui.reasons.replaceChildren(legend, ...choices);
    this.ui.space.hidden = !this.spaceId;
    this.renderCounter();
  }

  fromItem(event) {
    const button = event.target.closest("button[data-flag]");
    const item = button?.closest("li");
    if (!button || !item) return;
    const kind = button.dataset.flag;
    const name =
      kind === "speaker"
        ? item.querySelector(".person-name")?.textContent
        : item.querySelector(".question-text")?.textContent;
    const label = kind === "speaker" ? `the speaker ${name}` : `the question “${name}”`;
    this.open({ target: kind, target_id: item.dataset.id, label }, button);
  }

  open(target, opener) {
    const { ui } = this;
    this.target = target;
    this.opener = opener;
    setText(ui.title, `Report ${TARGET_WORDS[target.target]}`);
    setText(ui.what, `You are reporting ${target.label} to this server's moderators.`);
    ui.note.value = "";
    ui.done.hidden = true;
    ui.send.hidden = false;
    ui.send.disabled = false;
    ui.reasons.disabled = false;
    ui.note.disabled = false;
    setText(ui.close, "Cancel");
    setText(ui.status, "");
    this.renderCounter();
    ui.dialog.addEventListener("close", () => this.opener?.focus(), { once: true });
    ui.dialog.showModal();
  }

  renderCounter() {
    const used = Array.from(this.ui.note.value.trim()).length;
    setText(this.ui.counter, this.noteLimit ? `${used}/${this.noteLimit}` : String(used));
  }

  async send() {
    const { ui } = this;
    if (this.sending || !this.target) return;
    const reason = ui.form.querySelector("input[name=flag-reason]:checked")?.value;
    if (!reason) {
      setText(ui.status, "Choose what is wrong first.");
      return;
    }
    const body = { target: this.target.target, reason };
    if (this.target.target_id) body.target_id = this.target.target_id;
    const note = ui.note.value.trim();
    if (note) body.note = note;
    this.sending = true;
    ui.send.disabled = true;
    setText(ui.status, "Sending…");
    try {
      const receipt = await this.withListener((token) =>
        callApi("POST", `/api/spaces/${encodeURIComponent(this.spaceId)}/reports`, {
          token,
          json: body,
        }),
      );
      this.lastRef = receipt.ref;
      setText(ui.ref, receipt.ref);
      setText(ui.status, "");
      ui.done.hidden = false;
      ui.send.hidden = true;
      ui.reasons.disabled = true;
      ui.note.disabled = true;
      setText(ui.close, "Close");
      ui.close.focus();
    } catch (error) {
      ui.send.disabled = false;
      const text =
        error instanceof ApiError && error.status === 429
          ? problemText("Couldn't send the report yet", error)
          : problemText("Couldn't send the report", error);
      setText(ui.status, text);
    } finally {
      this.sending = false;
    }
  }
}
