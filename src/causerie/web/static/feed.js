// A listener's live events, from the feed every listener of a space reads alike (api/feed.py):
//
//   GET /feed/{space}/now          {"window": n, "seconds": W, …}: the window in progress
//   GET /feed/{space}/{n}.ndjson   window n: one event a line as it is published, streamed while
//                                  the window is open; last line {"type": "end", "next": n + 1}
//
// Every listener fetches the same objects, so edges collapse them into one request to a node
// per window, and a listener costs one request per window (15 s). Hosts, co-hosts and speakers
// keep their own Server-Sent Events stream (watchSpace in api.js).

import { ApiError, backoffSeconds, errorFrom } from "./api.js";

/** Event types that carry a state (the latest wins), rather than a change to add up. */
const STATES = new Set(["space", "listeners", "speaking", "stats"]);
const SEEN_KEPT = 4000; // event keys remembered, to drop repeats (a window read again)
const SILENCE_SECONDS = 20; // an open window sends a line at least every 5 s (empty when quiet)
const GRACE_SECONDS = 1; // a window is closed this long after its end (node/feed.py)

const spaceUrl = (id) => `/api/spaces/${encodeURIComponent(id)}`;
const feedUrl = (id, name) => `/feed/${encodeURIComponent(id)}/${name}`;

/** Each line of a newline-delimited JSON body as it arrives, parsed; empty lines skipped.
 * `onBytes()` is called whenever bytes arrive (empty lines too: the stream is alive). */
export async function* ndjsonLines(body, onBytes = () => {}) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      onBytes();
      pending += decoder.decode(value, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop();
      for (const line of lines) {
        if (!line.trim()) continue; // what an open window sends while it is quiet
        try {
          yield JSON.parse(line);
        } catch {
          // Not an event (a proxy's garbage): skipped.
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * One read of a space's details: `{space, at}`, `at` being when the node made them (its `Date`
 * header, in ms by its clock; -Infinity without one). An edge may answer with a copy a little
 * old: `at` says how old, so events newer than the copy are still applied over it.
 */
export async function readDetails(id, { signal } = {}) {
  let response;
  try {
    response = await fetch(spaceUrl(id), {
      headers: { Accept: "application/json" },
      cache: "no-store",
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, "network_error", "The server could not be reached.", null);
  }
  if (!response.ok) throw await errorFrom(response);
  const made = Date.parse(response.headers.get("Date") || "");
  return { space: await response.json(), at: Number.isFinite(made) ? made : -Infinity };
}

/**
 * Follow a space for a listener: `onSpace(space)` with every new version of its details,
 * `onError(error)` when reading them fails (the last details stay valid). Returns
 * `{stop(), refresh(), mode, clockOffset}`; `refresh()` reads the details once, now.
 *
 * The details are read once, then the feed takes over: the window in progress, then each next
 * one, fetched as soon as the current one's end time passes (the node accepts one window ahead,
 * so a fast clock costs nothing), or when its end line comes, whichever is first. Every event
 * is applied once (its id and time are its key: a window read again repeats nothing), in
 * order; a state event (space, listeners, speaking, stats) older than the details shown, or
 * than the last one of its kind, is skipped.
 *
 * - A window whose stream breaks off (a restart, a proxy's timeout) or fails is fetched again
 *   after a growing, jittered wait (`retry` seconds doubling up to `maxRetry`, counted over the
 *   whole feed, so an outage costs a request every `maxRetry` seconds or so). One that still
 *   fails once the window after it is over is given up: what it held is read again instead.
 * - 410 (the window is no longer kept: the page fell far behind, or the node lost it) and a
 *   `reset` line (events before it may be missing: the node started during the window): the
 *   details are read again, `options.onResync()` is called, and the feed goes on from the
 *   window in progress.
 * - While the feed fails, the details are polled every `interval` seconds (backing off while
 *   that fails too), until a window delivers again.
 *
 * `options.on` maps an event type ("questions", "reactions", "speaking", "run", …) to a function
 * given the event's data and the event itself (`{id, type, at, data}`; `at` in Unix seconds by
 * the node's clock). `mode`: "connecting", "events" (the feed delivers), "polling" (it fails),
 * "stopped" (stop() called, or no such space). `clockOffset`: the node's clock minus this
 * one's, in milliseconds, as far as the feed tells (to within about a second).
 */
export function followSpace(id, onSpace, onError, options = {}) {
  const { interval = 5, retry = 1, maxRetry = 30, silence = SILENCE_SECONDS } = options;
  const { on = {}, onResync = () => {} } = options;
  const controller = new AbortController();
  const { signal } = controller;
  let following = true;
  let last = null; // the details last given to onSpace
  let detailsAt = -Infinity; // when the node made them (ms, its clock)
  let clockOffset = 0;
  let seconds = 15; // how long a window lasts (the node says)
  let feedFailures = 0; // failures since a window last delivered
  let delivering = false;
  let pollTimer = null;
  let pollFailures = 0;
  let generation = 0; // bumped when the feed starts over: readers of older windows stop
  let goneBelow = -Infinity; // windows below this one answered 410: never asked for again
  let resetSeen = -Infinity; // the latest reset line acted on (its `at`, ms)
  const windows = new Map(); // window number → {controller, next}
  const stateAt = new Map(); // state event type → `at` of the last one applied (ms)
  const seen = new Set();
  const nodeNow = () => Date.now() + clockOffset;
  const windowEnd = (number) => (number + 1) * seconds * 1000;

  function deliver(space) {
    last = space;
    onSpace(space);
  }

  async function refresh() {
    try {
      const read = await readDetails(id, { signal });
      detailsAt = Math.max(detailsAt, read.at);
      pollFailures = 0;
      deliver(read.space);
      return true;
    } catch (error) {
      if (signal.aborted) return false;
      pollFailures += 1;
      onError(error);
      if (error instanceof ApiError && error.status === 404) unfollow(); // nothing to follow
      return false;
    }
  }

  // Polling: while the feed fails, and until the details have been read once.
  const polling = () => following && (!delivering || !last);

  function schedulePoll() {
    if (pollTimer || !polling()) return;
    const wait = Math.max(interval, backoffSeconds(pollFailures, { base: interval, cap: 60 }));
    pollTimer = setTimeout(
      async () => {
        pollTimer = null;
        if (!polling()) return;
        await refresh();
        schedulePoll();
      },
      wait * (0.8 + 0.4 * Math.random()) * 1000,
    );
  }

  function stopPolling() {
    if (polling()) return;
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function resync() {
    await refresh();
    onResync();
  }

  function apply(event) {
    if (!event || typeof event.type !== "string") return;
    const at = Number(event.at) * 1000;
    if (event.type === "reset") {
      // Events before this line may be missing: details made since are complete (and so are
      // those read after the line came: a window read again repeats it).
      if (!(detailsAt >= at) && at > resetSeen) {
        resetSeen = at;
        resync();
      }
      return;
    }
    const key = `${event.id}@${event.at}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (seen.size > SEEN_KEPT) seen.delete(seen.values().next().value);
    if (STATES.has(event.type)) {
      // A window replays from its start: a state the details already include is old news.
      if (at < detailsAt || at < (stateAt.get(event.type) ?? -Infinity)) return;
      stateAt.set(event.type, at);
    }
    const data = event.data && typeof event.data === "object" ? event.data : {};
    if (event.type === "space") {
      deliver(data);
    } else if (event.type === "listeners") {
      const count = data.listeners_now;
      if (last && Number.isFinite(count) && count !== last.listeners_now) {
        deliver({ ...last, listeners_now: count });
      }
    }
    on[event.type]?.(data, event);
  }

  /** A failure: poll meanwhile; resolves after the wait before the next try. */
  function failed(error) {
    delivering = false;
    const wait = Math.min(maxRetry, retry * 2 ** Math.min(feedFailures, 10));
    feedFailures += 1;
    schedulePoll();
    const delay = (error?.retryAfter ?? 0) + wait * (0.5 + 0.5 * Math.random());
    return new Promise((resolve) => setTimeout(resolve, delay * 1000));
  }

  function delivered() {
    delivering = true;
    feedFailures = 0;
    stopPolling();
  }

  /** Find the window in progress and read on from it. */
  async function follow() {
    const mine = generation;
    while (following && mine === generation) {
      try {
        const response = await fetch(feedUrl(id, "now"), { signal });
        if (!response.ok) throw await errorFrom(response);
        const now = await response.json();
        if (Number(now.seconds) > 0) seconds = Number(now.seconds);
        if (!Number.isInteger(now.window)) throw new ApiError(502, "bad_feed", "No window.", null);
        // After a 410 for the window in progress (the node's backlog has a gap there), the next
        // one: the node takes a request one window ahead and answers as it begins.
        const number = Math.max(now.window, goneBelow);
        // The node's clock is within that window (give or take the second it may be cached).
        const local = Date.now();
        const [low, high] = [now.window * seconds * 1000 - 1000, windowEnd(now.window) + 1000];
        if (local + clockOffset < low) clockOffset = low - local;
        if (local + clockOffset > high) clockOffset = high - local;
        if (following && mine === generation) openWindow(number);
        return;
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError && error.status === 404 && !last) await refresh();
        await failed(error);
      }
    }
  }

  function startOver() {
    generation += 1;
    for (const number of [...windows.keys()]) closeWindow(number);
    follow();
  }

  function openWindow(number) {
    if (!following || windows.has(number)) return;
    const open = { controller: new AbortController(), next: null };
    windows.set(number, open);
    // The next window as soon as this one's time is over, by the node's clock.
    const delay = Math.max(0, windowEnd(number) - nodeNow());
    open.next = setTimeout(() => openWindow(number + 1), delay);
    readWindow(number, open);
  }

  function closeWindow(number) {
    const open = windows.get(number);
    if (!open) return;
    clearTimeout(open.next);
    open.controller.abort();
    windows.delete(number);
  }

  async function readWindow(number, open) {
    const mine = generation;
    const current = () => following && mine === generation && windows.get(number) === open;
    while (current()) {
      let silenceTimer = null;
      const stream = new AbortController();
      const abort = () => stream.abort();
      open.controller.signal.addEventListener("abort", abort, { once: true });
      // A stream that goes quiet for longer than the node ever is (a proxy holding it) is
      // given up and asked for again.
      const alive = () => {
        clearTimeout(silenceTimer);
        silenceTimer = setTimeout(abort, silence * 1000 * (1 + 0.2 * Math.random()));
      };
      try {
        alive();
        const response = await fetch(feedUrl(id, `${number}.ndjson`), { signal: stream.signal });
        if (response.status === 410) {
          if (!current()) return;
          goneBelow = Math.max(goneBelow, number + 1);
          await resync();
          if (!current()) return;
          // On from a later window already open, else from the window in progress.
          if ([...windows.keys()].some((other) => other > number)) closeWindow(number);
          else startOver();
          return;
        }
        if (!response.ok) throw await errorFrom(response);
        delivered();
        const askedWhileOpen = nodeNow() < windowEnd(number);
        let ended = null;
        for await (const event of ndjsonLines(response.body, alive)) {
          if (!current()) return;
          if (event?.type === "end") {
            ended = event;
            break;
          }
          apply(event);
        }
        if (ended) {
          if (askedWhileOpen) {
            // The node ends a window GRACE_SECONDS after its time, within its next half second
            // or so: a reading of its clock good to about a second.
            const estimate = windowEnd(number) + GRACE_SECONDS * 1000 + 250 - Date.now();
            if (Math.abs(estimate - clockOffset) > 1000) clockOffset = estimate;
          }
          closeWindow(number);
          openWindow(Number.isInteger(ended.next) ? ended.next : number + 1);
          return;
        }
        if (!current()) return;
        throw new ApiError(0, "feed_cut", "The window's stream broke off.", null);
      } catch (error) {
        if (!current()) return;
        if (nodeNow() > windowEnd(number + 1)) {
          // Even the window after it is over: what it held is read again instead.
          closeWindow(number);
          failed(error);
          resync();
          return;
        }
        await failed(error);
      } finally {
        clearTimeout(silenceTimer);
        open.controller.signal.removeEventListener("abort", abort);
      }
    }
  }

  function unfollow() {
    following = false;
    delivering = false;
    clearTimeout(pollTimer);
    pollTimer = null;
    for (const number of [...windows.keys()]) closeWindow(number);
  }

  // Details first, then the feed: the window in progress began before they were read, so
  // nothing published meanwhile is missed.
  refresh().then((read) => {
    if (!following) return;
    if (!read) schedulePoll();
    follow();
  });

  return {
    stop() {
      unfollow();
      controller.abort();
    },
    refresh,
    get mode() {
      if (!following) return "stopped";
      if (delivering) return "events";
      return feedFailures ? "polling" : "connecting";
    },
    get clockOffset() {
      return clockOffset;
    },
  };
}
