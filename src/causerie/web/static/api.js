// The causerie HTTP API as the pages use it, and polite retrying.
//
// Under load the server answers 503 or 429 with Retry-After instead of queueing work; clients
// that retry at once, all together, would keep it overloaded. So every retry here waits: at least
// what Retry-After asks, plus exponential backoff with full jitter (a random delay between zero and
// the backoff), which spreads a crowd's retries out in time.

/** An HTTP answer that was not a success, with the API's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status; // 0 for a network error (no answer at all)
    this.code = code;
    this.retryAfter = retryAfter; // seconds, or null
  }

  /** Whether trying again later may work: overload, gateway trouble, or no answer. */
  get retryable() {
    return [0, 429, 502, 503, 504].includes(this.status);
  }
}

/** Seconds asked for by a Retry-After header (delta-seconds or HTTP-date), or null. */
export function retryAfterSeconds(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

/** Full-jitter backoff for the given attempt (0, 1, 2…): random in [0, min(cap, base·2^attempt)). */
export function backoffSeconds(attempt, { base = 0.5, cap = 30 } = {}) {
  return Math.random() * Math.min(cap, base * 2 ** attempt);
}

/** How long to wait before retry number `attempt` after `error`. */
export function retryDelaySeconds(error, attempt) {
  const jitter = backoffSeconds(attempt);
  return error.retryAfter != null ? error.retryAfter + jitter : jitter;
}

/** Resolve after `seconds`, or reject with an AbortError as soon as `signal` aborts. */
export function sleep(seconds, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, seconds * 1000);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/**
 * Call `attemptFn()` until it succeeds, waiting between tries as described above.
 * Gives up on errors that are not retryable, and when `signal` aborts.
 * `onRetry(error, attempt, delaySeconds)` is told about each wait (to show it to the listener).
 */
export async function withRetry(attemptFn, { signal, onRetry, maxAttempts = Infinity } = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await attemptFn();
    } catch (error) {
      if (!(error instanceof ApiError) || !error.retryable || attempt + 1 >= maxAttempts) {
        throw error;
      }
      const delay = retryDelaySeconds(error, attempt);
      onRetry?.(error, attempt, delay);
      await sleep(delay, signal);
    }
  }
}

/** The ApiError an HTTP answer that is not a success stands for (JSON or not). */
export async function errorFrom(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): the status says enough.
  }
  return new ApiError(
    response.status,
    body.error || "http_error",
    body.message || `The server answered ${response.status}.`,
    retryAfterSeconds(response.headers.get("Retry-After")),
  );
}

/** One API call, with a bearer token if given: resolves to the JSON body (null when empty);
 * rejects with an ApiError (status 0: the server could not be reached). Answers are not taken
 * from the browser's cache unless `cache` says otherwise (a fetch() cache mode). */
export async function callApi(method, url, { token, signal, json, cache = "no-store" } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, signal, cache };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, "network_error", "The server could not be reached.", null);
  }
  if (!response.ok) throw await errorFrom(response);
  // 202 and 204 may come without a body.
  const text = response.status === 204 ? "" : await response.text();
  return text ? JSON.parse(text) : null;
}

let settingsRead = null;

/**
 * The rules the server enforces and the pages show: {limits: {title, description, name,
 * question, capacity}, reactions: [{emoji, name}]}. Read once per page, retrying while the
 * server is busy; the browser may keep it (the server says for how long).
 */
export function getSettings() {
  settingsRead ??= withRetry(() => callApi("GET", "/api/settings", { cache: "default" }));
  return settingsRead;
}

const spaceUrl = (id) => `/api/spaces/${encodeURIComponent(id)}`;

/** The live and scheduled spaces: a list of Space objects. */
export async function listSpaces({ signal } = {}) {
  const body = await callApi("GET", "/api/spaces", { signal });
  return body.spaces;
}

/** One space's details (title, state, listeners_now, playlist_url…). */
export function getSpace(id, { signal } = {}) {
  return callApi("GET", spaceUrl(id), { signal });
}

/**
 * Join as a listener: {token, listener_id, playlist_url, heartbeat_interval, expires_at}, or,
 * when the space is full, {waiting: {ticket, position, estimated_wait_seconds, retry_after}}:
 * join again after `waitDelaySeconds(waiting)` with `ticket` to keep one's place in line.
 * `name` (optional) is the display name the token carries (shown with one's questions).
 * One try; see withRetry.
 */
export function joinSpace(id, { signal, name, ticket } = {}) {
  const body = {};
  if (name) body.name = name;
  if (ticket) body.ticket = ticket;
  const json = Object.keys(body).length ? body : undefined;
  return callApi("POST", `${spaceUrl(id)}/join`, { signal, json });
}

/**
 * How long to wait in line before asking again: full jitter over the server's `retry_after`
 * (a random time up to it), so people told the same thing do not all come back at once; never
 * less than half a second.
 */
export function waitDelaySeconds(waiting) {
  const most = Math.max(1, Number(waiting?.retry_after) || 1);
  return Math.max(0.5, Math.random() * most);
}

/** Tell the server this listener is still listening (what keeps the count honest). */
export function sendHeartbeat(id, token, { signal } = {}) {
  return callApi("POST", `${spaceUrl(id)}/heartbeat`, { token, signal });
}

/** Host or co-host: the space goes live. Resolves to the space's new details. */
export function startSpace(id, token, { signal } = {}) {
  return callApi("POST", `${spaceUrl(id)}/start`, { token, signal });
}

/** Host only: the space ends for everyone. Resolves to the space's new details. */
export function endSpace(id, token, { signal } = {}) {
  return callApi("POST", `${spaceUrl(id)}/end`, { token, signal });
}

// ---- the audience: questions, reactions, raised hands ----

const questionUrl = (id, questionId) =>
  `${spaceUrl(id)}/questions/${encodeURIComponent(questionId)}`;

/** The visible questions, in the API's order: {questions: [...]}. */
export function listQuestions(id, { signal } = {}) {
  return callApi("GET", `${spaceUrl(id)}/questions`, { signal });
}

/** Ask a question (at most the settings' `limits.question` characters): the new question. */
export function askQuestion(id, token, text, { signal } = {}) {
  return callApi("POST", `${spaceUrl(id)}/questions`, { token, signal, json: { text } });
}

/** Upvote a question (once per listener; 409 for a second time): the question, updated. */
export function voteQuestion(id, token, questionId, { signal } = {}) {
  return callApi("POST", `${questionUrl(id, questionId)}/votes`, { token, signal });
}

/** The author takes their question back. */
export function withdrawQuestion(id, token, questionId, { signal } = {}) {
  return callApi("DELETE", questionUrl(id, questionId), { token, signal });
}

/** React with one of the emoji the settings offer (while the space is live). */
export function sendReaction(id, token, emoji, { signal } = {}) {
  return callApi("POST", `${spaceUrl(id)}/reactions`, { token, signal, json: { emoji } });
}

/** Raise one's hand (ask to speak). Resolves to the space's details. */
export function raiseHand(id, token, name, { signal } = {}) {
  const json = name ? { name } : undefined;
  return callApi("POST", `${spaceUrl(id)}/speak-requests`, { token, signal, json });
}

/** Lower one's hand. */
export function lowerHand(id, token, { signal } = {}) {
  return callApi("DELETE", `${spaceUrl(id)}/speak-requests/me`, { token, signal });
}

/**
 * Follow a space's details: `onSpace(space)` with every new version, `onError(error)` when a
 * read fails (the last details stay valid). Returns `{stop(), refresh(), mode}`; `refresh()`
 * reads the details once, now.
 *
 * Live events first: one Server-Sent Events stream (GET …/events) that starts with a snapshot
 * of the space, then pushes every change (`space`: the full details) and the listener count
 * (`listeners`: merged into the last details). The browser reconnects by itself and resumes
 * where it left off (Last-Event-ID); a `reset` means events were lost: the details are read
 * again, once.
 *
 * Polling is the safety net whenever the stream is not delivering: a read every `interval`
 * seconds (backing off while the server has trouble) until the stream's first message, and
 * instead of the stream once it has failed: closed (an error status, a proxy that refuses it),
 * erroring `maxErrors` times in a row, or silent for over `silence` seconds without having
 * delivered anything. The stream is tried again after `retry` seconds or so (half to all of it,
 * at random), doubling up to `maxRetry`, and polling stops as soon as it delivers.
 *
 * The server's keep-alive comments are invisible to EventSource, so a quiet space looks like a
 * stalled connection: after `silence` seconds without a message, a stream that did deliver is
 * replaced by a fresh one (whose snapshot is the check); only one that never delivered fails.
 *
 * `mode` says how the details arrive: "connecting" (stream opening), "events", "polling" (the
 * stream failed), "stopped" (stop() called, or no such space).
 *
 * The same stream carries the audience's events: `options.on` maps an event type
 * ("questions", "reactions", "speaking") to a function given the event's data. As they are
 * not part of the details, `options.onResync()` is called whenever some of them may have been
 * missed: each time a stream delivers its snapshot (a new stream, or one that came back) and
 * on a reset. (While polling, they do not arrive at all: see `mode`.)
 */
export function watchSpace(id, onSpace, onError, options = {}) {
  const { interval = 5, silence = 40, retry = 30, maxRetry = 300, maxErrors = 3 } = options;
  const { on = {}, onResync = () => {} } = options;
  const controller = new AbortController();
  const { signal } = controller;
  const canStream = typeof EventSource === "function";
  let following = true; // false once stopped, or once the space is not found
  let last = null; // the details last given to onSpace
  let pushed = 0; // how many full details the stream has delivered
  let source = null; // the current EventSource
  let delivered = false; // … has delivered a message
  let errorsInRow = 0; // … error events without a message in between
  let streamFailures = 0; // streams that failed since one last delivered
  let pollFailures = 0;
  let reading = 0; // reads on their way
  let pollTimer = null;
  let pollIsGrace = false; // … is only there in case a new stream does not deliver
  let silenceTimer = null;
  let retryTimer = null;

  const streaming = () => source !== null && delivered;

  function deliver(space) {
    last = space;
    onSpace(space);
  }

  function schedulePoll(seconds, { grace = false } = {}) {
    clearTimeout(pollTimer);
    pollTimer = following ? setTimeout(refresh, seconds * 1000) : null;
    pollIsGrace = grace;
  }

  async function refresh() {
    clearTimeout(pollTimer);
    pollTimer = null;
    const seen = pushed;
    let wait = interval;
    reading += 1;
    try {
      const space = await getSpace(id, { signal });
      // Details pushed while this read was on its way are at least as fresh: keep those.
      if (pushed === seen) deliver(space);
      pollFailures = 0;
      if (!following && !signal.aborted) {
        following = true; // the space is back (a refresh after "not found")
        if (canStream) connect();
      }
    } catch (error) {
      if (signal.aborted) return;
      pollFailures += 1;
      onError(error);
      if (error instanceof ApiError && error.status === 404) {
        unfollow(); // nothing to follow
        return;
      }
      // Read again later even while streaming: a reset may be what asked for these details.
      schedulePoll(Math.max(interval, retryDelaySeconds(error, pollFailures)));
      return;
    } finally {
      reading -= 1;
    }
    if (!streaming()) schedulePoll(wait);
  }

  function closeSource() {
    source?.close();
    source = null;
    delivered = false;
    clearTimeout(silenceTimer);
  }

  function armSilence() {
    clearTimeout(silenceTimer);
    // ±10 %: streams opened together (after a restart, say) do not all renew together.
    const seconds = silence * (1 + 0.2 * Math.random());
    silenceTimer = setTimeout(() => (delivered ? connect() : fail()), seconds * 1000);
  }

  function parse(text) {
    try {
      const value = JSON.parse(text);
      return value && typeof value === "object" ? value : null;
    } catch {
      return null;
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    closeSource();
    if (!following) return;
    const stream = new EventSource(`${spaceUrl(id)}/events`);
    source = stream;
    errorsInRow = 0;

    // A message from the current stream: it works.
    const alive = () => {
      if (stream !== source) return false;
      delivered = true;
      errorsInRow = 0;
      streamFailures = 0;
      armSilence();
      return true;
    };
    const onDetails = (event) => {
      if (!alive()) return;
      const space = parse(event.data);
      if (!space) return;
      pushed += 1;
      clearTimeout(pollTimer); // the stream carries the details now
      pollTimer = null;
      deliver(space);
    };
    stream.addEventListener("snapshot", (event) => {
      onDetails(event);
      if (stream === source) onResync();
    });
    stream.addEventListener("space", onDetails);
    for (const [type, handler] of Object.entries(on)) {
      stream.addEventListener(type, (event) => {
        if (!alive()) return;
        const data = parse(event.data);
        if (data) handler(data);
      });
    }
    stream.addEventListener("listeners", (event) => {
      if (!alive()) return;
      const count = parse(event.data)?.listeners_now;
      if (last && Number.isFinite(count) && count !== last.listeners_now) {
        deliver({ ...last, listeners_now: count });
      }
    });
    stream.addEventListener("reset", () => {
      if (!alive()) return;
      refresh();
      onResync();
    });
    // The server pings every 15 s: a quiet space is not a dead connection.
    stream.addEventListener("ping", alive);
    stream.addEventListener("error", () => {
      if (stream !== source) return;
      if (stream.readyState === EventSource.CLOSED) {
        fail(); // an error status or the wrong type: the browser gave up
      } else if (++errorsInRow >= maxErrors) {
        fail(); // the browser keeps reconnecting, in vain
      }
    });
    armSilence();
    // Until the stream delivers (it may never, behind a proxy that buffers it), polling goes on.
    if (!pollTimer && !reading) schedulePoll(interval, { grace: true });
  }

  function fail() {
    closeSource();
    streamFailures += 1;
    const wait = Math.min(maxRetry, retry * 2 ** (streamFailures - 1));
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, wait * (0.5 + 0.5 * Math.random()) * 1000);
    // Read soon, something may have been missed (unless polling, or waiting after a failed
    // read, already goes on): at once if nothing is shown yet, else at random within
    // `interval`, so that a crowd whose streams dropped together (a restart) reads spread out.
    if (reading || (pollTimer && !pollIsGrace)) return;
    if (last) schedulePoll(Math.random() * interval);
    else refresh();
  }

  function unfollow() {
    following = false;
    closeSource();
    clearTimeout(pollTimer);
    clearTimeout(retryTimer);
    pollTimer = null;
  }

  if (canStream) connect();
  else refresh();
  return {
    stop() {
      controller.abort();
      unfollow();
    },
    refresh,
    get mode() {
      if (!following) return "stopped";
      if (streaming()) return "events";
      return streamFailures || !canStream ? "polling" : "connecting";
    },
  };
}
