// Reactions on a live space's page: a tray of emoji to send (the ones the server offers, from
// its settings), and everyone's reactions floating up.
//
// The server sums everyone's reactions and sends one `reactions` event a second:
// {counts: {emoji: n}, seconds: 1}. The page floats emoji in proportion, at most MAX_PER_SECOND
// of them (fewer, and without movement, for people who asked for reduced motion), spread over
// the second. One's own reactions float at once, on the press; the event that carries them
// later does not float them again.

import { ApiError, sendReaction } from "./api.js";
import { $, setStatus } from "./page.js";

const MAX_PER_SECOND = 30;
const MAX_PER_SECOND_REDUCED = 6;
const MAX_ON_SCREEN = 80;
const OWN_ECHO_SECONDS = 5; // how long one's own reaction waits to be found in an event
// Sending: a few a second with a small burst, a little under what the server allows (3/s,
// 10 at once), so that eager thumbs are slowed here rather than refused there.
const SEND_RATE = 3;
const SEND_BURST = 8;
const SAID_FOR = 4; // seconds a word about one's reactions stays

const reducedMotion = () => window.matchMedia?.("(prefers-reduced-motion: reduce)").matches;

/**
 * How many of each emoji to float for one event's counts: all of them up to `cap`, else each
 * in proportion (every emoji sent at least once shows at least once, while there is room).
 */
export function floatsFor(counts, cap = MAX_PER_SECOND) {
  const entries = Object.entries(counts || {})
    .map(([emoji, n]) => [emoji, Math.max(0, Math.floor(Number(n) || 0))])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  if (total <= cap) return entries;
  const out = [];
  let left = cap;
  for (const [emoji, n] of entries) {
    if (left <= 0) break;
    const share = Math.min(left, Math.max(1, Math.round((n * cap) / total)));
    out.push([emoji, share]);
    left -= share;
  }
  return out;
}

export class Reactions {
  /** `withListener(action)` runs `action(token)` with this page's listener token. */
  constructor({ spaceId, withListener }) {
    this.spaceId = spaceId;
    this.withListener = withListener;
    this.ui = {
      group: $("reactions"),
      tray: $("reaction-tray"),
      status: $("reaction-status"),
      layer: $("reaction-layer"),
    };
    this.live = false;
    this.own = []; // [{emoji, at}]: sent from here, not yet seen in an event
    this.tokens = SEND_BURST;
    this.refilled = performance.now();
    this.floated = 0; // how many have floated up (for tests and the curious)
  }

  /** The reactions on offer, [{emoji, name}] (the server's settings): one button each. */
  setChoices(reactions) {
    const buttons = reactions.map(({ emoji, name }) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "reaction";
      button.textContent = emoji;
      button.setAttribute("aria-label", name);
      button.title = name;
      button.dataset.emoji = emoji;
      button.addEventListener("click", () => this.send(emoji, button));
      button.addEventListener("animationend", () => button.classList.remove("is-sent"));
      return button;
    });
    this.ui.tray.replaceChildren(...buttons);
  }

  setLive(live) {
    this.live = live;
    this.ui.group.hidden = !live;
    if (!live) {
      this.ui.layer.replaceChildren();
      this.own = [];
    }
  }

  /** A `reactions` event: everyone's reactions of the last second(s). */
  handle(data) {
    if (!this.live) return;
    const counts = { ...(data?.counts || {}) };
    // One's own reactions already floated when they were sent.
    const now = performance.now();
    this.own = this.own.filter((own) => now - own.at < OWN_ECHO_SECONDS * 1000);
    this.own = this.own.filter((own) => {
      if ((counts[own.emoji] || 0) > 0) {
        counts[own.emoji] -= 1;
        return false;
      }
      return true;
    });
    if (document.hidden) return; // nobody is looking: no animations piling up
    const reduced = reducedMotion();
    const spread = Math.min(2, Math.max(0.5, Number(data?.seconds) || 1)) * 1000;
    for (const [emoji, n] of floatsFor(counts, reduced ? MAX_PER_SECOND_REDUCED : MAX_PER_SECOND)) {
      for (let i = 0; i < n; i++) this.float(emoji, Math.random() * spread);
    }
  }

  float(emoji, delay = 0) {
    setTimeout(() => {
      const { layer } = this.ui;
      if (!this.live || layer.childElementCount >= MAX_ON_SCREEN) return;
      const element = document.createElement("span");
      element.className = "reaction-float";
      element.textContent = emoji;
      element.style.setProperty("--x", `${Math.round(Math.random() * 75)}%`);
      element.style.setProperty("--y", `${Math.round(10 + Math.random() * 70)}%`);
      element.style.setProperty("--drift", `${Math.round((Math.random() - 0.5) * 40)}px`);
      element.style.setProperty("--duration", `${(2.2 + Math.random() * 1.2).toFixed(2)}s`);
      element.style.setProperty("--size", `${(1.5 + Math.random() * 0.6).toFixed(2)}rem`);
      const remove = () => element.remove();
      element.addEventListener("animationend", remove);
      setTimeout(remove, 5000); // in case the animation never runs (hidden tab, no CSS)
      layer.append(element);
      this.floated += 1;
    }, delay);
  }

  /** Whether one more reaction may go now (a token bucket: SEND_RATE a second, SEND_BURST). */
  take() {
    const now = performance.now();
    this.tokens = Math.min(SEND_BURST, this.tokens + ((now - this.refilled) / 1000) * SEND_RATE);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  say(text) {
    setStatus(this.ui.status, text, { clearAfter: SAID_FOR, repeat: true });
  }

  async send(emoji, button) {
    if (!this.live) return;
    if (!this.take()) {
      this.say("Easy there: a few a second is plenty.");
      return;
    }
    button.classList.remove("is-sent");
    void button.offsetWidth; // restart the press animation
    button.classList.add("is-sent");
    const own = { emoji, at: performance.now() };
    this.own.push(own);
    this.float(emoji);
    try {
      await this.withListener((token) => sendReaction(this.spaceId, token, emoji));
    } catch (error) {
      this.own = this.own.filter((item) => item !== own);
      const status = error instanceof ApiError ? error.status : -1;
      if (status === 429) {
        this.tokens = 0;
        this.say("Easy there: a few a second is plenty.");
      } else if (status === 409) {
        this.say("Reactions are open while the space is live.");
      } else if (status === 0) {
        this.say("Couldn't send your reaction: the server could not be reached.");
      } else {
        this.say("Couldn't send your reaction.");
      }
    }
  }
}
