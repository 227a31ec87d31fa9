"""Where an utterance starts and ends, from a voice detector's speech probabilities.

The recognizer decodes one utterance at a time: decoding a growing window again and again does
not keep up on a small CPU, and whole utterances decode best. An utterance ends at a pause (the
detector's probability below `off` for `min_silence` seconds) or when it reaches
`max_seconds` (someone who never pauses still gets captions). The probabilities come from the
Silero voice detector faster-whisper ships, one per chunk of 512 samples at 16 kHz (32 ms); the
two thresholds (hysteresis) follow its own defaults (0.5 on, 0.15 below it off).

Pure: positions are sample indexes on one continuous stream; the caller owns the audio.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CutPolicy", "Utterance", "UtteranceCutter"]


@dataclass(frozen=True, slots=True)
class CutPolicy:
    """How utterances are cut (seconds, probabilities)."""

    on: float = 0.5
    """A chunk at or above this probability is speech."""
    off: float = 0.35
    """Inside an utterance, a chunk below this is a pause (between the two: still speech)."""
    min_silence: float = 0.4
    """A pause this long ends the utterance: shorter ones are breaths inside a sentence. Every
    caption line waits this long after its last word, so it is kept short."""
    min_speech: float = 0.25
    """Voiced time an utterance needs to be decoded at all (a cough, a click: not)."""
    max_seconds: float = 10.0
    """An utterance longer than this is cut where it is, so captions never wait for a pause."""
    pad: float = 0.4
    """Audio kept on each side of the voiced chunks: the detector is late on soft onsets and
    early on trailing sounds (a final "s"), and Whisper misreads words cut short."""

    def __post_init__(self) -> None:
        if not 0 < self.off <= self.on < 1:
            raise ValueError("thresholds: 0 < off <= on < 1")
        if min(self.min_silence, self.min_speech, self.pad) < 0 or self.max_seconds <= 1:
            raise ValueError("durations must be positive, max_seconds more than 1")


@dataclass(frozen=True, slots=True)
class Utterance:
    """Samples [start, end) of the stream, padding included."""

    start: int
    end: int


class UtteranceCutter:
    """Takes one probability per chunk, in order; says when an utterance is complete."""

    def __init__(self, policy: CutPolicy, sample_rate: int = 16000, chunk: int = 512) -> None:
        self.policy = policy
        self.chunk = chunk
        self.position = 0
        """Samples seen so far (the end of the last chunk pushed)."""
        self._rate = sample_rate
        self._start: int | None = None  # first voiced sample of the utterance in progress
        self._voiced_end = 0  # end of its last voiced chunk
        self._voiced = 0  # voiced samples in it

    @property
    def speaking(self) -> bool:
        """Whether an utterance is in progress."""
        return self._start is not None

    def keep_from(self) -> int:
        """The first sample the caller must still keep (older audio is no longer needed)."""
        pad = self._samples(self.policy.pad)
        origin = self.position if self._start is None else self._start
        return max(0, origin - pad)

    def push(self, probability: float) -> Utterance | None:
        """One more chunk's speech probability; an utterance if this chunk completed one."""
        begin = self.position
        self.position += self.chunk
        p = self.policy
        if self._start is None:
            if probability >= p.on:
                self._start, self._voiced_end, self._voiced = begin, self.position, self.chunk
            return None
        if probability >= p.off:
            self._voiced_end = self.position
            self._voiced += self.chunk
        elif self.position - self._voiced_end >= self._samples(p.min_silence):
            return self._finish()
        if self.position - self._start >= self._samples(p.max_seconds):
            return self._finish(cut=True)
        return None

    def flush(self) -> Utterance | None:
        """The stream stops (or has a hole): the utterance in progress, if any, is complete."""
        return self._finish() if self._start is not None else None

    def _finish(self, cut: bool = False) -> Utterance | None:
        assert self._start is not None
        pad = self._samples(self.policy.pad)
        start = max(0, self._start - pad)
        end = self.position if cut else min(self.position, self._voiced_end + pad)
        enough = self._voiced >= self._samples(self.policy.min_speech)
        self._start = None
        if cut and enough:
            # Cut in the middle of speech: what follows goes on as a new utterance at once.
            self._start, self._voiced_end, self._voiced = self.position, self.position, 0
        return Utterance(start, end) if enough else None

    def _samples(self, seconds: float) -> int:
        return round(seconds * self._rate)
