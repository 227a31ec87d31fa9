// The audience's questions on a space's page: the list, best first, kept live by the `questions`
// events; asking, upvoting and withdrawing one's own.
//
// Questions are the audience's own words: they only ever reach the page as text (textContent).

import {
  ApiError,
  askQuestion,
  listQuestions,
  retryDelaySeconds,
  voteQuestion,
  withdrawQuestion,
} from "./api.js";
import {
  $,
  NEWS,
  announce,
  failedText,
  fromTemplate,
  readJson,
  retryInText,
  setStatus,
  storageGet,
  storageSet,
  unreachableText,
  writeJson,
} from "./page.js";

const VISIBLE = new Set(["open", "answered"]);
const RANK = { open: 1, answered: 2 };
const NEAR_THE_LIMIT = 20; // characters left when the counter starts to stand out
const NAME_KEY = "causerie.name";
const PAGE_SIZE = 50; // questions shown at first, and added by each "Show more"

/** The API's order: pinned first, then open ones by votes then age, then answered ones. */
export function orderQuestions(questions) {
  const rank = (q) => (q.pinned ? 0 : (RANK[q.state] ?? 3));
  const time = (q) => Date.parse(q.created_at) || 0;
  return [...questions].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      b.votes - a.votes ||
      time(a) - time(b) ||
      (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0) ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

/** Characters as the server counts them (code points, not UTF-16 units). */
const length = (text) => Array.from(text).length;

/** The display name the listener chose once (shared by every space), or "". */
export function savedName() {
  return (storageGet("local", NAME_KEY) || "").trim();
}

/**
 * The questions card. `withListener(action, options)` runs `action(token, session)` with the
 * listener's token for this space (joining first if need be); `listenerId()` is who this
 * page is, for marking its own questions.
 */
export class Questions {
  constructor({ spaceId, withListener, listenerId }) {
    this.spaceId = spaceId;
    this.withListener = withListener;
    this.listenerId = listenerId;
    this.ui = {
      card: $("questions"),
      count: $("questions-count"),
      form: $("ask-form"),
      name: $("name"),
      text: $("question-text"),
      counter: $("question-counter"),
      ask: $("ask"),
      hint: $("ask-hint"),
      status: $("ask-status"),
      list: $("question-list"),
      empty: $("questions-empty"),
      more: $("questions-more"),
      announce: $("questions-announce"),
      template: $("question-item"),
    };
    this.questions = new Map(); // id → the latest view
    this.items = new Map(); // id → its <li>
    this.votesKey = `causerie.votes.${spaceId}`;
    this.mineKey = `causerie.mine.${spaceId}`;
    this.voted = new Set(readJson("session", this.votesKey, []));
    this.mine = readJson("session", this.mineKey, {}); // id → the token that asked it
    this.spaceState = null;
    this.loaded = false;
    this.loadedOnce = false;
    this.unavailable = false; // the server has no questions here (404): the card stays hidden
    this.loading = null; // the read on its way
    this.loadAgain = false; // … and another one is wanted after it
    this.missed = null; // events that arrived while reading: applied again on top of the read
    this.loadFailures = 0;
    this.retryTimer = null;
    this.pinned = null; // the id of the question being answered
    this.asking = false;
    this.shown = PAGE_SIZE; // how many of the list the page shows
    this.limits = { question: null, name: null }; // the server's (setLimits), once known

    this.ui.name.value = savedName();
    this.ui.name.addEventListener("input", () => this.saveName({ tidy: false }));
    this.ui.name.addEventListener("change", () => this.saveName());
    this.ui.text.addEventListener("input", () => this.renderCounter());
    this.ui.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.ui.form.requestSubmit();
      }
    });
    this.ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
    this.ui.list.addEventListener("click", (event) => this.onListClick(event));
    this.ui.more.addEventListener("click", () => {
      const next = this.shown;
      this.shown += PAGE_SIZE;
      this.render();
      // The keyboard goes on where the new ones start.
      this.ui.list.children[next]?.querySelector("button:not([hidden]):not(:disabled)")?.focus();
    });
    this.renderCounter();
  }

  /** The server's limits (GET /api/settings): the form holds no more than it accepts. */
  setLimits({ question, name }) {
    this.limits = { question, name };
    this.ui.text.maxLength = question;
    this.ui.name.maxLength = name;
    this.renderCounter();
  }

  // ---- following the space -----------------------------------------------------------------

  /** The space's details changed (or arrived): what may be done with questions now. */
  setSpace(space) {
    const first = this.spaceState === null;
    this.spaceState = space ? space.state : null;
    if (space && first) this.load();
    this.render();
  }

  /** The space is gone (not found): nothing to show. */
  clear() {
    this.spaceState = null;
    this.ui.card.hidden = true;
  }

  /** A `questions` event: the questions that changed, as views (or `{id, state}` if gone). */
  handle(data) {
    const views = Array.isArray(data?.questions) ? data.questions : [];
    if (this.missed) this.missed.push(...views);
    const before = this.pinned;
    for (const view of views) this.merge(view);
    this.render();
    this.announcePinned(before);
  }

  /** Events may have been missed (a new stream, a reset): read the list again. */
  resync() {
    // The first read, on its way since the details arrived, is already fresh enough.
    if (this.spaceState === null || (this.loading && !this.loadedOnce)) return;
    this.load();
  }

  /** Read the list again (events may have been missed, or are not arriving). */
  async load() {
    if (this.unavailable || !this.spaceId) return;
    if (this.loading) {
      this.loadAgain = true;
      return this.loading;
    }
    clearTimeout(this.retryTimer);
    this.missed = [];
    this.loading = (async () => {
      try {
        const body = await listQuestions(this.spaceId);
        const views = Array.isArray(body?.questions) ? body.questions : [];
        const missed = this.missed;
        const before = this.pinned;
        const known = this.questions;
        this.questions = new Map();
        for (const view of views) this.merge(view, known.get(view?.id));
        for (const view of missed) this.merge(view);
        this.loaded = true;
        this.loadFailures = 0;
        this.render();
        if (this.loadedOnce) this.announcePinned(before);
        this.loadedOnce = true;
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          this.unavailable = true; // a server without questions: the page goes on without
        } else {
          this.loadFailures += 1;
          const wait = Math.max(3, retryDelaySeconds(error, this.loadFailures));
          this.retryTimer = setTimeout(() => this.load(), wait * 1000);
        }
        this.render();
      } finally {
        this.missed = null;
        this.loading = null;
      }
      if (this.loadAgain) {
        this.loadAgain = false;
        this.load();
      }
    })();
    return this.loading;
  }

  /** Take in one view; `previous` is what was known before a fresh read. */
  merge(view, previous = this.questions.get(view?.id)) {
    if (!view || typeof view.id !== "string") return;
    if (!VISIBLE.has(view.state) || typeof view.text !== "string") {
      this.questions.delete(view.id); // hidden by a moderator, or withdrawn
      return;
    }
    const votes = Number(view.votes) || 0;
    // Votes only ever go up: an older copy (a read that crossed an event) never lowers them.
    const merged = { ...view, votes: previous ? Math.max(votes, previous.votes) : votes };
    this.questions.set(view.id, merged);
  }

  announcePinned(before) {
    if (this.pinned && this.pinned !== before) {
      const question = this.questions.get(this.pinned);
      if (question) this.say(`Now answering: ${question.text}`);
    }
  }

  say(text) {
    announce(this.ui.announce, text);
  }

  // ---- showing them ------------------------------------------------------------------------

  isMine(question) {
    if (Object.hasOwn(this.mine, question.id)) return true;
    const me = this.listenerId();
    return Boolean(me) && question.author_id === me;
  }

  render() {
    const { ui } = this;
    const ended = this.spaceState === "ended";
    // Over, and nothing was asked: nothing to show.
    const nothing = ended && this.loaded && this.questions.size === 0;
    ui.card.hidden = this.unavailable || this.spaceState === null || nothing;
    if (ui.card.hidden) return;
    ui.form.hidden = ended;
    const hint = {
      scheduled: "Ask ahead: the best questions rise to the top before it starts.",
      live: "Ask, or upvote the questions you want answered.",
      ended: "This space has ended: questions are closed.",
    }[this.spaceState];
    if (ui.hint.textContent !== hint) ui.hint.textContent = hint;

    const all = orderQuestions(this.questions.values());
    this.pinned = all.find((q) => q.pinned)?.id ?? null;
    ui.count.textContent = all.length ? `(${all.length})` : "";
    // A big space may have thousands: the best ones first, the rest on demand.
    const ordered = all.slice(0, this.shown);
    const left = all.length - ordered.length;
    ui.more.hidden = left <= 0;
    const more = `Show more questions (${left})`;
    if (ui.more.textContent !== more) ui.more.textContent = more;

    const focused = document.activeElement;
    const hadFocus = ui.list.contains(focused);
    const ids = new Set(ordered.map((q) => q.id));
    for (const [id, item] of this.items) {
      if (!ids.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    ordered.forEach((question, index) => {
      let item = this.items.get(question.id);
      if (!item) {
        item = fromTemplate(ui.template);
        item.dataset.id = question.id;
        this.items.set(question.id, item);
      }
      this.renderItem(item, question, ended);
      const here = ui.list.children[index];
      if (here !== item) ui.list.insertBefore(item, here ?? null);
    });
    // Moving an element blurs it: give the focus back to what had it.
    if (hadFocus && focused.isConnected && document.activeElement !== focused) {
      focused.focus({ preventScroll: true });
    }

    ui.empty.hidden = all.length > 0;
    ui.empty.textContent = !this.loaded
      ? this.loadFailures
        ? "Couldn't load the questions. Trying again…"
        : "Loading questions…"
      : ended
        ? "No questions were asked."
        : "No questions yet. Ask the first one!";
  }

  renderItem(item, question, ended) {
    const set = (selector, text) => {
      const element = item.querySelector(selector);
      if (element.textContent !== text) element.textContent = text;
      return element;
    };
    const mine = this.isMine(question);
    item.dataset.state = question.state;
    item.classList.toggle("is-pinned", Boolean(question.pinned));
    item.classList.toggle("is-mine", mine);
    const flag = set(
      ".question-flag",
      question.pinned ? "Now answering" : question.state === "answered" ? "Answered" : "",
    );
    flag.hidden = !flag.textContent;
    set(".question-text", question.text);
    const author = question.author_name || "Guest";
    set(".question-author", mine ? `${author} (you)` : author);

    const votes = question.votes;
    const voted = this.voted.has(question.id);
    const vote = item.querySelector(".vote");
    set(".vote-count", String(votes));
    const open = question.state === "open" && !ended;
    vote.disabled = !open || voted;
    vote.setAttribute("aria-pressed", String(voted));
    const count = `${votes} ${votes === 1 ? "vote" : "votes"}`;
    const label = voted ? `Upvoted, ${count}` : open ? `Upvote, ${count}` : count;
    if (vote.getAttribute("aria-label") !== label) vote.setAttribute("aria-label", label);

    const withdraw = item.querySelector(".withdraw");
    withdraw.hidden = !(mine && open);
  }

  renderCounter() {
    const used = length(this.ui.text.value);
    const most = this.limits.question;
    this.ui.counter.textContent = most ? `${used}/${most}` : String(used);
    this.ui.counter.classList.toggle("is-near", Boolean(most) && used > most - NEAR_THE_LIMIT);
  }

  status(text, { error = false } = {}) {
    // Good news is said, then goes; what went wrong stays until the next try.
    setStatus(this.ui.status, text, { error, clearAfter: error ? 0 : NEWS, repeat: true });
  }

  // ---- acting ------------------------------------------------------------------------------

  saveName({ tidy = true } = {}) {
    const trimmed = this.ui.name.value.trim();
    const name = this.limits.name ? trimmed.slice(0, this.limits.name) : trimmed;
    if (tidy && this.ui.name.value !== name) this.ui.name.value = name;
    storageSet("local", NAME_KEY, name || null);
  }

  async ask() {
    if (this.asking) return;
    const text = this.ui.text.value.trim();
    if (!text) {
      this.status("Write your question first.", { error: true });
      this.ui.text.focus();
      return;
    }
    const most = this.limits.question;
    if (most && length(text) > most) {
      this.status(`A question has at most ${most} characters.`, { error: true });
      return;
    }
    this.saveName();
    this.asking = true;
    this.ui.ask.disabled = true;
    this.status("Sending…");
    try {
      let used = null;
      const question = await this.withListener(
        (token) => {
          used = token;
          return askQuestion(this.spaceId, token, text);
        },
        { rename: true },
      );
      this.mine[question.id] = used;
      writeJson("session", this.mineKey, this.mine);
      this.merge(question);
      this.render();
      this.ui.text.value = "";
      this.renderCounter();
      this.status("Your question is in. Others can upvote it now.");
    } catch (error) {
      this.status(this.errorText("Couldn't send your question", error), { error: true });
    } finally {
      this.asking = false;
      this.ui.ask.disabled = false;
    }
  }

  onListClick(event) {
    const button = event.target.closest("button");
    const item = button?.closest(".question");
    if (!item || button.disabled) return;
    const id = item.dataset.id;
    if (button.classList.contains("vote")) this.vote(id);
    else if (button.classList.contains("withdraw")) this.withdraw(id, button);
  }

  async vote(id) {
    const question = this.questions.get(id);
    if (!question || this.voted.has(id)) return;
    // At once on the page; the answer (or the next event) has the real count.
    this.voted.add(id);
    question.votes += 1;
    this.render();
    const undo = (keepVote) => {
      const current = this.questions.get(id);
      if (current) current.votes = Math.max(0, current.votes - 1);
      if (!keepVote) this.voted.delete(id);
      this.render();
    };
    try {
      const view = await this.withListener((token) => voteQuestion(this.spaceId, token, id));
      if (view) {
        const current = this.questions.get(id);
        if (current) current.votes = Number(view.votes) || current.votes;
        this.merge(view);
        this.render();
      }
    } catch (error) {
      const again = error instanceof ApiError && error.status === 409;
      if (again && /already voted/i.test(error.message)) {
        undo(true); // counted before (from this tab): it stays counted once
      } else {
        undo(false);
        this.status(this.errorText("Couldn't upvote", error), { error: true });
      }
    } finally {
      writeJson("session", this.votesKey, [...this.voted]);
    }
  }

  async withdraw(id, button) {
    // Two taps: a question taken back cannot be put back.
    if (button.dataset.confirm !== "yes") {
      button.dataset.confirm = "yes";
      button.textContent = "Tap again to withdraw";
      setTimeout(() => {
        delete button.dataset.confirm;
        button.textContent = "Withdraw";
      }, 4000);
      return;
    }
    button.disabled = true;
    try {
      const token = this.mine[id];
      if (token) {
        await withdrawQuestion(this.spaceId, token, id);
      } else {
        await this.withListener((current) => withdrawQuestion(this.spaceId, current, id));
      }
      this.questions.delete(id);
      delete this.mine[id];
      writeJson("session", this.mineKey, this.mine);
      this.render();
      this.status("Your question was withdrawn.");
      this.ui.text.focus({ preventScroll: true });
    } catch (error) {
      button.disabled = false;
      this.status(this.errorText("Couldn't withdraw your question", error), { error: true });
    }
  }

  errorText(what, error) {
    const status = error instanceof ApiError ? error.status : -1;
    if (status === 0) return unreachableText(what);
    if (status === 429 || status === 503) {
      return `${what}: that was quick. Try again${retryInText(error)}.`;
    }
    return failedText(what, error);
  }
}
