"""One space's captions worker, on the node's side: program audio to a recognizer process,
caption lines back.

The media loop only ever calls `feed()`, which writes each 20 ms frame (with its program time)
into a pipe to the recognizer with one non-blocking `write`: a few microseconds, no lock, no
thread of the node's to wake (a thread taking the interpreter's lock at the wrong moment would
make the loop wait for it). Each write is smaller than `PIPE_BUF`, so it lands whole or not at
all (POSIX): when the recognizer is so far behind that the pipe (`PIPE_BYTES`, about 10 s of
audio) is full, the frame is dropped and counted. On the other side, a thread of the recognizer
empties the pipe into a queue that drops its oldest frames (recognizer.py), so a recognizer that
is merely slow loses the oldest audio, not the newest. A reader thread hands what the process
says back to the event loop. Under CPU pressure captions are late, then have holes; the audio
is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import multiprocessing
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import recognizer
from .lines import CaptionLine
from .model import ResolvedModel

__all__ = ["FRAME_SAMPLES", "PIPE_BYTES", "SpaceCaptions", "WorkerStats", "frame_message"]

log = logging.getLogger(__name__)

FRAME_SAMPLES = 960
"""One mixer frame at 48 kHz (20 ms): the unit written to the pipe."""
PIPE_BYTES = 1 << 20
"""The audio pipe's capacity (Linux `F_SETPIPE_SZ`; 1 MiB is the default most an unprivileged
process may ask): about 10 s of 48 kHz 16-bit audio with its framing."""
_F_SETPIPE_SZ = 1031  # fcntl.h; not in Python's fcntl module before 3.10 on every platform
_HEADER = struct.Struct("!i")  # multiprocessing.Connection's framing: a signed length
_TIME = struct.Struct("!d")


def frame_message(at: float, samples: np.ndarray) -> bytes:
    """One frame as the recognizer reads it (`Connection.recv_bytes`): the framing length,
    then the program time, then the 16-bit samples."""
    payload = _TIME.pack(at) + samples.astype(np.int16, copy=False).tobytes()
    return _HEADER.pack(len(payload)) + payload


@dataclass
class WorkerStats:
    """What a worker did (for /metrics and the benchmark)."""

    frames_in: int = 0
    frames_dropped: int = 0
    """Frames the recognizer never got: the pipe was full, or its own queue dropped them."""
    lines: int = 0
    decode_seconds: float = 0.0
    """CPU seconds the recognizer spent decoding (its voice detector and loading aside)."""
    delays: list[float] = field(default_factory=list)
    """Wall seconds from each line's end (program time) to its arrival here (the last 1000)."""


class SpaceCaptions:
    """The recognizer process of one space, its audio pipe and the thread reading its lines."""

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
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: Any = None
        self._audio: Any = None  # the pipe's writing end (a Connection), ours
        self._audio_out: Any = None  # its reading end, the recognizer's
        self._lines: Any = None  # lines from the recognizer
        self._lines_out: Any = None
        self._dropped_there = 0  # frames the recognizer's own queue dropped, as it said

    # On the media loop

    def feed(self, program: np.ndarray, at: float) -> None:
        """Program audio whose first sample is program time `at` (never blocks)."""
        audio = self._audio
        if self._closing or audio is None:
            return
        for start in range(0, len(program), FRAME_SAMPLES):
            self.stats.frames_in += 1
            message = frame_message(at + start / 48000, program[start : start + FRAME_SAMPLES])
            try:
                os.write(audio.fileno(), message)
            except BlockingIOError:
                self.stats.frames_dropped += 1  # the pipe is full: the recognizer is far behind
            except (OSError, ValueError):
                self._closing = True  # the process is gone (the reader says why), or stopping
                return

    # Lifecycle (on the event loop)

    def connect(self) -> None:
        """Make the pipes (start() does; tests call it alone)."""
        context = multiprocessing.get_context("spawn")
        self._audio_out, self._audio = context.Pipe(duplex=False)
        self._lines, self._lines_out = context.Pipe(duplex=False)
        os.set_blocking(self._audio.fileno(), False)
        with contextlib.suppress(OSError):  # a smaller pipe only means drops come sooner
            fcntl.fcntl(self._audio.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)

    async def start(self) -> None:
        """Start the process (from a thread: starting a process takes milliseconds the event
        loop, which the media loop runs on, does not give) and the thread reading its lines."""
        self._loop = asyncio.get_running_loop()
        self.connect()
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._process = context.Process(
            target=recognizer.main,
            args=(self._lines_out, self.model),
            kwargs={**self._options, "audio": self._audio_out},
            name=f"captions-{self.space_id}",
            daemon=True,
        )
        await asyncio.to_thread(self._process.start)
        self._audio_out.close()
        self._lines_out.close()
        threading.Thread(
            target=self._read, name=f"captions-read-{self.space_id}", daemon=True
        ).start()

    async def stop(self, timeout: float = 15.0) -> None:
        """Finish: the end of the audio pipe tells the recognizer to decode the utterance in
        progress and deliver it (within `timeout`); then the process ends."""
        self._close_audio()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout)
        # The lines' pipe is closed: the process is exiting (a join of a few ms), else killed.
        await asyncio.to_thread(self.kill, 2.0 if self.done.is_set() else 0.0)

    def kill(self, grace: float = 0.0) -> None:
        """End the process, after `grace` seconds to exit by itself (what it had not delivered
        is lost). Exiting by itself lets it release what it holds (its semaphores)."""
        self._close_audio()
        process = self._process
        if process is None or process.pid is None:
            return  # never started
        process.join(timeout=grace)
        if process.is_alive():
            process.kill()
        process.join(timeout=2)

    def _close_audio(self) -> None:
        self._closing = True
        audio, self._audio = self._audio, None
        if audio is not None:
            audio.close()

    # The reader thread

    def _read(self) -> None:
        try:
            while True:
                message = self._lines.recv()
                self._deliver(message)
                if message[0] in ("done", "failed"):
                    break
        except (EOFError, OSError):
            if not self._closing:
                self._deliver(("failed", "the recognizer process ended unexpectedly"))
        finally:
            self._lines.close()
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
        elif kind == "dropped":
            self.stats.frames_dropped += int(message[1]) - self._dropped_there
            self._dropped_there = int(message[1])
        elif kind == "failed":
            if self.failed is None:
                self.failed = str(message[1])
                log.error("space %s: captions stopped: %s", self.space_id, self.failed)
            self._close_audio()
        elif kind == "exited":
            self.done.set()
