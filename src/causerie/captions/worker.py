"""One space's captions worker, on the node's side: program audio to a recognizer process,
caption lines back.

The media loop only ever calls `feed()`: it appends the frame to a bounded queue (dropping the
oldest when the recognizer is behind) and sets an event; nothing there waits or computes. A
feeder thread takes the frames from the queue, brings them to 16 kHz and writes them to the
process's pipe (blocking there when the process is behind: the queue takes the slack, then
drops). A reader thread hands what the process says back to the event loop. So under CPU
pressure captions are late, then have holes; the audio is never touched.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import recognizer
from .lines import CaptionLine
from .model import ResolvedModel

__all__ = ["QUEUE_SECONDS", "SpaceCaptions", "WorkerStats", "downsample"]

log = logging.getLogger(__name__)

QUEUE_SECONDS = 8.0
"""Program audio held for a recognizer that is behind; beyond it the oldest is dropped."""
FRAME_SECONDS = 0.02
START_TIMEOUT = 60.0
"""Seconds a recognizer may take to load its model before it is given up."""


def downsample(frame: np.ndarray, factor: int = 3) -> np.ndarray:
    """48 kHz int16 program audio to 16 kHz float32 in [-1, 1] (means of `factor` samples: a
    simple low-pass, enough for speech recognition, which looks below 8 kHz)."""
    usable = len(frame) - len(frame) % factor
    samples = frame[:usable].astype(np.float32).reshape(-1, factor).mean(axis=1)
    return samples / 32768.0


@dataclass
class WorkerStats:
    """What a worker did (for /metrics and the benchmark)."""

    frames_in: int = 0
    frames_dropped: int = 0
    lines: int = 0
    decode_seconds: float = 0.0
    """CPU seconds the recognizer spent decoding (its voice detector and loading aside)."""
    delays: list[float] = field(default_factory=list)
    """Wall seconds from each line's end (program time) to its arrival here (the last 1000)."""


class SpaceCaptions:
    """The recognizer process of one space and the threads around it."""

    def __init__(
        self,
        space_id: str,
        model: ResolvedModel,
        on_line: Callable[[CaptionLine], None],
        *,
        threads: int = 2,
        beam_size: int = 5,
        niceness: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.space_id = space_id
        self.model = model
        self.on_line = on_line
        self.clock = clock
        self.stats = WorkerStats()
        self.failed: str | None = None
        """Why the recognizer stopped early (None: it has not)."""
        self.done = asyncio.Event()
        """Set once the process has ended, however."""
        self.ready = asyncio.Event()
        self._options = {"threads": threads, "beam_size": beam_size, "niceness": niceness}
        self._queue: collections.deque[tuple[float, np.ndarray]] = collections.deque(
            maxlen=round(QUEUE_SECONDS / FRAME_SECONDS)
        )
        self._wake = threading.Event()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: Any = None
        self._conn: Any = None

    # On the media loop

    def feed(self, program: np.ndarray, at: float) -> None:
        """One frame of program audio whose first sample is program time `at` (never blocks)."""
        if self._closing:
            return
        if len(self._queue) == self._queue.maxlen:
            self.stats.frames_dropped += 1  # the deque drops the oldest itself
        self._queue.append((at, program))
        self.stats.frames_in += 1
        self._wake.set()

    # Lifecycle (on the event loop)

    async def start(self) -> None:
        """Start the process (from a thread: starting a process takes milliseconds the event
        loop, which the media loop runs on, does not give) and the threads around it."""
        self._loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=recognizer.main,
            args=(child, self.model),
            kwargs=self._options,
            name=f"captions-{self.space_id}",
            daemon=True,
        )
        await asyncio.to_thread(self._process.start)
        child.close()
        threading.Thread(
            target=self._read, name=f"captions-read-{self.space_id}", daemon=True
        ).start()
        threading.Thread(
            target=self._write, name=f"captions-feed-{self.space_id}", daemon=True
        ).start()

    async def stop(self, timeout: float = 15.0) -> None:
        """Finish: the utterance in progress is decoded and delivered (within `timeout`), then
        the process ends."""
        self._closing = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout)
        # The pipe is closed: the process is exiting (a join of a few ms), else killed.
        await asyncio.to_thread(self.kill, 2.0 if self.done.is_set() else 0.0)

    def kill(self, grace: float = 0.0) -> None:
        """End the process, after `grace` seconds to exit by itself (what it had not delivered
        is lost). Exiting by itself lets it release what it holds (its semaphores)."""
        self._closing = True
        self._wake.set()
        process = self._process
        if process is None or process.pid is None:
            return  # never started
        process.join(timeout=grace)
        if process.is_alive():
            process.kill()
        process.join(timeout=2)

    # Threads

    def _write(self) -> None:
        try:
            while True:
                self._wake.wait(0.5)
                self._wake.clear()
                frames = []
                while self._queue:
                    frames.append(self._queue.popleft())
                for t0, samples in _contiguous(frames):
                    self._conn.send((t0, downsample(samples).tobytes()))
                if self._closing:
                    self._conn.send(None)  # finish the utterance in progress, then exit
                    return
        except (OSError, ValueError, BrokenPipeError):
            return  # the process is gone; the reader says why

    def _read(self) -> None:
        try:
            while True:
                message = self._conn.recv()
                self._deliver(message)
                if message[0] in ("done", "failed"):
                    break
        except (EOFError, OSError):
            if not self._closing:
                self._deliver(("failed", "the recognizer process ended unexpectedly"))
        finally:
            self._deliver(("exited", None))

    def _deliver(self, message: tuple[Any, ...]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._handle, message)

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            self.ready.set()
        elif kind == "line":
            _, start, end, text, cpu = message
            line = CaptionLine(start, end, text)
            self.stats.lines += 1
            self.stats.decode_seconds += cpu
            self.stats.delays = [*self.stats.delays[-999:], self.clock() - end]
            try:
                self.on_line(line)
            except Exception:
                log.exception("space %s: delivering a caption line failed", self.space_id)
        elif kind == "failed":
            if self.failed is None:
                self.failed = str(message[1])
                log.error("space %s: captions stopped: %s", self.space_id, self.failed)
            self._closing = True
            self._wake.set()
        elif kind == "exited":
            self.done.set()


def _contiguous(frames: list[tuple[float, np.ndarray]]) -> list[tuple[float, np.ndarray]]:
    """Frames joined into runs that follow each other in program time (a dropped frame, or
    silence put in after a stall, starts a new run)."""
    runs: list[tuple[float, list[np.ndarray]]] = []
    expected = None
    for at, samples in frames:
        if expected is not None and abs(at - expected) < 0.001 and runs:
            runs[-1][1].append(samples)
        else:
            runs.append((at, [samples]))
        expected = at + len(samples) / 48000
    return [(t0, np.concatenate(parts)) for t0, parts in runs]
