"""The live media pipeline of one space: mixer -> AAC encoder -> LL-HLS packager, on a clock.

An asyncio task ticks every mixer frame (20 ms) of wall time: it mixes, encodes, packages and
wakes the HTTP requests blocked on the next part (RFC 8216bis section 6.2.5.2). The schedule is
deadline-based on ``time.monotonic``, so it never drifts: a late tick is followed by catch-up
ticks; if the loop was stalled for more than a second, the missed time becomes silence instead
(its senders' queues were bounded anyway, and mixing the backlog would only replay stale audio in
a burst).

Wall time: the pipeline reads ``clock()`` once at start and maps media time to wall time from
there (frame pts / sample rate), so EXT-X-PROGRAM-DATE-TIME advances exactly with the media and
never goes backwards if the system clock is stepped. Media time never falls behind wall time,
even after a stall: the LL-DASH manifest places every segment by that arithmetic alone (a
segment is due at Period@start + its media time, media/dash.py), so a hole in the media would
make every later segment late for the rest of the run, and DASH players would stall on it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

import numpy as np

from causerie.media.encoder import FRAME_SAMPLES, AacEncoder, EncodedFrame
from causerie.media.mixer import Mixer, MixResult
from causerie.media.packager import Packager, PartRef, SegmentRef, first_msn_at
from causerie.media.timing import MediaTiming

__all__ = ["LivePipeline"]

logger = logging.getLogger(__name__)

# Beyond this lateness the pipeline stops mixing the backlog (it would only deliver stale audio
# in a burst) and fills the missed time with silence.
MAX_CATCH_UP_SECONDS = 1.0
# Silence is encoded at most this much per pass of the loop, so that requests are served in
# between even after a very long stall (10 s of silence encode in ~10 ms here).
MAX_SILENCE_PER_PASS_SECONDS = 10.0


class LivePipeline:
    """Runs the mix/encode/package loop of one space and lets requests wait for parts.

    ``packager`` is there for reads (playlist, parts, segments). Hooks, all called on the event
    loop and guarded (an exception is logged, the pipeline keeps going): ``before_mix`` just
    before each frame is mixed (speakers' voices are decoded into their mixer inputs then, so
    a packet that arrived up to that moment is heard in this frame, not the next: 20 ms
    less delay), ``on_mix`` with every mixed frame (mix-minus to speakers), ``on_part`` with
    every new part (e.g. to warm edges), ``on_segment`` with every complete segment and its
    bytes (the recorder), ``on_program`` with every frame of program audio and its program
    time (wall-clock seconds of its first sample, as in EXT-X-PROGRAM-DATE-TIME), silence put
    in after a stall included (captions: it must return at once). ``timing`` is told how late
    each tick and each part is (media/timing.py; the node's metrics).
    """

    def __init__(
        self,
        space_id: str,
        *,
        mixer: Mixer,
        clock: Callable[[], float] = time.time,
        bit_rate: int = 64000,
        frames_per_part: int = 10,
        parts_per_segment: int = 9,
        window_segments: int = 6,
        run_id: str | None = None,
        first_msn: int | None = None,
        discontinuity_sequence: int = 0,
        timing: MediaTiming | None = None,
    ) -> None:
        self.space_id = space_id
        self.timing = timing or MediaTiming()
        self.mixer = mixer
        self.clock = clock
        self.before_mix: Callable[[], None] | None = None
        self.on_mix: Callable[[MixResult], None] | None = None
        self.on_part: Callable[[PartRef], None] | None = None
        self.on_segment: Callable[[SegmentRef, bytes], None] | None = None
        self.on_program: Callable[[np.ndarray, float], None] | None = None
        self.encoder = AacEncoder(sample_rate=mixer.sample_rate, bit_rate=bit_rate)
        # A fresh random run id per pipeline: media URLs of two runs never collide (packager.py).
        self.run_id = run_id or secrets.token_urlsafe(6)
        if first_msn is None:
            segment_seconds = frames_per_part * parts_per_segment * 1024 / mixer.sample_rate
            first_msn = first_msn_at(clock(), segment_seconds)
        self.packager = Packager(
            run_id=self.run_id,
            first_msn=first_msn,
            audio_specific_config=self.encoder.audio_specific_config,
            sample_rate=mixer.sample_rate,
            frames_per_part=frames_per_part,
            parts_per_segment=parts_per_segment,
            window_segments=window_segments,
            discontinuity_sequence=discontinuity_sequence,
            on_segment=self._segment_done,
        )
        self.exited = asyncio.Event()
        """Set when the loop task has finished, however it finished."""
        self._task: asyncio.Task[None] | None = None
        self._changed: asyncio.Future[None] | None = None  # shared by all waiters
        self._wall_start = 0.0
        self._samples_out = 0  # program samples mixed or silenced since the start
        self.silent_frames = 0
        """Mixer frames replaced by silence after stalls, since the start."""
        self._stopped = False

    # Lifecycle

    def start(self) -> None:
        """Start the loop task (call from a running event loop)."""
        if self._task is not None or self._stopped:
            raise RuntimeError("pipeline already started")
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"live-pipeline-{self.space_id}"
        )

    async def stop(self) -> None:
        """End the stream: stop the loop, flush the encoder, add EXT-X-ENDLIST, wake waiters."""
        if self._stopped:
            return
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            # The task only awaits sleeps, so it ends at once; the timeout is a safety net so
            # that shutdown can never hang on it.
            await asyncio.wait({self._task}, timeout=1.0)
        try:
            for frame in self.encoder.flush():
                self._package(frame)
        except Exception:
            logger.exception("space %s: flushing the encoder failed", self.space_id)
        self._parts_done(self.packager.end())
        self.exited.set()

    async def _run(self) -> None:
        period = self.mixer.frame_samples / self.mixer.sample_rate
        self._wall_start = self.clock()
        # Frame k is mixed once its 20 ms have fully elapsed: at start + (k + 1) * period.
        deadline = time.monotonic() + period
        try:
            while True:
                now = time.monotonic()
                if now < deadline:
                    await asyncio.sleep(deadline - now)
                    continue
                late = now - deadline
                self.timing.tick(late)
                if late > MAX_CATCH_UP_SECONDS:
                    missed = min(int(late / period), int(MAX_SILENCE_PER_PASS_SECONDS / period))
                    logger.warning(
                        "space %s: media loop %.1f s late, %d frames of silence instead",
                        self.space_id,
                        late,
                        missed,
                    )
                    self._silence(missed)
                    deadline += missed * period
                    self.timing.skipped(missed)  # silenced: time the loop could not mix
                    await asyncio.sleep(0)
                    continue
                self._tick()
                deadline += period
                if time.monotonic() >= deadline:
                    await asyncio.sleep(0)  # catching up: still let requests be served between
        except asyncio.CancelledError:
            pass  # stop() asked; the stream is finished there
        except Exception:
            logger.exception("space %s: media loop failed", self.space_id)
        finally:
            self.exited.set()

    # One frame

    def _tick(self) -> None:
        if self.before_mix is not None:
            try:
                self.before_mix()
            except Exception:
                logger.exception("space %s: before_mix hook failed", self.space_id)
        result = self.mixer.mix()
        if self.on_mix is not None:
            try:
                self.on_mix(result)
            except Exception:
                logger.exception("space %s: on_mix hook failed", self.space_id)
        self._program(result.program)
        for frame in self.encoder.encode(result.program):
            self._package(frame)

    def _silence(self, frames: int) -> None:
        """Encode ``frames`` mixer frames of silence: time the loop could not mix."""
        self.silent_frames += frames
        silence = np.zeros(frames * self.mixer.frame_samples, dtype=np.int16)
        self._program(silence)
        for frame in self.encoder.encode(silence):
            self._package(frame)

    def _program(self, samples: np.ndarray) -> None:
        at = self._wall_start + self._samples_out / self.mixer.sample_rate
        self._samples_out += len(samples)
        if self.on_program is None:
            return
        try:
            self.on_program(samples, at)
        except Exception:
            logger.exception("space %s: on_program hook failed", self.space_id)

    def _package(self, frame: EncodedFrame) -> None:
        # The frame's first sample, in wall time: the encoder's pts counts the samples fed to it,
        # and every 20 ms of wall time since the start fed it one mixer frame (mixed or silent).
        wall_time = self._wall_start + frame.pts / self.mixer.sample_rate
        parts = self.packager.add(frame, wall_time)
        if parts and not self._stopped:  # parts flushed by stop() are early on purpose
            audio_end = wall_time + FRAME_SAMPLES / self.mixer.sample_rate
            for part in parts:
                self.timing.part_ready(self.clock() - audio_end, float(part.duration))
        self._parts_done(parts)

    def _parts_done(self, parts: list[PartRef]) -> None:
        self._notify()
        if self.on_part is not None:
            for part in parts:
                try:
                    self.on_part(part)
                except Exception:
                    logger.exception("space %s: on_part hook failed", self.space_id)

    def _segment_done(self, segment: SegmentRef, data: bytes) -> None:
        if self.on_segment is None:
            return
        try:
            self.on_segment(segment, data)
        except Exception:
            logger.exception("space %s: on_segment hook failed", self.space_id)

    # Blocking playlist reload

    def _notify(self) -> None:
        """Wake everyone waiting for a change (a new part, or the end)."""
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def wait_for(self, msn: int, part: int | None = None, timeout: float = 6.0) -> bool:
        """Wait until the playlist satisfies ``_HLS_msn=msn`` (and ``_HLS_part=part``).

        Returns True when the playlist can be served (also at once if the stream ended: section
        6.2.5.2 says to ignore the directives then), False after ``timeout`` seconds (section
        6.2.5.2 suggests a 503 after three target durations, hence the 6 s default).
        All waiters share one future per change, so thousands of them cost one small future each
        (from ``shield``) and no task of their own.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self.packager.ended or self.packager.has_part(msn, part)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self._changed is None:
                self._changed = loop.create_future()
            try:
                async with asyncio.timeout(remaining):
                    # shield: a waiter timing out must cancel its own wait, not the shared future.
                    await asyncio.shield(self._changed)
            except TimeoutError:
                pass  # the loop condition decides
        return True
