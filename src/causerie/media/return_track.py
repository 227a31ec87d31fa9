"""The audio a speaker hears: their mix-minus, sent back on their own peer connection.

The live pipeline mixes one frame every 20 ms and hands each speaker's mix-minus (everyone but
themselves) to :meth:`ReturnTrack.push`. aiortc's sender calls :meth:`ReturnTrack.recv` in a loop
and encodes whatever it returns to Opus, so ``recv`` is also what paces the outgoing stream:

- a frame waiting in the queue is returned at once (the pipeline's clock paces the stream);
- the queue holds at most ``max_frames`` (60 ms by default): when the sender falls behind, the
  oldest audio is dropped, so the delay a speaker hears never builds up;
- when no frame comes (the space went off the air, the pipeline stalled), silence goes out on
  a 20 ms schedule of its own, so the remote decoder keeps a steady stream.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["ReturnTrack"]

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz: one mixer frame, one Opus frame
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE

# How long recv() waits for the pipeline before it sends silence instead. A little more than two
# frames: an ordinary late tick must not turn into an extra frame (which would be delay later).
PIPELINE_TIMEOUT = 2.5 * FRAME_SECONDS


class ReturnTrack(MediaStreamTrack):
    """An outgoing audio track fed with mono int16 frames (48 kHz, 960 samples) by the mixer.

    ``recv()`` returns s16 frames of 960 samples at 48 kHz, the mono mix-minus on both channels.
    """

    kind = "audio"

    def __init__(self, max_frames: int = 3) -> None:
        super().__init__()
        self._queue: deque[np.ndarray] = deque(maxlen=max_frames)  # maxlen: drops the oldest
        self._arrived = asyncio.Event()
        self._pts = 0
        self._time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._idle = True  # no frame came lately: pace silence by our own clock
        self._next_silence = 0.0
        self.dropped_frames = 0
        """Frames thrown away because the queue was full (the sender fell behind)."""

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    def push(self, pcm: np.ndarray) -> None:
        """Queue one frame of mono int16 PCM (960 samples); never blocks."""
        if self.readyState != "live":
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped_frames += 1
        self._queue.append(pcm)
        self._arrived.set()

    async def recv(self) -> av.AudioFrame:
        """The next frame to send: queued mix-minus audio, or silence when none comes."""
        if self.readyState != "live":
            raise MediaStreamError
        if not self._queue:
            if self._idle:
                timeout = max(0.0, self._next_silence - time.monotonic())
            else:
                timeout = PIPELINE_TIMEOUT
            self._arrived.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._arrived.wait()
            except TimeoutError:
                pass
            if self.readyState != "live":
                raise MediaStreamError
        if self._queue:
            pcm = self._queue.popleft()
            self._idle = False
        else:
            pcm = self._silence
            now = time.monotonic()
            # Silence keeps a 20 ms cadence from the last frame sent, whatever the waits were.
            self._next_silence = (self._next_silence if self._idle else now) + FRAME_SECONDS
            self._next_silence = max(self._next_silence, now)
            self._idle = True
        return self._frame(pcm)

    def _frame(self, pcm: np.ndarray) -> av.AudioFrame:
        # Sent as two equal channels: aiortc's Opus encoder is stereo, and its resampler would
        # upmix a mono frame at -3 dB (the center mix level), making everyone sound quieter.
        stereo = np.repeat(pcm, 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += frame.samples
        return frame

    def stop(self) -> None:
        """End the track: the sender's pending recv() returns and raises MediaStreamError."""
        super().stop()
        self._arrived.set()
