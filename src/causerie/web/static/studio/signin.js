// Signing in to the studio: an account token, pasted once or given in the address as #token=…
// (or #host=…, as `causerie demo` prints it), kept in localStorage and taken out of the address
// bar. A token for one space only (the demo's host link) is kept in sessionStorage for that
// space, where the listener page keeps it too.

import {
  ACCOUNT_KEY,
  keepHostToken,
  keptHostToken,
  setStatus,
  setText,
  storageGet,
  storageSet,
  tokenClaims,
} from "../page.js";
import { spaceId, ui } from "./context.js";

const ANY_SPACE = "*";

function usable(candidate) {
  const claims = tokenClaims(candidate);
  return Boolean(claims) && !(claims.exp && claims.exp * 1000 < Date.now());
}

/** Keep a token given in the address or pasted; false if it isn't a token at all. */
function keepToken(given) {
  const claims = tokenClaims(given);
  if (!claims) return false;
  if (claims.aud && claims.aud !== ANY_SPACE) {
    keepHostToken(claims.aud, given);
  } else {
    storageSet("local", ACCOUNT_KEY, given);
  }
  return true;
}

/** A #token=… or #host=… in the address: kept, then taken out of the address bar. */
export function takeTokenFromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has("token") && !params.has("host")) return;
  const given = (params.get("token") || params.get("host") || "").trim();
  params.delete("token");
  params.delete("host");
  const rest = params.toString();
  const clean = location.pathname + location.search + (rest ? `#${rest}` : "");
  history.replaceState(history.state, "", clean);
  if (given && !keepToken(given)) {
    setStatus(ui.signinStatus, "The link's token isn't valid. Paste your token below.", {
      error: true,
    });
  }
}

/** The token to use here: this space's own host token if there is one, else the account's. */
export function currentToken() {
  const forSpace = spaceId ? keptHostToken(spaceId) : null;
  if (forSpace && usable(forSpace) && tokenClaims(forSpace).aud === spaceId) return forSpace;
  const account = storageGet("local", ACCOUNT_KEY);
  return account && usable(account) ? account : null;
}

function expiredTokenKept() {
  const account = storageGet("local", ACCOUNT_KEY);
  return Boolean(account) && !usable(account);
}

export function showSignIn() {
  ui.signin.hidden = false;
  ui.create.hidden = true;
  ui.mine.hidden = true;
  ui.studio.hidden = true;
  ui.signOut.hidden = true;
  setText(ui.accountName, "");
  if (expiredTokenKept() && !ui.signinStatus.textContent) {
    setStatus(ui.signinStatus, "Your token has expired. Paste a new one.", { error: true });
  }
}

/** The sign-in form and the sign-out button; `signedIn()` is called once a token is kept. */
export function setUpSignIn(signedIn) {
  ui.signinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const given = ui.tokenInput.value.trim();
    if (!given) {
      setStatus(ui.signinStatus, "Paste your account token first.", { error: true });
      ui.tokenInput.focus();
      return;
    }
    if (!keepToken(given) || !usable(given)) {
      setStatus(
        ui.signinStatus,
        usable(given) || !tokenClaims(given)
          ? "That doesn't look like a causerie token. It has two dots in it."
          : "That token has expired. Make a new one with `causerie token`.",
        { error: true },
      );
      ui.tokenInput.focus();
      return;
    }
    if (spaceId && tokenClaims(given).aud !== ANY_SPACE && tokenClaims(given).aud !== spaceId) {
      setStatus(ui.signinStatus, "That token is for another space.", { error: true });
      return;
    }
    ui.tokenInput.value = "";
    setStatus(ui.signinStatus, "");
    signedIn();
  });

  ui.signOut.addEventListener("click", () => {
    storageSet("local", ACCOUNT_KEY, null);
    if (spaceId) keepHostToken(spaceId, null);
    location.reload();
  });
}
