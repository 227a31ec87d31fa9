"""The demo space's speakers: recordings played into the mixer as if they were live.

The shipped assets (``assets/demo-host.opus`` and ``assets/demo-guest.opus``, made by
``scripts/make-demo-voices.sh``) are two halves of one conversation, each silent while the other
talks. A :class:`DemoSpeaker` per voice pushes 20 ms frames into a sink at real time; the sink is
``MixerInput.push``, the same interface a WebRTC speaker feeds, so the demo exercises the real path
from mixer to listeners.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import av
import numpy as np

__all__ = ["DemoSpeaker", "demo_voices", "load_voice"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz: the Opus frame a WebRTC speaker delivers

# Further behind than this, the speaker drops the frames it missed instead of sending them in a
# burst: a mixer would only have to throw a burst away, and the listeners would hear a jump anyway.
MAX_LAG = 1.0


def demo_voices() -> dict[str, Path]:
    """Return the shipped demo recordings by speaker name (``"host"``, ``"guest"``)."""
    assets = resources.files("causerie.media") / "assets"
    # The package is installed as plain files (never zipped), so the traversable is a real path.
    return {name: Path(str(assets / f"demo-{name}.opus")) for name in ("host", "guest")}


def load_voice(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an audio file to mono signed 16-bit PCM at ``sample_rate``, as one 1-D array."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
    # Flush the resampler: it keeps a few samples of history.
    chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(chunks).astype(np.int16, copy=False)


def _frames(pcm: np.ndarray, frame_samples: int) -> np.ndarray:
    """Cut ``pcm`` into rows of ``frame_samples``, padding the last one with silence."""
    pcm = np.asarray(pcm, dtype=np.int16).reshape(-1)
    if pcm.size == 0:
        raise ValueError("the recording is empty")
    count = math.ceil(pcm.size / frame_samples)
    padded = np.zeros(count * frame_samples, dtype=np.int16)
    padded[: pcm.size] = pcm
    return padded.reshape(count, frame_samples)


class DemoSpeaker:
    """Play a recording into ``sink`` forever, one frame at a time, at real time.

    Frame ``k`` is due at ``start + k * frame duration`` (deadline scheduling, so sleeping late
    never accumulates into drift). A speaker that falls behind sends the frames it owes at once;
    one more than :data:`MAX_LAG` behind skips to the frame due now. Either way the frame played is
    chosen by the wall clock, so two speakers started together stay aligned with each other.
    """

    def __init__(
        self,
        pcm: np.ndarray,
        sink: Callable[[np.ndarray], None],
        *,
        frame_samples: int = FRAME_SAMPLES,
        sample_rate: int = SAMPLE_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._frames = _frames(pcm, frame_samples)
        self._sink = sink
        self._frame_duration = frame_samples / sample_rate
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._exited = asyncio.Event()
        self.frames_sent = 0
        """How many frames went to the sink so far."""
        self.frames_skipped = 0
        """How many frames were dropped because the speaker fell more than MAX_LAG behind."""

    @property
    def running(self) -> bool:
        """Whether the speaker's task is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start playing (in a task on the running event loop)."""
        if self._task is not None:
            raise RuntimeError("DemoSpeaker already started")
        self._exited.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="demo-speaker")

    async def stop(self) -> None:
        """Stop playing and wait until the task has ended."""
        if self._task is None:
            return
        self._task.cancel()
        await self._exited.wait()
        self._task = None

    async def _run(self) -> None:
        try:
            await self._play()
        except asyncio.CancelledError:
            pass  # stop() asked for it: a quiet ending
        except Exception:
            logger.exception("demo speaker failed")
        finally:
            self._exited.set()  # so stop() never hangs, whatever happened

    async def _play(self) -> None:
        start = self._clock()
        k = 0  # the next frame to send, counted from start
        while True:
            now = self._clock()
            due = start + k * self._frame_duration
            if now - due > MAX_LAG:
                behind = math.floor((now - start) / self._frame_duration)
                self.frames_skipped += behind - k
                k = behind
                due = start + k * self._frame_duration
            if due > now:
                await asyncio.sleep(due - now)
                continue
            self._sink(self._frames[k % len(self._frames)].copy())
            self.frames_sent += 1
            k += 1
