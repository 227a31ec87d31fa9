// Captions on the listener page: the live lines, in step with what the listener hears, and the
// transcript of the replay.
//
// A caption line comes with the space's other live events (a `caption` event, feed.js) and
// carries the program time of its words: `start` and `end`, Unix seconds by the node's clock,
// the clock of the stream's PROGRAM-DATE-TIME. The player says when what it plays was live
// (`playingAt()`, player.js), so a line is shown when the audio reaches it; one that arrives
// after its audio (the usual case: a line is made after its words were said) is shown at once.
// Text goes into the page as text, never as HTML.

import { setText, storageGet, storageSet } from "./page.js";

const KEY = "causerie.captions";
const SHOWN = 2; // lines on screen
const LINGER_MS = 6000; // a line stays this long after its end, unless replaced
const KEPT = 50;

/** The live captions: a switch, and the last lines heard. */
export class LiveCaptions {
  constructor({ root, button, status, lines, playingAt }) {
    Object.assign(this, { root, button, status, lines, playingAt });
    this.enabled = storageGet("local", KEY) === "on";
    this.queue = []; // {start, end, text}, ms, in time order
    this.available = false;
    button.addEventListener("click", () => this.toggle());
    this._timer = setInterval(() => this.render(), 250);
    this._show();
  }

  /** The space's details: whether it has captions, and in what state. */
  setSpace(space) {
    const live = space?.state === "live";
    this.available = live && Boolean(space.captions);
    this.root.hidden = !this.available;
    const state = space?.captions_state;
    let text = "";
    if (this.available && state === "unavailable") text = "Captions aren't available right now.";
    else if (this.available && state === "waiting") text = "Captions are starting…";
    setText(this.status, this.enabled ? text : "");
    if (!live) this.queue = [];
    this.render();
  }

  /** A `caption` event's data. */
  handle(data) {
    const start = Number(data?.start) * 1000;
    const end = Number(data?.end) * 1000;
    if (!Number.isFinite(start) || !Number.isFinite(end) || typeof data.text !== "string") return;
    this.queue.push({ start, end, text: data.text });
    this.queue.sort((a, b) => a.start - b.start);
    if (this.queue.length > KEPT) this.queue.splice(0, this.queue.length - KEPT);
    this.render();
  }

  toggle() {
    this.enabled = !this.enabled;
    storageSet("local", KEY, this.enabled ? "on" : "off");
    this._show();
  }

  /** The lines whose audio has been heard (all, when nothing plays), the latest last. */
  current(now = this.playingAt()) {
    const heard = now == null ? this.queue : this.queue.filter((line) => line.start <= now);
    const recent = heard.slice(-SHOWN);
    if (now == null) return recent;
    return recent.filter((line, i) => i === recent.length - 1 || line.end + LINGER_MS > now);
  }

  render() {
    if (!this.enabled || !this.available) return;
    const shown = this.current();
    const key = shown.map((line) => `${line.start}`).join(",");
    if (key === this._key) return;
    this._key = key;
    this.lines.replaceChildren(
      ...shown.map((line) => {
        const p = document.createElement("p");
        p.textContent = line.text;
        return p;
      }),
    );
  }

  _show() {
    this.button.setAttribute("aria-pressed", String(this.enabled));
    this.lines.hidden = !this.enabled;
    this._key = null;
    if (this.enabled) this.render();
  }
}

function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

/** The transcript beside the replay: click a line to play from it; the line playing is marked. */
export class Transcript {
  constructor({ root, list, vtt, txt, audio, onSeek }) {
    Object.assign(this, { root, list, vtt, txt, audio, onSeek });
    this.url = null;
    this.cues = [];
    this.current = -1;
    audio.addEventListener("timeupdate", () => this.follow());
    audio.addEventListener("seeked", () => this.follow());
  }

  /** The space's details: load the transcript once it exists. */
  setSpace(space) {
    const url = space?.state === "ended" ? space.transcript_url : null;
    this.root.hidden = !url;
    if (url === this.url) return;
    this.url = url;
    this.cues = [];
    this.list.replaceChildren();
    if (url) this.load(url);
  }

  async load(url, attempt = 0) {
    const base = url.replace(/\.vtt$/, "");
    this.vtt.href = url;
    this.txt.href = `${base}.txt`;
    try {
      const response = await fetch(`${base}.json`);
      if (response.status === 409 && attempt < 60) {
        // The last lines are still being made: the node says when to ask again.
        const wait = Number(response.headers.get("Retry-After")) || 1;
        setTimeout(() => this.url === url && this.load(url, attempt + 1), wait * 1000);
        return;
      }
      if (!response.ok) throw new Error(String(response.status));
      const body = await response.json();
      if (this.url !== url) return;
      this.cues = Array.isArray(body.cues) ? body.cues : [];
    } catch {
      if (this.url === url) this.root.hidden = true;
      return;
    }
    this.list.replaceChildren(...this.cues.map((cue, i) => this._item(cue, i)));
    this.follow();
  }

  _item(cue, index) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    const time = document.createElement("time");
    time.textContent = clock(cue.start);
    const text = document.createElement("span");
    text.textContent = cue.text;
    button.append(time, text);
    button.addEventListener("click", () => this.seek(cue.start));
    item.dataset.index = String(index);
    item.append(button);
    return item;
  }

  /** Play from `seconds` into the replay. */
  seek(seconds) {
    this.onSeek?.(seconds);
    this.audio.currentTime = seconds;
    this.audio.play().catch(() => {});
  }

  follow() {
    const now = this.audio.currentTime;
    let index = -1;
    for (let i = 0; i < this.cues.length && this.cues[i].start <= now + 0.05; i += 1) index = i;
    if (index === this.current) return;
    this.list.children[this.current]?.classList.remove("is-current");
    this.current = index;
    const item = this.list.children[index];
    if (!item) return;
    item.classList.add("is-current");
    if (!this.audio.paused) item.scrollIntoView({ block: "nearest" });
  }
}
