"""The AAC encoder, checked through the fMP4 writer with PyAV and ffprobe."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from causerie.media import fmp4
from causerie.media.encoder import FRAME_SAMPLES, AacEncoder, audio_specific_config


def to_mp4(encoder: AacEncoder, frames: list) -> bytes:
    """init + one fragment per 10 frames, as the packager lays them out."""
    init = fmp4.init_segment(
        sample_rate=48000, channels=1, audio_specific_config=encoder.audio_specific_config
    )
    fragments = [
        fmp4.fragment(
            sequence_number=n + 1,
            base_decode_time=n * 10 * FRAME_SAMPLES,
            samples=[f.data for f in frames[n * 10 : (n + 1) * 10]],
        )
        for n in range((len(frames) + 9) // 10)
    ]
    return init + b"".join(fragments)


@pytest.mark.parametrize(("rate", "expected"), [(48000, "1188"), (44100, "1208"), (24000, "1308")])
def test_audio_specific_config_matches_ffmpeg(rate, expected):
    assert audio_specific_config(rate, 1).hex() == expected
    codec = av.CodecContext.create("aac", "w")
    codec.sample_rate = rate
    codec.layout = "mono"
    codec.format = "fltp"
    codec.time_base = Fraction(1, rate)
    codec.open()
    # FFmpeg's extradata: the same two bytes, then explicit "no SBR" signalling.
    assert codec.extradata[:2] == audio_specific_config(rate, 1)


def test_audio_specific_config_rejects_unknown_rates():
    with pytest.raises(ValueError, match="12345 Hz"):
        audio_specific_config(12345)


def test_priming_frame_and_pts(tone):
    encoder = AacEncoder()
    pcm = tone(440, 0.5)  # 24000 samples: 23 full frames and a remainder
    frames = encoder.encode(pcm)
    # FFmpeg's aac starts one frame early (priming) and holds back two frames of look-ahead.
    assert frames[0].pts == -FRAME_SAMPLES
    assert [f.pts for f in frames] == [(i - 1) * FRAME_SAMPLES for i in range(len(frames))]
    assert len(frames) == 24000 // FRAME_SAMPLES - 1
    tail = encoder.flush()
    everything = frames + tail
    assert [f.pts for f in everything] == [(i - 1) * FRAME_SAMPLES for i in range(len(everything))]
    # After the flush every input sample is inside some frame.
    assert everything[-1].pts + FRAME_SAMPLES >= pcm.size
    assert encoder.flush() == []
    with pytest.raises(RuntimeError, match="flushed"):
        encoder.encode(pcm)


def test_chunking_does_not_matter(tone):
    pcm = tone(440, 0.3)
    whole = AacEncoder()
    pieces = AacEncoder()
    one = whole.encode(pcm) + whole.flush()
    rng = np.random.default_rng(1)
    many, start = [], 0
    while start < pcm.size:
        size = int(rng.integers(1, 3000))
        many += pieces.encode(pcm[start : start + size])
        start += size
    many += pieces.flush()
    assert one == many


def test_rejects_anything_but_mono_int16():
    with pytest.raises(ValueError, match="int16"):
        AacEncoder().encode(np.zeros(1024, dtype=np.float32))


def test_two_seconds_of_tone_round_trip(tone, decode_mp4, probe, frequency_of):
    encoder = AacEncoder()
    pcm = tone(1000, 2.0, dbfs=-6.0)
    frames = []
    for i in range(0, pcm.size, 960):  # 20 ms at a time, as the mixer delivers it
        frames += encoder.encode(pcm[i : i + 960])
    frames += encoder.flush()
    data = to_mp4(encoder, frames)

    samples, decoded = decode_mp4(data)
    assert decoded[0].sample_rate == 48000
    assert decoded[0].layout.name == "mono"
    assert samples.size == len(frames) * FRAME_SAMPLES
    # Skip the priming frame and the first real one (codec settling), then check the tone.
    steady = samples[2 * FRAME_SAMPLES : 2 * FRAME_SAMPLES + 48000]
    assert frequency_of((steady * 32768).astype(np.int16)) == pytest.approx(1000, abs=2)
    rms = float(np.sqrt(np.mean(np.square(steady))))
    assert 20 * np.log10(rms) == pytest.approx(-9.0, abs=1.0)  # -6 dBFS peak sine = -9 dBFS RMS

    report = probe(data)
    (stream,) = report["streams"]
    assert stream["codec_name"] == "aac"
    assert stream["profile"] == "LC"
    assert stream["sample_rate"] == "48000"
    assert stream["channels"] == 1
    # 2 s of input, plus the priming frame and the padding of the last frame.
    assert float(report["format"]["duration"]) == pytest.approx(2.0, abs=0.05)
    assert float(report["format"]["duration"]) == pytest.approx(len(frames) * 1024 / 48000)
