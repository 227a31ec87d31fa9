"""Mixing the speakers of a space: one program feed, plus a mix-minus per speaker.

Each speaker's decoded audio (mono int16 at 48 kHz) is pushed into its ``MixerInput``, a small
bounded queue. Whoever drives the mix (the live pipeline, on a wall-clock schedule) calls
``Mixer.mix()`` every ``frame_samples`` samples; it never waits for late input: a speaker whose
audio has not arrived contributes silence, and a speaker whose queue grew past ~200 ms loses the
oldest audio, so nobody accumulates delay.

Besides the program (everyone, for the audience), each input gets a *mix-minus*: everyone except
itself, to send back to that speaker so they hear the others without hearing themselves delayed.

Only inputs that are *heard* are mixed: unmuted, and above a silence gate (-60 dBFS) within the
last half second. The others add nothing to any mix, so the mix-minus of everyone who is not
heard is the same signal, the program itself, and the work (and the Opus encoding downstream,
see return_track.py) scales with the people talking, not with the people on stage: ten
speakers with one talking need two distinct feeds, not eleven. The gate sits 15 dB under the
talking indicator's threshold and closes only after the same hang time, so speech, its soft
onsets and its tails pass; what it removes is the idle noise floor of the microphones, which
would otherwise add up across a stage.

An input whose audio stopped coming for a while (60 ms) has paused: a browser asked for Opus DTX
sends nothing while its speaker is silent (rtc.py), and networks stall. It plays again only
once it holds a frame and a half: the first packets of a talk spurt come with the network's
jitter, and without that slack the second frame would often be a little late, a 20 ms hole at
the start of every sentence. (A continuous stream gets its slack from its first late packet,
which stays queued: the same standing delay, after one hole.) A spurt that still ran dry
makes the next ones start with a frame more, up to three; a second of audio that did not, with
a frame less (the comfort-noise packets of DTX, one every 400 ms, change nothing).

Sums are exact integer sums of the int16 inputs, then float32 (1.0 = full scale) through a
peak limiter (threshold -1 dBFS, instant attack, smooth exponential release) instead of
clipping; below the threshold the limiter is transparent, so a single voice at normal level
passes bit for bit.

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
MAX_EXTRA_FRAMES = 3  # the most slack learned from late talk spurts, beyond the first frame
SPURT_FRAMES = 50  # a talk spurt this long (1 s) that never ran dry gives a frame of slack back


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
        pause_frames: int,
        resume_samples: int,
        active_threshold_dbfs: float,
        gate_threshold_dbfs: float,
        hang_frames: int,
        level_smoothing: float,
    ) -> None:
        self.input_id = input_id
        self.muted = False
        """A muted input still drains its queue but is left out of every mix from the next frame."""
        self._frame_samples = frame_samples
        self._max_queue = max_queue_samples
        self._queue = np.zeros(0, dtype=np.int16)
        self._pause_frames = pause_frames
        self._resume_samples = resume_samples
        self._empty_pulls = 0  # frames in a row for which nothing had arrived
        self._resuming = False  # paused: waiting for enough audio before playing again
        self._extra_frames = 0  # more slack to resume with, learned from earlier spurts
        self._ran_dry = False  # this spurt had an underrun (not a pause)
        self._spurt_frames = 0  # frames played since the last pause
        self._active_threshold = active_threshold_dbfs
        self._gate_threshold = gate_threshold_dbfs
        self._hang_frames = hang_frames
        self._smoothing = level_smoothing
        self._power = 0.0
        self._frames_since_loud = hang_frames + 1
        self._frames_since_audible = hang_frames + 1
        self.underruns = 0
        """Frames for which this input had less audio than a full frame (counted for metrics)."""
        self.dropped_samples = 0
        """Samples thrown away because the queue was over its bound."""
        self.paced = False
        """Filled one frame per mix by its own jitter buffer: no slack after pauses."""

    @property
    def queued_samples(self) -> int:
        """How much audio waits in the queue (its latency, in samples)."""
        return int(self._queue.size)

    @property
    def resume_samples(self) -> int:
        """How much audio this input waits for before it plays again after a pause."""
        return self._resume_samples + self._extra_frames * self._frame_samples

    @property
    def level(self) -> float:
        """Recent RMS level in dBFS (about the last 100 ms; -100 for silence), muted or not."""
        return dbfs(self._power)

    @property
    def active(self) -> bool:
        """Talking now: level above the threshold recently (with a hang time), and not muted."""
        return not self.muted and self._frames_since_loud <= self._hang_frames

    @property
    def heard(self) -> bool:
        """Mixed into the feeds now: above the silence gate recently (same hang), and not muted.

        Everyone ``active`` is heard; an input that is not heard adds nothing to any mix.
        """
        return not self.muted and self._frames_since_audible <= self._hang_frames

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
        """Take one frame of int16 (zero-padded on underrun) and update the level and gates."""
        n = self._frame_samples
        if self._resuming and (self.paced or self.queued_samples >= self.resume_samples):
            self._resuming = False
        if self._resuming:
            take = self._queue[:0]
        else:
            take, self._queue = self._queue[:n], self._queue[n:]
            self._spurt_frames += 1
            if take.size and 0 < self._empty_pulls < self._pause_frames:
                self._ran_dry = True  # audio again after a frame or two: it was late
        self._empty_pulls = 0 if take.size else self._empty_pulls + 1
        if self._empty_pulls == self._pause_frames:
            # A pause: the next spurt starts with the slack the last ones turned out to need.
            if self._ran_dry:
                self._extra_frames = min(MAX_EXTRA_FRAMES, self._extra_frames + 1)
            elif self._spurt_frames >= SPURT_FRAMES:
                self._extra_frames = max(0, self._extra_frames - 1)
            self._ran_dry = False
            self._spurt_frames = 0
            self._resuming = True
        if take.size < n:
            self.underruns += 1
            frame = np.zeros(n, dtype=np.int16)
            frame[: take.size] = take
        else:
            frame = take
        samples = take.astype(np.float32)
        power = float(np.dot(samples, samples)) / (n * 32768.0 * 32768.0)
        self._power += self._smoothing * (power - self._power)
        # Activity follows each frame, not the smoothed level, so the hang time alone says how
        # long the indicator (and the gate) outlasts the voice.
        level = dbfs(power)
        self._frames_since_loud = (
            0 if level > self._active_threshold else self._frames_since_loud + 1
        )
        self._frames_since_audible = (
            0 if level > self._gate_threshold else self._frames_since_audible + 1
        )
        return frame


@dataclass(frozen=True, slots=True)
class MixResult:
    """One mixed frame: ``program`` for the audience, ``minus[input_id]`` for each speaker.

    Only the ``talkers`` (the inputs heard in this frame) have a mix-minus of their own; every
    other input's entry in ``minus`` *is* ``program`` (the same array), since nothing of theirs
    is in it. Treat the arrays as read-only.
    """

    program: np.ndarray
    minus: dict[str, np.ndarray]
    talkers: frozenset[str]


class Mixer:
    """Sums the heard inputs into a program feed, and a mix-minus of their own for each of them."""

    def __init__(
        self,
        sample_rate: int = 48000,
        frame_samples: int = 960,
        *,
        max_queue_seconds: float = 0.2,
        pause_seconds: float = 0.06,
        resume_seconds: float = 0.03,
        threshold_dbfs: float = -1.0,
        release_seconds: float = 0.2,
        active_threshold_dbfs: float = -45.0,
        gate_threshold_dbfs: float = -60.0,
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
            pause_frames=max(1, round(pause_seconds / frame_seconds)),
            resume_samples=round(resume_seconds * sample_rate),
            active_threshold_dbfs=active_threshold_dbfs,
            gate_threshold_dbfs=gate_threshold_dbfs,
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
        # One per talker's own mix-minus (each has its own dynamics); the others hear the program.
        self._limiters: dict[str, Limiter] = {}
        self._program_limiter = self._new_limiter()

    @property
    def inputs(self) -> dict[str, MixerInput]:
        """The current inputs by id (a copy)."""
        return dict(self._inputs)

    @property
    def program_gain(self) -> float:
        """The program limiter's current gain (1.0 = not limiting)."""
        return self._program_limiter.gain

    def add_input(self, input_id: str, *, paced: bool = False) -> MixerInput:
        """Add a speaker; raises ``ValueError`` if the id is taken.

        ``paced``: the input is filled with exactly the frame each mix takes by a jitter buffer
        of its own (media/voice.py), which already absorbs the network's jitter: it never waits
        to build slack after a pause (it would wait for audio that is never queued ahead).
        """
        if input_id in self._inputs:
            raise ValueError(f"mixer input {input_id!r} already exists")
        mixer_input = self._new_input(input_id)
        mixer_input.paced = paced
        self._inputs[input_id] = mixer_input
        return mixer_input

    def remove_input(self, input_id: str) -> None:
        """Remove a speaker (no error if absent: leaving twice is harmless)."""
        self._inputs.pop(input_id, None)
        self._limiters.pop(input_id, None)

    def mix(self) -> MixResult:
        """Mix one frame now: every input gives a frame or silence; never waits."""
        heard = {}
        for input_id, source in self._inputs.items():
            frame = source._pull()  # every queue drains, heard or not: no stale audio later
            if source.heard:
                heard[input_id] = frame.astype(np.int32)
        total = sum(heard.values(), np.zeros(self.frame_samples, dtype=np.int32))
        limiters = {}
        own = {}
        for input_id, frame in heard.items():
            limiter = self._limiters.get(input_id)
            if limiter is None:
                # Until now this talker heard the program: their own mix-minus takes over from
                # the program limiter's state, so the level does not jump when they start.
                limiter = self._new_limiter()
                limiter.gain = self._program_limiter.gain
            limiters[input_id] = limiter
            own[input_id] = _limited(total - frame, limiter)
        self._limiters = limiters
        program = _limited(total, self._program_limiter)
        minus = {input_id: own.get(input_id, program) for input_id in self._inputs}
        return MixResult(program, minus, frozenset(heard))


def _limited(total: np.ndarray, limiter: Limiter) -> np.ndarray:
    """An exact int32 sum of int16 frames, through ``limiter``, as int16."""
    x = total.astype(np.float32) * np.float32(1 / 32768)
    limited = limiter.process(x)
    if limited is x:
        return total.astype(np.int16)  # under the threshold: untouched, and it fits in int16
    return _to_int16(limited)


def _to_int16(x: np.ndarray) -> np.ndarray:
    # The limiter keeps |x| <= -1 dBFS; the clip is only a guard for the int16 conversion.
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)
