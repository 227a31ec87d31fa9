// The causerie HTTP API as the listener pages use it, and polite retrying.
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

async function request(method, url, { token, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, { method, headers, signal, cache: "no-store" });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, "network_error", "The server could not be reached.", null);
  }
  if (response.ok) {
    return response.status === 204 ? null : response.json();
  }
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): the status says enough.
  }
  throw new ApiError(
    response.status,
    body.error || "http_error",
    body.message || `The server answered ${response.status}.`,
    retryAfterSeconds(response.headers.get("Retry-After")),
  );
}

const spaceUrl = (id) => `/api/spaces/${encodeURIComponent(id)}`;

/** The live and scheduled spaces: a list of Space objects. */
export async function listSpaces({ signal } = {}) {
  const body = await request("GET", "/api/spaces", { signal });
  return body.spaces;
}

/** One space's details (title, state, listeners_now, playlist_url…). */
export function getSpace(id, { signal } = {}) {
  return request("GET", spaceUrl(id), { signal });
}

/** Join as a listener: {token, playlist_url, heartbeat_interval}. One try; see withRetry. */
export function joinSpace(id, { signal } = {}) {
  return request("POST", `${spaceUrl(id)}/join`, { signal });
}

/** Tell the server this listener is still listening (what keeps the count honest). */
export function sendHeartbeat(id, token, { signal } = {}) {
  return request("POST", `${spaceUrl(id)}/heartbeat`, { token, signal });
}

/** Host or co-host: the space goes live. Resolves to the space's new details. */
export function startSpace(id, token, { signal } = {}) {
  return request("POST", `${spaceUrl(id)}/start`, { token, signal });
}

/** Host only: the space ends for everyone. Resolves to the space's new details. */
export function endSpace(id, token, { signal } = {}) {
  return request("POST", `${spaceUrl(id)}/end`, { token, signal });
}

/**
 * Follow a space's details: `onSpace(space)` on every update, `onError(error)` when a refresh
 * fails (the last details stay valid). Returns `{stop(), refresh()}`.
 *
 * Polls every `interval` seconds, backing off while the server has trouble. An SSE stream will
 * replace the polling; callers only see `onSpace`/`onError`, so they will not change.
 */
export function watchSpace(id, onSpace, onError, { interval = 5 } = {}) {
  const controller = new AbortController();
  let timer = null;
  let failures = 0;

  async function refresh() {
    clearTimeout(timer);
    let wait = interval;
    try {
      onSpace(await getSpace(id, { signal: controller.signal }));
      failures = 0;
    } catch (error) {
      if (controller.signal.aborted) return;
      failures += 1;
      onError(error);
      if (error instanceof ApiError && error.status === 404) return; // nothing to follow
      wait = Math.max(interval, retryDelaySeconds(error, failures));
    }
    if (!controller.signal.aborted) timer = setTimeout(refresh, wait * 1000);
  }

  refresh();
  return {
    stop() {
      controller.abort();
      clearTimeout(timer);
    },
    refresh,
  };
}

/** The listener counts and states, said the same way on every page. */
export function listenersText(count) {
  const n = Number(count) || 0;
  return `${n.toLocaleString()} listening now`;
}

/** What a role on stage is called on the pages. */
export function roleLabel(role) {
  return { host: "Host", cohost: "Co-host", speaker: "Speaker" }[role] || role;
}

export function stateLabel(state) {
  return { live: "Live", scheduled: "Scheduled", ended: "Ended" }[state] || state;
}

/** A start time as the listener's locale writes it, e.g. "Tue 5 Nov, 19:00". */
export function formatWhen(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
}
