"""The recognizer: a separate process that turns a space's program audio into caption lines.

It never runs in the node's process: decoding takes whole CPU-seconds at a time, and the media
loop must not wait for any of it. The process lowers its own priority (`os.nice`), so under
CPU pressure the kernel serves the node first: captions lag, audio does not. Audio comes in on
one pipe (`audio`): one message per 20 ms frame, its program time then 48 kHz 16-bit samples
(worker.py's `frame_message`); the pipe's end means "finish". A thread empties that pipe into a
queue of `QUEUE_SECONDS` that drops its oldest frames, so a recognizer that falls behind loses
the oldest audio, never the newest. Lines go out on another pipe (`conn`): `("ready", info)` or
`("failed", why)` once loaded, `("line", start, end, text, decode_seconds)` per utterance,
`("dropped", total)` when its queue dropped frames, and `("done", None)` at the end.

Utterances are cut at pauses (utterances.py) with the Silero voice detector faster-whisper
ships, run chunk by chunk with its state carried over (its own wrapper starts afresh on every
call); each is decoded once, whole, by faster-whisper (CTranslate2, int8).
"""

from __future__ import annotations

import collections
import contextlib
import os
import struct
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from .model import ModelError, ResolvedModel, verify
from .utterances import CutPolicy, UtteranceCutter

__all__ = ["SAMPLE_RATE", "Stream", "downsample", "main"]

SAMPLE_RATE = 16000
CHUNK = 512
"""Samples per voice-detector chunk (what Silero takes at 16 kHz)."""
CONTEXT = 64
"""Samples of the previous chunk the detector sees with each chunk."""
HOLE_SECONDS = 0.1
"""A jump in program time larger than this (audio dropped under load) ends the utterance."""
QUEUE_SECONDS = 8.0
"""Program audio held for a recognizer that is behind; beyond it the oldest is dropped."""
_TIME = struct.Struct("!d")


def downsample(frame: np.ndarray, factor: int = 3) -> np.ndarray:
    """48 kHz int16 program audio to 16 kHz float32 in [-1, 1] (means of `factor` samples: a
    simple low-pass, enough for speech recognition, which looks below 8 kHz)."""
    usable = len(frame) - len(frame) % factor
    samples = frame[:usable].astype(np.float32).reshape(-1, factor).mean(axis=1)
    return samples / 32768.0


class StreamingVad:
    """Silero's speech probability per chunk, its recurrent state kept between calls."""

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def __call__(self, chunks: np.ndarray) -> np.ndarray:
        """Probabilities for `chunks` (n × CHUNK samples), in order."""
        contexts = np.concatenate([self._context[None, :], chunks[:-1, -CONTEXT:]])
        batch = np.concatenate([contexts, chunks], axis=1)
        out, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = chunks[-1, -CONTEXT:].copy()
        return np.asarray(out, dtype=np.float32).reshape(-1)


class Stream:
    """Program audio in, utterances (program time, samples) out."""

    def __init__(self, policy: CutPolicy, vad: Any) -> None:
        self.policy = policy
        self.vad = vad
        self._reset(None)

    def _reset(self, t0: float | None) -> None:
        self.cutter = UtteranceCutter(self.policy, SAMPLE_RATE, CHUNK)
        self.time0 = t0  # program time of sample 0
        self.audio = np.zeros(0, dtype=np.float32)  # samples from `base` on
        self.base = 0
        if hasattr(self.vad, "reset"):
            self.vad.reset()

    @property
    def received(self) -> int:
        """Samples received since the stream (re)started."""
        return self.base + len(self.audio)

    def add(self, t0: float, samples: np.ndarray) -> Iterator[tuple[float, float, np.ndarray]]:
        """Take samples starting at program time `t0`; yield each utterance they complete."""
        if self.time0 is not None:
            expected = self.time0 + self.received / SAMPLE_RATE
            if abs(t0 - expected) > HOLE_SECONDS:
                yield from self.finish()
                self._reset(t0)
        if self.time0 is None:
            self._reset(t0)
        self.audio = np.concatenate([self.audio, samples])
        ready = (self.received - self.cutter.position) // CHUNK
        if ready:
            begin = self.cutter.position - self.base
            chunks = self.audio[begin : begin + ready * CHUNK].reshape(ready, CHUNK)
            for probability in self.vad(chunks):
                utterance = self.cutter.push(float(probability))
                if utterance is not None:
                    yield self._cut(utterance.start, utterance.end)
        keep = self.cutter.keep_from()
        if keep > self.base:
            self.audio = self.audio[keep - self.base :]
            self.base = keep

    def finish(self) -> Iterator[tuple[float, float, np.ndarray]]:
        """The stream stops: the utterance in progress, if any."""
        utterance = self.cutter.flush()
        if utterance is not None:
            yield self._cut(utterance.start, min(utterance.end, self.received))

    def _cut(self, start: int, end: int) -> tuple[float, float, np.ndarray]:
        assert self.time0 is not None
        audio = self.audio[max(0, start - self.base) : max(0, end - self.base)]
        return self.time0 + start / SAMPLE_RATE, self.time0 + end / SAMPLE_RATE, audio


def _decode(model: Any, audio: np.ndarray, beam_size: int) -> str:
    segments, _ = model.transcribe(
        audio,
        language="en",
        beam_size=beam_size,
        vad_filter=False,  # already cut at pauses
        condition_on_previous_text=False,  # one utterance at a time: nothing to drift on
        without_timestamps=True,
    )
    return " ".join(" ".join(s.text.split()) for s in segments).strip()


class Inbox:
    """The audio pipe emptied by a thread into a queue that drops its oldest frames."""

    def __init__(self, audio: Connection, seconds: float = QUEUE_SECONDS) -> None:
        self.frames: collections.deque[bytes] = collections.deque(maxlen=round(seconds / 0.02))
        self.dropped = 0
        self.ended = False
        self.wake = threading.Event()
        self._audio = audio
        threading.Thread(target=self._pump, name="captions-inbox", daemon=True).start()

    def _pump(self) -> None:
        try:
            while True:
                message = self._audio.recv_bytes()
                if len(self.frames) == self.frames.maxlen:
                    self.dropped += 1
                self.frames.append(message)
                self.wake.set()
        except (EOFError, OSError):
            self.ended = True  # the node closed its end: finish
            self.wake.set()

    def take(self) -> list[tuple[float, np.ndarray]]:
        """The frames waiting (program time, 16 kHz samples), after waiting for one."""
        self.wake.wait(0.5)
        self.wake.clear()
        out = []
        while self.frames:
            message = self.frames.popleft()
            at = _TIME.unpack_from(message)[0]
            samples = np.frombuffer(message, dtype=np.int16, offset=_TIME.size)
            out.append((at, downsample(samples)))
        return out


def main(
    conn: Connection,
    model: ResolvedModel,
    *,
    audio: Connection | None = None,
    threads: int = 2,
    beam_size: int = 5,
    niceness: int = 10,
    policy: CutPolicy | None = None,
    probe: bool = False,
) -> None:
    """The process's body (see the module docstring). `probe` (no `audio`): load, decode a
    second of silence, answer, and exit (the node checks its model at start this way)."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # nothing is fetched at run time, whatever happens
    # Idle decoder threads sleep instead of spinning for the next job (OpenMP's default spins
    # for a while): between utterances the process takes no CPU from the node.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Not allowed here: the node's own priority then, still off its loop.
    with contextlib.suppress(OSError):
        os.nice(niceness)
    try:
        verify(model)
        from faster_whisper import WhisperModel

        whisper = WhisperModel(
            str(model.directory), device="cpu", compute_type="int8", cpu_threads=threads
        )
        vad = StreamingVad()
        if probe:
            _decode(whisper, np.zeros(SAMPLE_RATE, dtype=np.float32), 1)
    except Exception as exc:
        why = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
        conn.send(("failed", why))
        conn.close()
        return
    conn.send(("ready", {"model": model.name, "directory": str(model.directory)}))
    if probe or audio is None:
        conn.close()
        return
    stream = Stream(policy or CutPolicy(), vad)
    inbox = Inbox(audio)
    reported = 0
    try:
        while True:
            for at, samples in inbox.take():
                for start, end, piece in stream.add(at, samples):
                    _send_line(conn, whisper, beam_size, start, end, piece)
            if inbox.dropped != reported:
                reported = inbox.dropped
                conn.send(("dropped", reported))
            if inbox.ended and not inbox.frames:
                for start, end, piece in stream.finish():
                    _send_line(conn, whisper, beam_size, start, end, piece)
                conn.send(("done", None))
                return
    except (BrokenPipeError, EOFError, OSError):
        return  # the node went away
    finally:
        conn.close()


def _send_line(
    conn: Connection, whisper: Any, beam_size: int, start: float, end: float, audio: np.ndarray
) -> None:
    began = time.process_time()
    text = _decode(whisper, audio, beam_size)
    if text:
        conn.send(("line", start, end, text, time.process_time() - began))
