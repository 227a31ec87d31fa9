// What every page shares: reaching and filling elements, status lines, the tokens kept in the
// browser, and how numbers, times, states and failures are said.
//
// Text that comes from the API (titles, names, messages) only ever goes into a page as text
// (textContent), never as HTML.

import { ApiError } from "./api.js";

// ---- elements -------------------------------------------------------------------------------

export const $ = (id) => document.getElementById(id);

/** Set an element's text; only touch the DOM when it changes, so that aria-live regions speak
 * real changes. */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/** Seconds good news stays on a status line (what went wrong stays until the next try). */
export const NEWS = 8;

const statusTimers = new WeakMap();

/**
 * A status line: `error` styles it as one; after `clearAfter` seconds (if given) it clears
 * itself, unless something else was said meanwhile. With `repeat`, the same words said again
 * are written again (and so announced again by screen readers).
 */
export function setStatus(element, text, { error = false, clearAfter = 0, repeat = false } = {}) {
  clearTimeout(statusTimers.get(element));
  if (repeat) element.textContent = text;
  else setText(element, text);
  element.classList.toggle("is-error", error);
  if (clearAfter && text) {
    const timer = setTimeout(() => {
      if (element.textContent === text) setStatus(element, "");
    }, clearAfter * 1000);
    statusTimers.set(element, timer);
  }
}

/** Say `text` in an aria-live region; cleared first, so the same words said twice are
 * announced twice. */
export function announce(element, text) {
  element.textContent = "";
  setTimeout(() => {
    element.textContent = text;
  }, 50);
}

/** A new element with a class and some text (as text, never HTML). */
export function element(tag, className = "", text = "") {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text) made.textContent = text;
  return made;
}

/** A "Copy" button for a read-only field: copies its value, or selects it to be copied by hand. */
export function copyOnClick(button, field) {
  const label = button.textContent;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      setText(button, "Copied");
    } catch {
      field.select();
    }
    setTimeout(() => setText(button, label), 2000);
  });
}

/** A copy of a <template>'s first element. */
export function fromTemplate(template) {
  return template.content.firstElementChild.cloneNode(true);
}

/** A stable colour (a hue, 0–359) for a person's initial, from their id. */
export function hue(text) {
  let h = 0;
  for (const char of String(text)) h = (h * 31 + char.codePointAt(0)) % 360;
  return h;
}

/** An avatar: the person's initial on their colour. */
export function fillAvatar(element, person) {
  const name = String(person.name ?? "");
  element.textContent = (Array.from(name.trim())[0] || "?").toUpperCase();
  element.style.setProperty("--hue", String(hue(person.id || person.user_id || name)));
}

/** One person on stage, from the pages' `#person` template: avatar, name (with " (you)" for
 * oneself), role, and whether they are muted. */
export function personItem(template, person, { you = false } = {}) {
  const item = fromTemplate(template);
  const name = String(person.name ?? "");
  fillAvatar(item.querySelector(".avatar"), person);
  item.querySelector(".person-name").textContent = you ? `${name} (you)` : name;
  item.querySelector(".person-role").textContent = roleLabel(person.role);
  item.querySelector(".person-muted").hidden = !person.muted;
  // Their audio connection dropped; their page is bringing it back (a `space` event says so).
  item.querySelector(".person-reconnecting").hidden = !person.reconnecting;
  item.dataset.role = person.role;
  item.dataset.id = String(person.id ?? "");
  return item;
}

/** The space's id from the address (`pattern` captures it), or ?id= when the page is opened as
 * a plain file. */
export function spaceIdFromLocation(pattern) {
  const match = location.pathname.match(pattern);
  if (match) return decodeURIComponent(match[1]);
  return new URLSearchParams(location.search).get("id");
}

// ---- what the browser keeps -----------------------------------------------------------------
//
// `kind` is "local" (every tab, until removed) or "session" (this tab). Storage may be disabled
// (private modes, settings): then nothing is kept and pages work for as long as they are open.

function storage(kind) {
  return kind === "local" ? window.localStorage : window.sessionStorage;
}

export function storageGet(kind, key) {
  try {
    return storage(kind).getItem(key);
  } catch {
    return null;
  }
}

/** Keep `value` under `key`; null or undefined removes it. */
export function storageSet(kind, key, value) {
  try {
    if (value == null) storage(kind).removeItem(key);
    else storage(kind).setItem(key, value);
  } catch {
    // Not kept: it lasts as long as the page.
  }
}

export function readJson(kind, key, fallback) {
  try {
    return JSON.parse(storageGet(kind, key)) ?? fallback;
  } catch {
    return fallback;
  }
}

export function writeJson(kind, key, value) {
  storageSet(kind, key, JSON.stringify(value));
}

// The tokens: an account's (the studio's sign-in), a space's host link, a listener's.

export const ACCOUNT_KEY = "causerie.account";
const hostKey = (spaceId) => `causerie.host.${spaceId}`;
const listenerKey = (spaceId) => `causerie.listener.${spaceId}`;

/** The host token kept for a space in this tab (a host link's), or null. */
export function keptHostToken(spaceId) {
  return storageGet("session", hostKey(spaceId));
}

/** Keep a space's host token in this tab; null forgets it. */
export function keepHostToken(spaceId, token) {
  storageSet("session", hostKey(spaceId), token);
}

/**
 * The listener's session for a space in this tab, as the listener page keeps it:
 * {token, listenerId, expiresAt, heartbeatInterval, playlistUrl, name, joinedAt}, or null.
 */
export function readListenerSession(spaceId) {
  const value = readJson("session", listenerKey(spaceId), null);
  return value && typeof value.token === "string" ? value : null;
}

/** Keep the listener's session for a space in this tab; null forgets it. */
export function keepListenerSession(spaceId, session) {
  if (session) writeJson("session", listenerKey(spaceId), session);
  else storageSet("session", listenerKey(spaceId), null);
}

/** What a token says about its holder (its payload), without checking it: {sub, name, exp…}. */
export function tokenClaims(token) {
  const part = String(token || "").split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(base64 + "=".repeat(-base64.length & 3)), (c) =>
      c.charCodeAt(0),
    );
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims.sub === "string" ? claims : null;
  } catch {
    return null;
  }
}

// ---- spaces ---------------------------------------------------------------------------------

/** A space only moves forward: scheduled, then live, then ended. */
export const STATE_ORDER = { scheduled: 0, live: 1, ended: 2 };

/**
 * Whether `space` is older than what the page shows (`previous`): a read that left before a
 * click landed, or a cache's stale copy. Pages ignore it rather than flick back.
 */
export function olderThan(space, previous) {
  return Boolean(previous) && STATE_ORDER[space.state] < STATE_ORDER[previous.state];
}

// ---- words ----------------------------------------------------------------------------------

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

/**
 * How long until a start, said briefly: "3 d 4 h", "2 h 14 min", "14 min", then seconds in the
 * last minute ("45 s"). Empty once the time has come.
 */
export function untilText(milliseconds) {
  const total = Math.ceil(milliseconds / 1000);
  if (!(total > 0)) return "";
  if (total < 60) return `${total} s`;
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  if (days) return hours ? `${days} d ${hours} h` : `${days} d`;
  if (hours) return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
  return `${minutes} min`;
}

/** "You are number 3 in line — about 40 s" (a waiting answer, said for people). */
export function waitingText(waiting) {
  const position = Math.max(1, Number(waiting?.position) || 1);
  const seconds = Math.max(1, Number(waiting?.estimated_wait_seconds) || 1);
  const about = untilText(seconds * 1000);
  return `You are number ${position.toLocaleString()} in line — about ${about}`;
}

/** A sentence from an API message ("the token has expired" → "The token has expired."). */
export function sentence(text) {
  const trimmed = String(text || "").trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/** " in 3 s" when an error says how long to wait (Retry-After), else "". */
export function retryInText(error) {
  const seconds = error?.retryAfter;
  return seconds != null ? ` in ${Math.max(1, Math.ceil(seconds))} s` : "";
}

// ---- failures -------------------------------------------------------------------------------

/** What a failure says when nothing more precise applies: "Couldn't do it. Because…". */
export function failedText(what, error) {
  return `${what}. ${sentence(error?.message) || "Something went wrong."}`;
}

/** The failure to reach the server at all (an ApiError of status 0), said for people. */
export function unreachableText(what) {
  return `${what}: the server could not be reached. Try again in a moment.`;
}

/** A polite sentence for a failed action: `what` ("Couldn't mute") and why. */
export function problemText(what, error) {
  if (!(error instanceof ApiError)) return failedText(what, error);
  const why = sentence(error.message);
  switch (error.status) {
    case 0:
      return unreachableText(what);
    case 401:
      return `${what}: your sign-in isn't valid any more. ${why}`;
    case 403:
      return `${what}: you're not allowed to. ${why}`;
    case 429: {
      // The limit's own message says what the limit is ("at most 10 speakers").
      const wait =
        error.retryAfter != null && !/try again/i.test(why)
          ? ` Try again in ${Math.max(1, Math.ceil(error.retryAfter))} s.`
          : "";
      return `${what}: ${why}${wait}`;
    }
    case 503:
      return `${what}: the server is busy. Try again soon.`;
    default:
      return `${what}: ${why}`;
  }
}
