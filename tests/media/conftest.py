"""Shared helpers for the media tests: test tones, frequency analysis, and real decoders."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

SAMPLE_RATE = 48000


def make_tone(frequency: float, seconds: float, dbfs: float = -12.0) -> np.ndarray:
    """A sine tone as mono int16 PCM at 48 kHz, peak level ``dbfs``."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    peak = 32767 * 10 ** (dbfs / 20)
    return np.rint(peak * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def spectrum_at(pcm: np.ndarray, frequency: float) -> float:
    """Magnitude of the spectrum of ``pcm`` near ``frequency`` (Hann window), full scale = 1."""
    x = pcm.astype(np.float64) / 32768
    window = np.hanning(x.size)
    magnitude = np.abs(np.fft.rfft(x * window)) / (window.sum() / 2)
    bins = np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)
    near = np.abs(bins - frequency) <= 20
    return float(magnitude[near].max())


def dominant_frequency(pcm: np.ndarray) -> float:
    """The frequency of the largest spectral peak of ``pcm``."""
    x = pcm.astype(np.float64) * np.hanning(pcm.size)
    magnitude = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(pcm.size, 1 / SAMPLE_RATE)[int(np.argmax(magnitude))])


def decode(data: bytes) -> tuple[np.ndarray, list[av.AudioFrame]]:
    """Decode an MP4 held in memory with PyAV: (mono float samples, decoded frames)."""
    frames = []
    with av.open(io.BytesIO(data), format="mp4") as container:
        for frame in container.decode(audio=0):
            frames.append(frame)
    samples = np.concatenate([f.to_ndarray()[0] for f in frames]) if frames else np.zeros(0)
    return samples, frames


def ffprobe(data: bytes, tmp_path: Path, name: str = "probe.mp4") -> dict:
    """Run ffprobe on the bytes (written to a file) and return its JSON report."""
    path = tmp_path / name
    path.write_bytes(data)
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert result.stderr == "", result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def probe(tmp_path: Path) -> Callable[[bytes], dict]:
    """ffprobe as a function of bytes, using the test's temporary directory."""
    counter = iter(range(1_000_000))
    return lambda data: ffprobe(data, tmp_path, f"probe{next(counter)}.mp4")


@pytest.fixture
def tone() -> Callable[..., np.ndarray]:
    return make_tone


@pytest.fixture
def spectrum() -> Callable[[np.ndarray, float], float]:
    return spectrum_at


@pytest.fixture
def frequency_of() -> Callable[[np.ndarray], float]:
    return dominant_frequency


@pytest.fixture
def decode_mp4() -> Callable[[bytes], tuple[np.ndarray, list[av.AudioFrame]]]:
    return decode
