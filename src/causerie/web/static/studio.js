// The host studio: /studio creates and schedules spaces; /studio/{id} runs one. Going live and
// ending, the host's own microphone (WHIP, hearing the others back on the same connection),
// raised hands, the stage with live mic levels, and the questions, for hosts and co-hosts.
//
// One module per part of the page, in studio/: context.js holds what they share (the elements,
// the state, who is signed in) and draws every card when the space's details change.
//
// Text that comes from the API (titles, names, questions, messages) only ever goes into the
// page as text (textContent), never as HTML.

import { getSettings, watchSpace } from "./api.js";
import { setText, tokenClaims } from "./page.js";
import { renderCapacity, setCapacityLimit } from "./studio/capacity.js";
import { renderCaptions } from "./studio/captions.js";
import { drawCardsWith, renderSpace, spaceId, state, studio, ui } from "./studio/context.js";
import { localToIso, setTextLimits, startCreate } from "./studio/create.js";
import { setSpeaking, syncLevelPolling } from "./studio/levels.js";
import { renderSpaceActions } from "./studio/lifecycle.js";
import { currentAir, renderMic } from "./studio/mic.js";
import { renderError, renderOverview, showLinks, tickWhen } from "./studio/overview.js";
import { handleQuestions, loadQuestions, renderQuestionsCard } from "./studio/questions.js";
import { followRequests, loadRequests, renderRequests } from "./studio/requests.js";
import { currentToken, setUpSignIn, showSignIn, takeTokenFromAddress } from "./studio/signin.js";
import { renderStage } from "./studio/stage.js";
import { voiceProcessing } from "./whip.js";

const TICK_SECONDS = 15; // "asked 2 min ago" and "in 14 min" move on

// What the space's details redraw, in this order.
drawCardsWith([
  renderOverview,
  renderSpaceActions,
  renderCapacity,
  renderCaptions,
  renderMic,
  renderStage,
  followRequests,
  renderQuestionsCard,
  syncLevelPolling,
]);

function startStudio() {
  ui.studio.hidden = false;
  showLinks();
  ui.processing.checked = voiceProcessing();
  studio.watcher = watchSpace(spaceId, renderSpace, renderError, {
    on: {
      speaking: (data) => setSpeaking(data.speaking),
      questions: (data) => handleQuestions(data),
    },
    onResync: () => {
      loadRequests();
      loadQuestions();
    },
  });
  setInterval(() => {
    if (!document.hidden) {
      renderRequests();
      tickWhen();
    }
  }, TICK_SECONDS * 1000);
}

/** Sign in with the token kept (or given), then open the page asked for. */
function begin() {
  studio.token = currentToken();
  const claims = tokenClaims(studio.token);
  if (!studio.token || !claims) {
    showSignIn();
    ui.tokenInput.focus();
    return;
  }
  state.me = claims.sub;
  ui.signin.hidden = true;
  ui.signOut.hidden = false;
  setText(ui.accountName, claims.name ? `Signed in as ${claims.name}` : "Signed in");
  if (spaceId) startStudio();
  else startCreate();
}

// The server's limits go into the forms as soon as they are known.
getSettings().then(
  ({ limits }) => {
    setTextLimits(limits);
    setCapacityLimit(limits.capacity);
  },
  () => {
    // A server without settings: the forms take anything, and the server says what is wrong.
  },
);
setUpSignIn(begin);
takeTokenFromAddress();
begin();

// Small hooks for tests and for the curious, in the console.
window.causerie = {
  state,
  get air() {
    return currentAir();
  },
  get returnAudio() {
    return ui.returnAudio;
  },
  refresh: () => studio.watcher?.refresh(),
  localToIso,
};
