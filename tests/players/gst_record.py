"""GStreamer as an independent live player: play a URL in real time, write what it plays.

    /usr/bin/python3 tests/players/gst_record.py URI SECONDS SAMPLES.raw TIMES.txt [BIN]

Runs with Debian's Python and its PyGObject (python3-gi), not the project's virtualenv, and
imports nothing from the project. ``BIN`` (default ``uridecodebin3``) picks the source and
demuxer the way an application would; the output is mono 48 kHz S16LE, rendered by an appsink
that keeps to the clock (``sync``), as a sound card would. SAMPLES.raw gets the samples,
TIMES.txt one line per buffer: the wall time it was rendered and its timestamp (seconds of
media time: the fMP4 decode time, which the node counts from the run's first sample).

It stops by itself after SECONDS of audio: a live stream never ends, and ``gst-launch -e``
may never reach EOS on live HLS (PLATFORM-NOTES), so the samples are written as they come.
Exit status 0 once SECONDS were played; 1 with the error on stderr otherwise, or after
SECONDS + 30 s of wall time.
"""

from __future__ import annotations

import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import GLib, Gst, GstApp  # noqa: E402

CAPS = "audio/x-raw,format=S16LE,channels=1,rate=48000,layout=interleaved"


def main(uri: str, seconds: float, samples_path: str, times_path: str, source: str) -> int:
    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"{source} uri={uri} ! audioconvert ! audioresample ! {CAPS} ! "
        "appsink name=out sync=true emit-signals=true max-buffers=50"
    )
    loop = GLib.MainLoop()
    played = [0.0]
    failure: list[str] = []

    with open(samples_path, "wb") as samples, open(times_path, "w") as times:

        def on_sample(sink: GstApp.AppSink) -> Gst.FlowReturn:
            buffer = sink.emit("pull-sample").get_buffer()
            rendered = time.time()
            if played[0] >= seconds:
                return Gst.FlowReturn.OK  # the main loop has yet to stop the pipeline
            ok, info = buffer.map(Gst.MapFlags.READ)
            if ok:
                samples.write(bytes(info.data))
                buffer.unmap(info)
            times.write(
                f"{rendered:.4f} {buffer.pts / Gst.SECOND:.6f} {buffer.duration / Gst.SECOND:.6f}\n"
            )
            played[0] += buffer.duration / Gst.SECOND
            if played[0] >= seconds:
                GLib.idle_add(loop.quit)
            return Gst.FlowReturn.OK

        def on_message(_bus: Gst.Bus, message: Gst.Message) -> None:
            if message.type == Gst.MessageType.ERROR:
                error, debug = message.parse_error()
                failure.append(f"{message.src.get_name()}: {error.message} ({debug})")
                loop.quit()
            elif message.type == Gst.MessageType.EOS:
                failure.append("end of stream before the time was up")
                loop.quit()

        def on_timeout() -> bool:
            failure.append(f"played {played[0]:.1f} s of {seconds} s in {seconds + 30} s")
            loop.quit()
            return False

        pipeline.get_by_name("out").connect("new-sample", on_sample)
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", on_message)
        GLib.timeout_add_seconds(int(seconds) + 30, on_timeout)
        pipeline.set_state(Gst.State.PLAYING)
        try:
            loop.run()
        finally:
            pipeline.set_state(Gst.State.NULL)
    if failure:
        print(failure[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    uri, seconds, samples_path, times_path, *rest = sys.argv[1:]
    sys.exit(
        main(uri, float(seconds), samples_path, times_path, rest[0] if rest else "uridecodebin3")
    )
