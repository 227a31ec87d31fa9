"""The node's side of a recognizer, without the process: what the media loop calls never
blocks and never grows without bound; program audio reaches the pipe at 16 kHz, in runs that
follow each other in program time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from causerie.captions.model import ResolvedModel
from causerie.captions.worker import QUEUE_SECONDS, SpaceCaptions, _contiguous, downsample


def test_downsample_keeps_speech_frequencies_and_scales_to_one() -> None:
    t = np.arange(960) / 48000
    tone = (16000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    out = downsample(tone)
    assert out.dtype == np.float32 and len(out) == 320
    assert np.max(np.abs(out)) == pytest.approx(16000 / 32768, rel=0.01)


def test_runs_are_joined_only_where_program_time_follows() -> None:
    frame = np.zeros(960, dtype=np.int16)
    frames = [(100.0, frame), (100.02, frame), (100.04, frame), (101.0, frame), (101.02, frame)]
    runs = _contiguous(frames)
    assert [(t0, len(samples)) for t0, samples in runs] == [(100.0, 2880), (101.0, 1920)]
    silence = np.zeros(960 * 50, dtype=np.int16)  # a stall's silence, one block
    runs = _contiguous([(5.0, frame), (5.02, silence), (6.02, frame)])
    assert [(t0, len(samples)) for t0, samples in runs] == [(5.0, 960 * 52)]


def test_feeding_is_bounded_and_drops_the_oldest() -> None:
    worker = SpaceCaptions("s", ResolvedModel("m", Path("/nowhere")), lambda line: None)
    frame = np.zeros(960, dtype=np.int16)
    kept = round(QUEUE_SECONDS / 0.02)
    for i in range(kept + 100):
        worker.feed(frame, 1000 + i * 0.02)
    assert len(worker._queue) == kept
    assert worker.stats.frames_dropped == 100 and worker.stats.frames_in == kept + 100
    assert worker._queue[0][0] == pytest.approx(1000 + 100 * 0.02)  # the oldest went first
    worker.kill()  # never started: nothing to end
    worker.feed(frame, 0.0)  # closing: ignored
    assert worker.stats.frames_in == kept + 100
