"""The demo voices (shipped assets) and the DemoSpeaker that plays them into the mixer."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time

import numpy as np
import pytest

from causerie.media.demo import DemoSpeaker, demo_voices, load_voice
from tests.harness.polling import eventually

RATE = 48000
WINDOW = 1920  # 40 ms: long enough to resolve a voice's pitch, short enough to follow syllables


def windows(pcm: np.ndarray) -> np.ndarray:
    return pcm[: pcm.size // WINDOW * WINDOW].reshape(-1, WINDOW).astype(np.float64)


def active(pcm: np.ndarray) -> np.ndarray:
    """Which 40 ms windows carry sound: louder than a tenth of the track's loud windows."""
    rms = np.sqrt((windows(pcm) ** 2).mean(axis=1))
    return rms > 0.1 * np.percentile(rms, 95)


def speech_figures(pcm: np.ndarray) -> dict[str, float]:
    """A few figures that tell speech from silence, a (beeping) tone, and noise."""
    on = active(pcm)
    minutes = pcm.size / RATE / 60
    spectra = np.abs(np.fft.rfft(windows(pcm)[on] * np.hanning(WINDOW), axis=1)) ** 2 + 1e-9
    dominant = np.argmax(spectra, axis=1) * RATE / WINDOW
    # Group dominant frequencies in 50 Hz bins: a tone has one, a voice wanders over many.
    _, counts = np.unique(np.round(dominant / 50), return_counts=True)
    flatness = np.exp(np.log(spectra).mean(axis=1)) / spectra.mean(axis=1)
    return {
        "active": float(on.mean()),
        "onsets_per_minute": np.count_nonzero(np.diff(on.astype(int)) == 1) / minutes,
        "distinct_dominant": len(counts),
        "top_dominant_share": counts.max() / counts.sum(),
        "median_dominant_hz": float(np.median(dominant)),
        "flatness": float(np.median(flatness)),
    }


def looks_like_speech(figures: dict[str, float]) -> bool:
    return (
        0.1 <= figures["active"] <= 0.9  # talks, with pauses
        and figures["onsets_per_minute"] >= 20  # words and phrases start and stop
        and figures["distinct_dominant"] >= 10  # the pitch and formants move
        and figures["top_dominant_share"] <= 0.5  # no single frequency rules
        and 80 <= figures["median_dominant_hz"] <= 4000  # the voice band
        and figures["flatness"] < 0.2  # tonal, not noise
    )


@pytest.fixture(scope="module")
def voices() -> dict[str, np.ndarray]:
    return {name: load_voice(path) for name, path in demo_voices().items()}


def test_demo_voices_are_shipped() -> None:
    paths = demo_voices()
    assert set(paths) == {"host", "guest"}
    for path in paths.values():
        assert path.is_file()
        assert path.suffix == ".opus"
        assert path.stat().st_size < 300_000  # committed to the repository: keep them small


def test_voices_decode_to_48k_mono_int16_of_equal_length(voices: dict[str, np.ndarray]) -> None:
    host, guest = voices["host"], voices["guest"]
    for pcm in (host, guest):
        assert pcm.dtype == np.int16
        assert pcm.ndim == 1
        assert 60 <= pcm.size / RATE <= 120
    # Sample-aligned halves of one conversation.
    assert host.size == guest.size


def test_load_voice_resamples(tmp_path) -> None:
    if shutil.which("sox") is None:
        pytest.skip("sox not installed")
    path = tmp_path / "tone.wav"  # 16 kHz stereo in, 48 kHz mono out
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "2", str(path), "synth", "0.5", "sine", "440"],
        check=True,
    )
    pcm = load_voice(path)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert abs(pcm.size - RATE // 2) <= 64  # 0.5 s at 48 kHz, give or take the filter delay


@pytest.mark.parametrize("name", ["host", "guest"])
def test_voice_is_speech_not_silence_or_tone(voices: dict[str, np.ndarray], name: str) -> None:
    pcm = voices[name]
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300
    figures = speech_figures(pcm)
    assert looks_like_speech(figures), figures


def test_speech_check_rejects_tones_and_noise() -> None:
    t = np.arange(RATE * 60) / RATE
    tone = (10000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    beeps = np.where(np.sin(2 * np.pi * t) > 0, tone, 0).astype(np.int16)
    noise = np.random.default_rng(0).normal(0, 3000, t.size).astype(np.int16)
    for fake in (tone, beeps, noise):
        assert not looks_like_speech(speech_figures(fake))


def test_voices_take_turns(voices: dict[str, np.ndarray]) -> None:
    host, guest = active(voices["host"]), active(voices["guest"])
    both = np.count_nonzero(host & guest)
    either = np.count_nonzero(host | guest)
    assert both <= 0.03 * either
    # And together they make a conversation: somebody talks most of the time.
    assert either >= 0.6 * host.size


async def test_speaker_pushes_frames_at_real_time() -> None:
    pcm = (np.arange(RATE * 3) % 1000).astype(np.int16)
    pushed: list[tuple[float, np.ndarray]] = []
    speaker = DemoSpeaker(pcm, lambda frame: pushed.append((time.monotonic(), frame)))
    began = time.monotonic()
    speaker.start()
    assert speaker.running
    await asyncio.sleep(1.0)
    await speaker.stop()
    elapsed = time.monotonic() - began  # a busy machine may oversleep a little
    assert not speaker.running

    count = len(pushed)
    assert 48 <= count <= elapsed * 50 + 2  # 50 frames a second
    for _, frame in pushed:
        assert frame.dtype == np.int16 and frame.shape == (960,)
    # In order, from the start of the recording, with no gap or repeat.
    assert np.array_equal(np.concatenate([f for _, f in pushed]), pcm[: count * 960])
    # Paced, not sent in a burst.
    span = pushed[-1][0] - pushed[0][0]
    assert span == pytest.approx((count - 1) * 0.02, abs=0.05)

    await asyncio.sleep(0.1)
    assert len(pushed) == count  # nothing after stop()


async def test_speaker_loops_and_keeps_time_by_the_clock() -> None:
    # Frames of 0.25 s, each filled with its index, a recording of 10 frames.
    now = [100.0]
    pushed: list[int] = []
    speaker = DemoSpeaker(
        np.repeat(np.arange(10, dtype=np.int16), 4),
        lambda frame: pushed.append(int(frame[0])),
        frame_samples=4,
        sample_rate=16,
        clock=lambda: now[0],
    )
    speaker.start()
    await eventually(lambda: len(pushed) == 1, 3, every=0.005)

    now[0] += 1.0  # a second late, but not more: catch up by sending what is owed
    await eventually(lambda: len(pushed) == 5, 3, every=0.005)
    assert pushed == [0, 1, 2, 3, 4]

    now[0] += 10.0  # far behind: skip to the frame due now (44), looping the recording
    await eventually(lambda: len(pushed) == 6, 3, every=0.005)
    assert pushed[-1] == 44 % 10
    assert speaker.frames_skipped == 39
    assert speaker.frames_sent == 6
    await speaker.stop()


async def test_speaker_pads_the_last_frame_and_wraps_around() -> None:
    now = [0.0]
    pushed: list[np.ndarray] = []
    speaker = DemoSpeaker(
        np.array([1, 2, 3, 4, 5], dtype=np.int16),
        pushed.append,
        frame_samples=4,
        sample_rate=16,
        clock=lambda: now[0],
    )
    speaker.start()
    await eventually(lambda: len(pushed) == 1, 3, every=0.005)
    now[0] += 0.5  # two more frames due: 1, and 2 (which wraps around to 0)
    await eventually(lambda: len(pushed) == 3, 3, every=0.005)
    await speaker.stop()
    assert [f.tolist() for f in pushed] == [[1, 2, 3, 4], [5, 0, 0, 0], [1, 2, 3, 4]]


async def test_failing_sink_is_logged_and_stop_does_not_hang(caplog) -> None:
    def sink(frame: np.ndarray) -> None:
        raise RuntimeError("mixer input closed")

    speaker = DemoSpeaker(np.ones(960, dtype=np.int16), sink)
    with caplog.at_level(logging.ERROR, logger="causerie.media.demo"):
        speaker.start()
        await eventually(lambda: not speaker.running, 3, every=0.005)
    assert "demo speaker failed" in caplog.text
    await asyncio.wait_for(speaker.stop(), 1.0)


def test_speaker_rejects_an_empty_recording() -> None:
    with pytest.raises(ValueError):
        DemoSpeaker(np.zeros(0, dtype=np.int16), lambda frame: None)
