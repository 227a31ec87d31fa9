"""The recognizer: a separate process that turns a space's program audio into caption lines.

It never runs in the node's process: decoding takes whole CPU-seconds at a time, and the media
loop must not wait for any of it. The process lowers its own priority (`os.nice`), so under
CPU pressure the kernel serves the node first: captions lag, audio does not. It reads, from a
pipe, messages `(t0, pcm)`: 16 kHz mono float32 samples whose first sample is program time
`t0`, and `None` to finish. It writes `("ready", info)` or `("failed", why)` once loaded, then
`("line", start, end, text, decode_seconds)` per utterance, and `("done", None)` at the end.

Utterances are cut at pauses (utterances.py) with the Silero voice detector faster-whisper
ships, run chunk by chunk with its state carried over (its own wrapper starts afresh on every
call); each is decoded once, whole, by faster-whisper (CTranslate2, int8).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from .model import ModelError, ResolvedModel, verify
from .utterances import CutPolicy, UtteranceCutter

__all__ = ["SAMPLE_RATE", "Stream", "main"]

SAMPLE_RATE = 16000
CHUNK = 512
"""Samples per voice-detector chunk (what Silero takes at 16 kHz)."""
CONTEXT = 64
"""Samples of the previous chunk the detector sees with each chunk."""
HOLE_SECONDS = 0.1
"""A jump in program time larger than this (audio dropped under load) ends the utterance."""


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


def main(
    conn: Connection,
    model: ResolvedModel,
    *,
    threads: int = 2,
    beam_size: int = 5,
    niceness: int = 10,
    policy: CutPolicy | None = None,
    probe: bool = False,
) -> None:
    """The process's body (see the module docstring). `probe`: load, decode a second of
    silence, answer, and exit (the node checks its model at start this way)."""
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
    if probe:
        conn.close()
        return
    stream = Stream(policy or CutPolicy(), vad)
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return  # the node went away
            if message is None:
                for start, end, audio in stream.finish():
                    _send_line(conn, whisper, beam_size, start, end, audio)
                conn.send(("done", None))
                return
            t0, pcm = message
            samples = np.frombuffer(pcm, dtype=np.float32)
            for start, end, audio in stream.add(float(t0), samples):
                _send_line(conn, whisper, beam_size, start, end, audio)
    finally:
        conn.close()


def _send_line(
    conn: Connection, whisper: Any, beam_size: int, start: float, end: float, audio: np.ndarray
) -> None:
    began = time.process_time()
    text = _decode(whisper, audio, beam_size)
    if text:
        conn.send(("line", start, end, text, time.process_time() - began))
