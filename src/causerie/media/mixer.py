"""Mixing the speakers of a space: one program feed, plus a mix-minus per speaker.

Each speaker's decoded audio (mono int16 at 48 kHz) is pushed into its ``MixerInput``, a small
bounded queue. Whoever drives the mix (the live pipeline, on a wall-clock schedule) calls
``Mixer.mix()`` every ``frame_samples`` samples; it never waits for late input: a speaker whose
audio has not arrived contributes silence, and a speaker whose queue grew past ~200 ms loses the
oldest audio, so nobody accumulates delay.

Besides the program (everyone, for the audience), each input gets a *mix-minus*: everyone except
itself, to send back to that speaker so they hear the others without hearing themselves delayed.

Levels are float32 internally (1.0 = full scale). Sums go through a peak limiter (threshold
-1 dBFS, instant attack, smooth exponential release) instead of clipping; below the threshold the
limiter is transparent, so a single voice at normal level passes bit for bit.

Pure and synchronous: no clock, no I/O; time advances one frame per ``mix()``. Not thread-safe:
push and mix from the same thread (the event loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

__all__ = ["Limiter", "MixResult", "Mixer", "MixerInput", "dbfs"]

_SILENCE_DBFS = -100.0  # the floor reported for digital silence (instead of -inf)


def dbfs(power: float) -> float:
    """Mean-square power (full scale = 1.0) as an RMS level in dBFS, floored at -100."""
    if power <= 10 ** (_SILENCE_DBFS / 10):
        return _SILENCE_DBFS
    return 10 * math.log10(power)


class Limiter:
    """A feed-forward peak limiter with no look-ahead (so it adds no latency).

    The gain drops instantly to whatever keeps a sample at the threshold, then recovers towards 1
    exponentially with time constant ``release_seconds`` (slow enough not to follow the waveform,
    fast enough not to duck the next words noticeably). Never lets a sample exceed the threshold.
    """

    def __init__(
        self, *, sample_rate: int, threshold_dbfs: float = -1.0, release_seconds: float = 0.2
    ) -> None:
        self.threshold = 10 ** (threshold_dbfs / 20)
        # Per-sample decay of the attenuation (1 - gain) during release.
        self._log_decay = -1.0 / (release_seconds * sample_rate)
        self.gain = 1.0  # the gain applied to the last sample processed

    def process(self, x: np.ndarray) -> np.ndarray:
        """Limit one block of float32 samples; returns a new array (or ``x`` when untouched)."""
        if x.size == 0:
            return x
        peaks = np.abs(x)
        if self.gain == 1.0 and float(peaks.max()) <= self.threshold:
            return x  # the common case: nothing to do, and bit-exact
        # Attenuation a = 1 - gain. Needed: a_need[n] = 1 - threshold / |x[n]| where |x| exceeds
        # the threshold. Released: a[n] = max(a_need[n], a[n-1] * d) with d = exp(log_decay).
        # Unrolled, a[n] = d^n * max(a[-1] * d, max_{k<=n} a_need[k] / d^k): a running maximum,
        # which numpy computes without a Python loop over samples.
        need = np.zeros(x.size, dtype=np.float64)
        over = peaks > self.threshold
        need[over] = 1.0 - self.threshold / peaks[over]
        n = np.arange(x.size, dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_need = np.log(need) - n * self._log_decay
        log_need[0] = max(log_need[0], math.log(max(1.0 - self.gain, 1e-300)) + self._log_decay)
        attenuation = np.exp(np.maximum.accumulate(log_need) + n * self._log_decay)
        gain = 1.0 - attenuation
        self.gain = float(gain[-1])
        if self.gain > 1.0 - 1e-6:
            self.gain = 1.0  # fully recovered: back to the exact fast path
        return (x * gain).astype(np.float32)


class MixerInput:
    """One speaker's input to the mixer: a bounded queue of mono int16 PCM, plus its level."""

    def __init__(
        self,
        input_id: str,
        *,
        frame_samples: int,
        max_queue_samples: int,
        active_threshold_dbfs: float,
        hang_frames: int,
        level_smoothing: float,
    ) -> None:
        self.input_id = input_id
        self.muted = False
        """A muted input still drains its queue but is left out of every mix from the next frame."""
        self._frame_samples = frame_samples
        self._max_queue = max_queue_samples
        self._queue = np.zeros(0, dtype=np.int16)
        self._active_threshold = active_threshold_dbfs
        self._hang_frames = hang_frames
        self._smoothing = level_smoothing
        self._power = 0.0
        self._frames_since_loud = hang_frames + 1
        self.underruns = 0
        """Frames for which this input had less audio than a full frame (counted for metrics)."""
        self.dropped_samples = 0
        """Samples thrown away because the queue was over its bound."""

    @property
    def queued_samples(self) -> int:
        """How much audio waits in the queue (its latency, in samples)."""
        return int(self._queue.size)

    @property
    def level(self) -> float:
        """Recent RMS level in dBFS (about the last 100 ms; -100 for silence), muted or not."""
        return dbfs(self._power)

    @property
    def active(self) -> bool:
        """Talking now: level above the threshold recently (with a hang time), and not muted."""
        return not self.muted and self._frames_since_loud <= self._hang_frames

    def push(self, pcm: np.ndarray) -> None:
        """Queue mono int16 PCM of any length; drops the oldest audio beyond the bound."""
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"expected 1-D int16 PCM, got {pcm.dtype} with shape {pcm.shape}")
        queue = np.concatenate([self._queue, pcm]) if self._queue.size else pcm.copy()
        excess = queue.size - self._max_queue
        if excess > 0:
            # Dropping the oldest keeps this speaker's delay bounded: a burst after a network
            # stall must not become permanent latency in the conversation.
            queue = queue[excess:]
            self.dropped_samples += excess
        self._queue = queue

    def _pull(self) -> np.ndarray:
        """Take one frame as float32 (zero-padded on underrun) and update the level."""
        n = self._frame_samples
        take, self._queue = self._queue[:n], self._queue[n:]
        frame = np.zeros(n, dtype=np.float32)
        frame[: take.size] = take.astype(np.float32) / 32768.0
        if take.size < n:
            self.underruns += 1
        power = float(np.mean(np.square(frame, dtype=np.float64)))
        self._power += self._smoothing * (power - self._power)
        # Activity follows each frame, not the smoothed level, so the hang time alone says how
        # long the indicator outlasts the voice.
        if dbfs(power) > self._active_threshold:
            self._frames_since_loud = 0
        else:
            self._frames_since_loud += 1
        return frame


@dataclass(frozen=True, slots=True)
class MixResult:
    """One mixed frame: ``program`` for the audience, ``minus[input_id]`` for each speaker."""

    program: np.ndarray
    minus: dict[str, np.ndarray]


class Mixer:
    """Sums the unmuted inputs into a program feed and per-input mix-minus feeds."""

    def __init__(
        self,
        sample_rate: int = 48000,
        frame_samples: int = 960,
        *,
        max_queue_seconds: float = 0.2,
        threshold_dbfs: float = -1.0,
        release_seconds: float = 0.2,
        active_threshold_dbfs: float = -45.0,
        hang_seconds: float = 0.5,
        level_seconds: float = 0.1,
    ) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        frame_seconds = frame_samples / sample_rate
        self._new_input = partial(
            MixerInput,
            frame_samples=frame_samples,
            max_queue_samples=round(max_queue_seconds * sample_rate),
            active_threshold_dbfs=active_threshold_dbfs,
            hang_frames=max(0, round(hang_seconds / frame_seconds)),
            # One-pole smoothing of the power with time constant level_seconds.
            level_smoothing=1.0 - math.exp(-frame_seconds / level_seconds),
        )
        self._new_limiter = partial(
            Limiter,
            sample_rate=sample_rate,
            threshold_dbfs=threshold_dbfs,
            release_seconds=release_seconds,
        )
        self._inputs: dict[str, MixerInput] = {}
        self._limiters: dict[str, Limiter] = {}  # one per mix-minus: each has its own dynamics
        self._program_limiter = self._new_limiter()

    @property
    def inputs(self) -> dict[str, MixerInput]:
        """The current inputs by id (a copy)."""
        return dict(self._inputs)

    @property
    def program_gain(self) -> float:
        """The program limiter's current gain (1.0 = not limiting)."""
        return self._program_limiter.gain

    def add_input(self, input_id: str) -> MixerInput:
        """Add a speaker; raises ``ValueError`` if the id is taken."""
        if input_id in self._inputs:
            raise ValueError(f"mixer input {input_id!r} already exists")
        mixer_input = self._new_input(input_id)
        self._inputs[input_id] = mixer_input
        self._limiters[input_id] = self._new_limiter()
        return mixer_input

    def remove_input(self, input_id: str) -> None:
        """Remove a speaker (no error if absent: leaving twice is harmless)."""
        self._inputs.pop(input_id, None)
        self._limiters.pop(input_id, None)

    def mix(self) -> MixResult:
        """Mix one frame now: every input gives a frame or silence; never waits."""
        frames = {input_id: inp._pull() for input_id, inp in self._inputs.items()}
        total = np.zeros(self.frame_samples, dtype=np.float32)
        for input_id, frame in frames.items():
            if not self._inputs[input_id].muted:
                total += frame
        program = _to_int16(self._program_limiter.process(total))
        minus = {}
        for input_id, frame in frames.items():
            others = total if self._inputs[input_id].muted else total - frame
            minus[input_id] = _to_int16(self._limiters[input_id].process(others))
        return MixResult(program, minus)


def _to_int16(x: np.ndarray) -> np.ndarray:
    # The limiter keeps |x| <= -1 dBFS; the clip is only a guard for the int16 conversion.
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)
