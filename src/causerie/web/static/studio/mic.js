// The host's own microphone: going on air with WHIP, hearing the others back on the same
// connection (their mix-minus), muting oneself, and the voice processing choice.

import { ApiError, callApi } from "../api.js";
import { problemText, setStatus, setText } from "../page.js";
import {
  WhipSession,
  levelFraction,
  levelMeter,
  micProblemText,
  openMicrophone,
  setVoiceProcessing,
} from "../whip.js";
import {
  isLive,
  isModerator,
  me,
  renderSpace,
  spaceId,
  spaceUrl,
  state,
  studio,
  ui,
} from "./context.js";

let air = null; // {session, stream, meter, timer} while on air (or getting there)
let airBusy = false;
let muteBusy = false;

export function renderMic() {
  const onStage = Boolean(me());
  const show = isModerator() && onStage && state.space && state.space.state !== "ended";
  ui.mic.hidden = !show;
  // The node no longer hears us though we hear it: the way out broke. Reconnect.
  if (air && me()?.reconnecting) air.session.nudge();
  if (air && (!isLive() || !onStage)) {
    const why = !isLive()
      ? "The space has ended: you're off the air."
      : "You're no longer on stage: you're off the air.";
    stopAir({ tellServer: false, message: why }); // the server ended the session itself
  }
  if (!show) return;
  const live = isLive();
  setText(ui.air, air ? "Leave the air" : "Go on air");
  ui.air.classList.toggle("button-primary", !air);
  ui.air.classList.toggle("is-on-air", Boolean(air));
  ui.air.disabled = airBusy || !live;
  const muted = Boolean(me()?.muted);
  ui.selfMute.hidden = !live;
  ui.selfMute.setAttribute("aria-pressed", String(muted));
  ui.selfMute.disabled = muteBusy;
  setText(ui.selfMute, muted ? "Muted" : "Mute");
  ui.selfMute.setAttribute("aria-label", "Mute my microphone");
  if (air) air.stream.getAudioTracks().forEach((track) => (track.enabled = !muted));
  ui.mic.classList.toggle("is-on-air", Boolean(air) && state.onAir);
  ui.micLevel.parentElement.hidden = !air;
  if (!live && !air && !airBusy) {
    setStatus(ui.micStatus, "Go live first, then go on air to speak.");
  } else if (!air && !airBusy && ui.micStatus.textContent.startsWith("Go live first")) {
    setStatus(ui.micStatus, "");
  }
}

function showMicLevel() {
  if (!air) return;
  const muted = Boolean(me()?.muted);
  const fraction = muted ? 0 : levelFraction(air.meter.read());
  ui.micLevel.style.transform = `scaleX(${fraction.toFixed(3)})`;
}

function onAirState(connection) {
  if (!air) return;
  if (connection === "connected") {
    state.onAir = true;
    setStatus(
      ui.micStatus,
      me()?.muted
        ? "You're on air, muted. You hear the others here, live."
        : "You're on air. You hear the others here, live.",
    );
  } else if (connection === "reconnecting") {
    state.onAir = false;
    setStatus(ui.micStatus, "Your connection dropped: reconnecting…");
  } else if (connection === "failed" || connection === "closed") {
    stopAir({
      tellServer: true,
      message: "The connection was lost: you're off the air. Try again.",
      error: true,
    });
  }
  renderMic();
}

async function goOnAir() {
  if (airBusy || air || !isLive()) return;
  airBusy = true;
  renderMic();
  setStatus(ui.micStatus, "Asking for your microphone…");
  let stream;
  try {
    stream = await openMicrophone({ processing: ui.processing.checked });
  } catch (error) {
    airBusy = false;
    const text = micProblemText(error) || problemText("Couldn't open the microphone", error);
    setStatus(ui.micStatus, text, { error: true });
    renderMic();
    return;
  }
  const whip = new WhipSession(`/whip/${encodeURIComponent(spaceId)}`, studio.token, {
    onTrack: playReturn,
    onState: onAirState,
  });
  air = { session: whip, stream, meter: levelMeter(stream), timer: setInterval(showMicLevel, 100) };
  setStatus(ui.spaceStatus, ""); // "go on air below" is done
  renderMic();
  setStatus(ui.micStatus, "Connecting…");
  try {
    await whip.publish(stream);
    if (air?.session !== whip) return; // left meanwhile
    airBusy = false;
    if (whip.state !== "connected") setStatus(ui.micStatus, "Connecting…");
  } catch (error) {
    airBusy = false;
    if (air?.session === whip) {
      const message = problemText("Couldn't go on air", error);
      stopAir({ tellServer: false, message, error: true });
    }
    if (error instanceof ApiError && error.status === 409) studio.watcher?.refresh();
  }
  renderMic();
}

function playReturn(stream) {
  ui.returnAudio.srcObject = stream;
  ui.returnAudio.play().catch(() => {
    setStatus(
      ui.micStatus,
      "The browser blocked the others' sound. Leave the air, then go on air again.",
    );
  });
}

const OFF_THE_AIR = "You're off the air.";

export function stopAir({ tellServer = true, message = OFF_THE_AIR, error = false } = {}) {
  if (!air) return;
  const { session: whip, stream, meter, timer } = air;
  air = null;
  airBusy = false;
  state.onAir = false;
  clearInterval(timer);
  meter.close();
  for (const track of stream.getTracks()) track.stop();
  ui.returnAudio.srcObject = null;
  ui.micLevel.style.transform = "scaleX(0)";
  whip.stop({ tellServer });
  setStatus(ui.micStatus, message, { error });
  renderMic();
}

ui.air.addEventListener("click", () => (air ? stopAir() : goOnAir()));

ui.selfMute.addEventListener("click", async () => {
  if (muteBusy || !state.me) return;
  const muted = !me()?.muted;
  muteBusy = true;
  renderMic();
  try {
    const space = await callApi("PUT", `${spaceUrl}/stage/${encodeURIComponent(state.me)}/muted`, {
      token: studio.token,
      json: { muted },
    });
    muteBusy = false;
    renderSpace(space);
    if (air) onAirState(air.session.state);
    else setStatus(ui.micStatus, muted ? "You're muted." : "You're unmuted.");
  } catch (error) {
    muteBusy = false;
    const what = muted ? "Couldn't mute you" : "Couldn't unmute you";
    setStatus(ui.micStatus, problemText(what, error), { error: true });
    renderMic();
  }
});

ui.processing.addEventListener("change", () => {
  setVoiceProcessing(ui.processing.checked);
  if (air) setStatus(ui.micStatus, "This applies the next time you go on air.");
});

window.addEventListener("pagehide", () => {
  if (air) air.session.stop(); // a DELETE that outlives the page (keepalive)
});

/** While on air (or getting there): {session (the WHIP session), stream, meter, timer}. */
export function currentAir() {
  return air;
}
