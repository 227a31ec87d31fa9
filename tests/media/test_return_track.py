"""The speakers' return audio: Opus encoded once per distinct mix-minus, and the return track."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from causerie.media.mixer import Mixer, MixResult
from causerie.media.return_track import (
    FRAME_SAMPLES,
    OpusEncoder,
    ReturnFeeds,
    ReturnTrack,
    silence_packet,
)
from tests.media.conftest import make_tone, spectrum_at
from tests.media.test_mixer import noise

# -- the feeds -------------------------------------------------------------------------------


def stage(talking: int, speakers: int = 10) -> tuple[Mixer, dict[str, np.ndarray]]:
    """Speakers s0.. with 1 s of audio each: the first ``talking`` talk, the others are idle."""
    mixer = Mixer()
    feeds = {}
    for n in range(speakers):
        mixer.add_input(f"s{n}")
        idle = noise(1.0, -70.0, seed=n)
        feeds[f"s{n}"] = make_tone(300 + 100 * n, 1.0) if n < talking else idle
    return mixer, feeds


def run(
    mixer: Mixer, audio: dict[str, np.ndarray], frames: int, feeds: ReturnFeeds
) -> tuple[dict[str, list[bytes]], list[MixResult]]:
    """Mix ``frames`` frames and send them: the packets each speaker's track got, the mixes."""
    tracks = {input_id: ReturnTrack(max_frames=frames) for input_id in audio}
    inputs = mixer.inputs
    results = []
    for i in range(frames):
        for input_id, pcm in audio.items():
            inputs[input_id].push(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
        results.append(mixer.mix())
        feeds.send(results[-1], tracks)
    return {key: list(track._queue) for key, track in tracks.items()}, results


def decode(packets: list[bytes]) -> np.ndarray:
    """Opus packets as mono int16, decoded as a browser does (stereo at 48 kHz, downmixed)."""
    decoder = av.CodecContext.create("libopus", "r")
    frames = [f for p in packets for f in decoder.decode(av.Packet(p))]
    stereo = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in frames])
    return stereo.mean(axis=1)


@pytest.mark.parametrize("talking", [1, 2, 3])
def test_ten_speakers_cost_one_encode_plus_one_per_talker(talking: int) -> None:
    mixer, audio = stage(talking)
    feeds = ReturnFeeds()
    packets, _ = run(mixer, audio, 50, feeds)
    # One encode of the shared mix and one per talker, each frame (they talk from the first
    # frame on: no shared feed yet to start their own encoder from).
    assert feeds.encodes == 50 * (1 + talking)
    assert all(len(sent) == 50 for sent in packets.values())
    idle = [packets[f"s{n}"] for n in range(talking, 10)]
    assert all(sent == idle[0] for sent in idle)  # the very same packets
    for n in range(talking):
        assert packets[f"s{n}"] != idle[0]


def test_each_speaker_hears_the_others_and_not_themselves() -> None:
    mixer, audio = stage(talking=2, speakers=4)
    packets, _ = run(mixer, audio, 50, ReturnFeeds())
    heard = {key: decode(sent)[4800:] for key, sent in packets.items()}  # after 0.1 s
    level = spectrum_at(make_tone(300, 1.0), 300)
    for key, others in (("s0", [400]), ("s1", [300]), ("s2", [300, 400]), ("s3", [300, 400])):
        for frequency in (300, 400):
            present = spectrum_at(heard[key].astype(np.int16), frequency)
            if frequency in others:
                assert present == pytest.approx(level, rel=0.15), (key, frequency)
            else:
                assert present < level / 100, (key, frequency)  # own voice: absent


def test_a_new_talker_takes_over_without_a_hole() -> None:
    # s1 talks throughout; s0 is idle for 0.5 s, then talks: its feed switches from the shared
    # encoder to one of its own. What it hears (s1's tone) must go on without a dip.
    mixer = Mixer()
    mixer.add_input("s0")
    mixer.add_input("s1")
    own = np.concatenate([noise(0.5, -70.0), make_tone(2000, 0.5)])
    audio = {"s0": own, "s1": make_tone(440, 1.0)}
    feeds = ReturnFeeds()
    packets, results = run(mixer, audio, 50, feeds)
    switch = next(i for i, r in enumerate(results) if "s0" in r.talkers)
    assert 20 <= switch <= 26
    # The shared feed and s1's own each frame (the shared one even once nobody hears it:
    # whoever stops talking first continues from it); s0's own from the switch on, after the
    # three frames of the shared feed that start its encoder.
    assert feeds.encodes == 50 + 50 + 3 + (50 - switch)
    heard = decode(packets["s0"])
    # The tone's envelope, in 2.5 ms steps, around the switch (the codec delays by 6.5 ms).
    around = heard[(switch - 2) * FRAME_SAMPLES : (switch + 3) * FRAME_SAMPLES]
    envelope = np.abs(around).reshape(-1, 120).max(axis=1)
    assert envelope.min() > 0.8 * envelope.max(), envelope


def test_a_talker_who_stops_goes_back_to_the_shared_feed_without_a_hole() -> None:
    # s0 and s1 talk (nobody hears the shared feed); s0 stops after 0.3 s and, after the hang
    # time, hears the shared feed again: s1's tone goes on without a dip.
    mixer = Mixer()
    mixer.add_input("s0")
    mixer.add_input("s1")
    own = np.concatenate([make_tone(2000, 0.3), noise(1.2, -70.0)])
    audio = {"s0": own, "s1": make_tone(440, 1.5)}
    packets, results = run(mixer, audio, 75, ReturnFeeds())
    switch = next(i for i, r in enumerate(results) if "s0" not in r.talkers)
    assert 35 <= switch <= 45
    heard = decode(packets["s0"])
    around = heard[(switch - 2) * FRAME_SAMPLES : (switch + 3) * FRAME_SAMPLES]
    envelope = np.abs(around).reshape(-1, 120).max(axis=1)
    assert envelope.min() > 0.8 * envelope.max(), envelope


def test_nobody_to_send_to_costs_nothing() -> None:
    mixer, audio = stage(talking=1, speakers=2)
    feeds = ReturnFeeds()
    mixer.inputs["s0"].push(audio["s0"][:FRAME_SAMPLES])
    feeds.send(mixer.mix(), {})  # speakers who publish only (sendonly), or the demo voices
    assert feeds.encodes == 0


def test_talkers_without_a_track_cost_nothing() -> None:
    mixer, audio = stage(talking=3, speakers=4)
    feeds = ReturnFeeds()
    tracks = {"s3": ReturnTrack(max_frames=10)}  # only the idle one hears anything back
    inputs = mixer.inputs
    for i in range(10):
        for input_id, pcm in audio.items():
            inputs[input_id].push(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
        feeds.send(mixer.mix(), tracks)
    assert feeds.encodes == 10
    assert tracks["s3"].queued_frames == 10


def test_a_speaker_not_in_the_mix_gets_nothing() -> None:
    mixer, audio = stage(talking=1, speakers=2)
    feeds = ReturnFeeds()
    late = ReturnTrack()
    mixer.inputs["s0"].push(audio["s0"][:FRAME_SAMPLES])
    feeds.send(mixer.mix(), {"s1": ReturnTrack(), "someone": late})
    assert late.queued_frames == 0


def test_the_encoder_makes_one_mono_packet_a_frame() -> None:
    encoder = OpusEncoder()
    tone = make_tone(440, 0.1)
    packets = [encoder.encode(tone[i : i + FRAME_SAMPLES]) for i in range(0, tone.size, 960)]
    assert [len(p) for p in packets] == [1] * 5
    # The TOC byte's stereo flag (RFC 6716 §3.1) is clear: mono, half the bits of stereo.
    assert not packets[0][0][0] & 0x04


# -- the track -------------------------------------------------------------------------------


async def test_the_return_track_sends_queued_packets_in_order() -> None:
    track = ReturnTrack()
    for value in (b"one", b"two"):
        track.push(value)
    first, second = await track.recv(), await track.recv()
    assert (bytes(first), bytes(second)) == (b"one", b"two")
    # Timestamps of their own, 20 ms apart at 48 kHz, whichever encoder made each packet.
    assert (first.pts, second.pts) == (0, FRAME_SAMPLES)
    assert first.time_base == fractions.Fraction(1, 48000)


async def test_the_return_track_drops_the_oldest_beyond_60_ms() -> None:
    track = ReturnTrack()
    for value in range(5):
        track.push(bytes([value]))
    assert track.queued_frames == 3 and track.dropped_frames == 2
    values = [bytes(await track.recv()) for _ in range(3)]
    assert values == [b"\x02", b"\x03", b"\x04"]


async def test_the_return_track_paces_silence_when_nothing_comes() -> None:
    track = ReturnTrack()
    started = time.monotonic()
    packets = [await track.recv() for _ in range(11)]
    elapsed = time.monotonic() - started
    assert all(bytes(p) == silence_packet() for p in packets)
    assert [p.pts for p in packets] == [n * FRAME_SAMPLES for n in range(11)]
    assert 0.18 < elapsed < 0.4  # ten 20 ms steps after the first packet
    # A packet pushed while recv() waits is sent at once.
    waiting = asyncio.create_task(track.recv())
    await asyncio.sleep(0.005)
    track.push(b"seven")
    assert bytes(await asyncio.wait_for(waiting, 0.1)) == b"seven"


def test_the_silence_packet_decodes_to_silence() -> None:
    # Decoded as aiortc and browsers do: stereo s16 at 48 kHz (the packet itself is mono).
    decoder = av.CodecContext.create("libopus", "r")
    frames = [f for _ in range(5) for f in decoder.decode(av.Packet(silence_packet()))]
    assert sum(f.samples for f in frames) == 5 * FRAME_SAMPLES
    pcm = np.concatenate([f.to_ndarray().ravel() for f in frames])
    assert pcm.dtype == np.int16 and np.abs(pcm).max() <= 2  # within the last bit or so


async def test_a_stopped_return_track_ends() -> None:
    track = ReturnTrack()
    waiting = asyncio.create_task(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await waiting
    track.push(b"late")  # ignored, no error
    with pytest.raises(MediaStreamError):
        await track.recv()
