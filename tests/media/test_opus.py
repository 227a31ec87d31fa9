"""libopus through ctypes: decoding, concealment, and in-band FEC rebuilding a lost packet."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest

from causerie.media.jitter import JitterBuffer
from causerie.media.mixer import Mixer
from causerie.media.opus import OpusDecoder, packet_samples
from causerie.media.voice import Voice


def encode(pcm: np.ndarray, **options: str) -> list[bytes]:
    """Mono int16 PCM at 48 kHz as 20 ms Opus packets (PyAV's libopus encoder)."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = 32000
    codec.options = options
    packets = []
    for start in range(0, pcm.size - 959, 960):
        frame = av.AudioFrame.from_ndarray(pcm[start : start + 960].reshape(1, -1), "s16", "mono")
        frame.sample_rate = 48000
        frame.pts = start
        frame.time_base = fractions.Fraction(1, 48000)
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets


def voice_like(seconds: float) -> np.ndarray:
    """A vowel-ish signal: a 150 Hz buzz through a few formants, syllables 200 ms apart."""
    rng = np.random.default_rng(7)
    t = np.arange(round(seconds * 48000)) / 48000
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 30))
    formants = sum(np.sin(2 * np.pi * f * t) * 0.3 for f in (700, 1200, 2500))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t) ** 2
    signal = (buzz * 0.2 + formants * 0.1) * envelope + rng.normal(0, 0.01, t.size)
    return (np.clip(signal, -1, 1) * 12000).astype(np.int16)


def test_packets_decode_to_their_duration() -> None:
    packets = encode(voice_like(0.5))
    decoder = OpusDecoder()
    assert packet_samples(packets[3]) == 960
    assert all(decoder.decode(p).size == 960 for p in packets)
    assert decoder.conceal().size == 960
    assert packet_samples(b"") == 0


def test_fec_rebuilds_a_lost_packet_better_than_concealment() -> None:
    pcm = voice_like(4.0)
    packets = encode(pcm, application="voip", fec="1", packet_loss="20")
    rebuilt, concealed, reference = [], [], []
    for lost in range(20, len(packets) - 1, 7):
        # Three decoders in the same state: one gets the packet, one rebuilds it from the next
        # one's FEC data, one conceals it.
        decoders = [OpusDecoder() for _ in range(3)]
        for decoder in decoders:
            for packet in packets[:lost]:
                decoder.decode(packet)
        reference.append(decoders[0].decode(packets[lost]).astype(float))
        rebuilt.append(decoders[1].recover(packets[lost + 1]).astype(float))
        concealed.append(decoders[2].conceal().astype(float))
    # The encoder adds FEC data where it finds it worth it (voiced frames): there, the lost
    # packet is rebuilt from it, and comes much closer to the original than a concealment.
    used = [i for i, (r, c) in enumerate(zip(rebuilt, concealed, strict=True)) if (r != c).any()]
    assert len(used) >= 5

    def error(guess: list[np.ndarray]) -> float:
        return float(np.mean([np.mean((guess[i] - reference[i]) ** 2) for i in used]))

    assert error(rebuilt) < 0.5 * error(concealed)


def test_corrupt_packets_are_concealed_not_raised() -> None:
    mixer = Mixer()
    source = mixer.add_input("a")
    voice = Voice(JitterBuffer(target=1))
    voice.put(0, b"\xff\xff\xff")  # not Opus
    voice.fill(source)
    assert source.queued_samples == 960
    assert voice.decode_errors == 1


@pytest.mark.parametrize("lost", [set(), {3}, {3, 4}])
def test_a_voice_fills_the_mixer_one_frame_per_tick(lost: set[int]) -> None:
    packets = encode(voice_like(0.5))
    mixer = Mixer()
    source = mixer.add_input("a")
    voice = Voice()
    for n, packet in enumerate(packets):
        if n not in lost:
            voice.put(n, packet)
        voice.fill(source)
        assert source.queued_samples == 960  # every tick, lost or not
        mixer.mix()
    assert voice.buffer.recovered + voice.buffer.concealed == len(lost)
