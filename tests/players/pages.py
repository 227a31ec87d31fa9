"""Player pages for headless Chromium, served from an origin of their own.

Each page plays one URL (`?src=`) with one player from npm (hls.js, Shaka Player, dash.js, as
`make install` put them in node_modules) into an `<audio>` element, and exposes the same probe
to the test: `window.probe.sample()` returns the audio clock, the player's own latency
measure, the wall-clock latency (now − the date of the sample playing) and the stalls seen
since playback began. The pages are served from another port than the node's, so every
request the player makes is cross-origin: the node's CORS headers are what lets it play.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.harness.ports import HOST, free_port

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"

LIBRARIES = {
    "/hls.min.js": NODE_MODULES / "hls.js" / "dist" / "hls.min.js",
    "/shaka-player.compiled.js": NODE_MODULES
    / "shaka-player"
    / "dist"
    / "shaka-player.compiled.js",
    "/dash.all.min.js": NODE_MODULES / "dashjs" / "dist" / "modern" / "umd" / "dash.all.min.js",
}

# What every page shares: the audio element, and counting stalls once playback has begun.
# `waiting` is the media element's own "playback stopped for want of data" (HTML §4.8.11.8);
# each player also reports its buffer running dry in its own words (`bufferEmpty`).
_PROBE = """
const params = new URLSearchParams(location.search);
const audio = document.getElementById("audio");
const probe = {started: null, waiting: 0, bufferEmpty: 0, errors: [],
               latency: () => null, wallLatency: () => null};
audio.addEventListener("playing", () => {
  if (probe.started === null) probe.started = performance.now();
});
audio.addEventListener("waiting", () => { if (probe.started !== null) probe.waiting += 1; });
probe.sample = () => ({
  currentTime: audio.currentTime, paused: audio.paused, rate: audio.playbackRate,
  latency: probe.latency(), wallLatency: probe.wallLatency(),
  waiting: probe.waiting, bufferEmpty: probe.bufferEmpty, errors: probe.errors,
});
window.probe = probe;
"""

_HLSJS = """
const hls = new Hls({lowLatencyMode: true});
hls.on(Hls.Events.ERROR, (event, data) => {
  if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) {
    if (probe.started !== null) probe.bufferEmpty += 1;
  } else if (data.fatal) {
    probe.errors.push(`${data.type} ${data.details}`);
  }
});
hls.loadSource(params.get("src"));
hls.attachMedia(audio);
audio.play().catch((error) => probe.errors.push(String(error)));
probe.latency = () => hls.latency;
probe.wallLatency = () => hls.playingDate ? (Date.now() - hls.playingDate.getTime()) / 1000 : null;
"""

_SHAKA = """
shaka.polyfill.installAll();
const player = new shaka.Player();
player.configure({streaming: {lowLatencyMode: true}});
player.addEventListener("error", (event) => probe.errors.push(`shaka ${event.detail.code}`));
player.addEventListener("buffering", (event) => {
  if (event.buffering && probe.started !== null) probe.bufferEmpty += 1;
});
(async () => {
  await player.attach(audio);
  await player.load(params.get("src"));
  await audio.play();
})().catch((error) => probe.errors.push(`shaka ${error.code ?? ""} ${error}`));
// Shaka's own figure (getStats().liveLatency) is now − (presentation start + currentTime),
// in whole milliseconds: the wall-clock latency.
probe.latency = () => player.isLive() ? player.getStats().liveLatency : null;
probe.wallLatency = () => {
  const date = player.getPlayheadTimeAsDate();
  return date ? (Date.now() - date.getTime()) / 1000 : null;
};
probe.seekRangeLatency = () => player.seekRange().end - audio.currentTime;
"""

_DASHJS = """
const player = dashjs.MediaPlayer().create();
// The manifest's UTCTiming already names the node's /time; the default source, used for a
// manifest without one, is a public time server (23009-1 §5.8.4.11).
player.updateSettings({streaming: {utcSynchronization: {defaultTimingSource: {
  scheme: "urn:mpeg:dash:utc:http-iso:2014", value: params.get("time")}}}});
player.on(dashjs.MediaPlayer.events.BUFFER_EMPTY, () => {
  if (probe.started !== null) probe.bufferEmpty += 1;
});
player.on(dashjs.MediaPlayer.events.ERROR,
          (event) => probe.errors.push(`dash.js ${event.error.code} ${event.error.message}`));
player.initialize(audio, params.get("src"), true);
// dash.js's latency is already wall-clock: now − (availabilityStartTime + period start +
// currentTime), with its clock synchronised on /time.
probe.latency = () => player.getCurrentLiveLatency();
probe.wallLatency = probe.latency;
"""

PLAYERS = {
    "hls.js": ("/hls.min.js", _HLSJS),
    "shaka": ("/shaka-player.compiled.js", _SHAKA),
    "dash.js": ("/dash.all.min.js", _DASHJS),
}


def page(player: str) -> bytes:
    """The HTML page that plays `?src=` with `player`."""
    library, script = PLAYERS[player]
    return (
        '<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n'
        f"<title>{player}</title>\n"
        '<audio id="audio" muted></audio>\n'
        f'<script src="{library}"></script>\n'
        f"<script>{_PROBE}{script}</script>\n"
    ).encode()


@contextlib.contextmanager
def serve_pages() -> Iterator[str]:
    """A static server on its own port of 127.0.0.1 with `/{player}.html` and the players'
    scripts; yields its base URL."""
    missing = [str(path) for path in LIBRARIES.values() if not path.exists()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} missing: `make install` runs `npm ci`")
    files = {f"/{name}.html": (page(name), "text/html") for name in PLAYERS}
    files |= {url: (path.read_bytes(), "text/javascript") for url, path in LIBRARIES.items()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path.split("?")[0])
            if found is None:
                self.send_error(404)
                return
            body, kind = found
            self.send_response(200)
            self.send_header("content-type", f"{kind}; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((HOST, free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
