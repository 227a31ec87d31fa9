// Live caption lines, shown in step with what the listener hears.
//
// A `caption` live event carries `{text, start, end}`, and `final: false` for an interim line
// (absent: final). `start` and `end` are program time, wall-clock Unix seconds (the clock of
// the live playlist's PROGRAM-DATE-TIME and of the DASH timeline), so a line is shown when the
// audio playing reaches `start`, whatever the listener's delay behind live
// (Player.playingAt). A line that arrives after its audio was heard is shown at once; so is
// every line while nothing plays. An interim line is replaced by the next line. Text goes into
// the page as text, never as HTML.

/** Lines shown at once (the latest). */
export const SHOWN = 2;
/** A line further ahead of the audio than this is not waited for (a clock gone wrong). */
const MOST_AHEAD_SECONDS = 30;
const KEPT = 20;

/** A caption line from an event's data, or null if it is not one. */
export function captionFrom(data) {
  const text = typeof data?.text === "string" ? data.text.replace(/\s+/g, " ").trim() : "";
  const start = Number(data?.start);
  const end = Number(data?.end);
  if (!text || !Number.isFinite(start)) return null;
  return { text, start, end: Number.isFinite(end) ? end : start, final: data.final !== false };
}

/** Whether a space's details say that caption events come now (`captions_state` "on": the
 * host wants them and the server makes them); then the toggle is offered at once. */
export function captionsOn(space) {
  return space?.captions_state === "on";
}

/** The caption lines of one player, written into `box` (one <p> a line). */
export class CaptionLines {
  /** `playingAt()`: when the audio playing now was live (ms since the epoch), or null. */
  constructor(box, { playingAt = () => null, shown = SHOWN } = {}) {
    this.box = box;
    this.playingAt = playingAt;
    this.shown = shown;
    this.lines = []; // final lines, oldest first
    this.interim = null;
    this.timer = null;
    this.rendered = "";
  }

  /** A `caption` event's data. Returns the line, or null if it was not one. */
  add(data) {
    const line = captionFrom(data);
    if (!line) return null;
    if (line.final) {
      this.lines.push(line);
      this.lines.sort((a, b) => a.start - b.start);
      if (this.lines.length > KEPT) this.lines.splice(0, this.lines.length - KEPT);
      this.interim = null;
    } else {
      this.interim = line;
    }
    this.render();
    return line;
  }

  /** Forget every line (the space ended, the listener turned captions off). */
  clear() {
    this.lines = [];
    this.interim = null;
    this.render();
  }

  /** Whether a line is due: its audio is playing or past, or nothing plays. */
  due(line) {
    const at = this.playingAt();
    if (at == null) return true;
    const heard = at / 1000;
    return line.start <= heard || line.start - heard > MOST_AHEAD_SECONDS;
  }

  render() {
    const due = this.lines.filter((line) => this.due(line)).slice(-this.shown);
    const last = due.at(-1);
    if (this.interim && this.due(this.interim) && !(last && this.interim.start < last.end)) {
      due.push(this.interim);
      if (due.length > this.shown) due.shift();
    }
    const key = JSON.stringify(due.map((line) => [line.start, line.text, line.final]));
    if (key !== this.rendered) {
      this.rendered = key;
      this.box.replaceChildren(
        ...due.map((line) => {
          const p = document.createElement("p");
          p.textContent = line.text;
          if (!line.final) p.className = "is-interim";
          return p;
        }),
      );
    }
    // Lines still ahead of the audio: look again soon.
    const ahead = (line) => line && !this.due(line);
    const waiting = this.lines.some(ahead) || ahead(this.interim);
    if (waiting && !this.timer) {
      this.timer = setInterval(() => this.render(), 200);
    } else if (!waiting && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
