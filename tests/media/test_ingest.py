"""Ingest without HTTP: offer checks, candidate filtering, downmix, DTX, Speakers."""

from __future__ import annotations

import asyncio
import fractions
from datetime import UTC, datetime

import aioice.ice
import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from causerie.domain import Conflict, Space
from causerie.media import rtc
from causerie.media.broadcasts import Broadcasts
from causerie.media.rtc import (
    StandingDelay,
    release_audio_at_once,
    restrict_host_addresses,
    to_mono,
)
from causerie.media.sdp import InvalidOffer, check_offer, keep_candidates
from causerie.media.speakers import Speakers
from tests.fixtures.rtc import ToneTrack, loopback_only, offer

NOW = datetime(2026, 1, 1, tzinfo=UTC)

AUDIO_OFFER = """v=0\r
o=- 1 1 IN IP4 0.0.0.0\r
s=-\r
t=0 0\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
c=IN IP4 0.0.0.0\r
a=rtpmap:111 opus/48000/2\r
a=ice-ufrag:abcd\r
a=ice-pwd:abcdefghijklmnopqrstuvwx\r
a=fingerprint:sha-256 AB:CD:EF:01\r
a=setup:actpass\r
a=candidate:1 1 udp 2122260223 10.1.2.3 50000 typ host\r
a=candidate:2 1 udp 2122260223 127.0.0.1 50001 typ host\r
a=candidate:3 1 udp 2122260223 abc.local 50002 typ host\r
a=candidate:4 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r
"""


# -- offers ------------------------------------------------------------------------------------


def test_an_audio_offer_is_sendrecv_by_default() -> None:
    summary = check_offer(AUDIO_OFFER)
    assert summary.kinds == ("audio",)
    assert summary.audio_index == 0
    assert summary.audio_direction == "sendrecv" and summary.wants_return


def test_directions_come_from_the_media_or_the_session() -> None:
    assert check_offer(AUDIO_OFFER + "a=sendonly\r\n").audio_direction == "sendonly"
    session_level = AUDIO_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    assert not check_offer(session_level).wants_return


def test_the_first_audio_that_sends_is_the_voice() -> None:
    video = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n"
    quiet = "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=recvonly\r\n"
    head, media = AUDIO_OFFER.split("m=audio", 1)
    summary = check_offer(head + video + quiet + "m=audio" + media)
    assert summary.kinds == ("video", "audio", "audio")
    assert summary.audio_index == 2


@pytest.mark.parametrize(
    ("sdp", "message"),
    [
        ("", "v=0"),
        ("v=1\r\n", "v=0"),
        ("v=0\r\nnot sdp\r\n", "line 2"),
        ("v=0\r\ns=-\r\n", "no media"),
        ("v=0\r\nm=audio nine RTP/AVP 0\r\n", "media line"),
        (AUDIO_OFFER.replace("m=audio", "m=video"), "no audio"),
        (AUDIO_OFFER + "a=recvonly\r\n", "sends no audio"),
        (AUDIO_OFFER + "a=inactive\r\n", "sends no audio"),
        (AUDIO_OFFER.replace("m=audio 9", "m=audio 0"), "sends no audio"),
        (AUDIO_OFFER.replace("a=ice-ufrag:abcd\r\n", ""), "ICE"),
        (AUDIO_OFFER.replace("AB:CD:EF:01", "not-hex"), "fingerprint"),
        ("v=0\r\n" + "a=x\r\n" * 20000, "too long"),
    ],
)
def test_bad_offers(sdp: str, message: str) -> None:
    with pytest.raises(InvalidOffer, match=message):
        check_offer(sdp)


def test_only_candidates_on_allowed_addresses_are_kept() -> None:
    kept = keep_candidates(AUDIO_OFFER, ["127.0.0.1"])
    candidates = [line for line in kept.splitlines() if line.startswith("a=candidate:")]
    assert [c.split()[0] for c in candidates] == ["a=candidate:2", "a=candidate:4"]
    assert "a=fingerprint:" in kept and kept.endswith("\r\n")


def test_host_addresses_are_restricted_process_wide() -> None:
    try:
        restrict_host_addresses(["127.0.0.1", "::1"])
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        restrict_host_addresses(None)
        assert aioice.ice.get_host_addresses is rtc._ALL_HOST_ADDRESSES
    finally:
        loopback_only()  # never leave this process able to gather on other interfaces
    assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"]


# -- downmix -----------------------------------------------------------------------------------


def _frame(samples: np.ndarray, layout: str, fmt: str = "s16", rate: int = 48000) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout=layout)
    frame.sample_rate = rate
    frame.pts = 0
    frame.time_base = fractions.Fraction(1, rate)
    return frame


def test_stereo_is_averaged_to_mono() -> None:
    left = np.full(960, 1000, dtype=np.int16)
    right = np.full(960, -3000, dtype=np.int16)
    interleaved = np.stack([left, right], axis=1).reshape(1, -1)
    pcm, resampler = to_mono(_frame(interleaved, "stereo"))
    assert resampler is None
    assert pcm.dtype == np.int16 and pcm.shape == (960,)
    assert (pcm == -1000).all()


def test_mono_passes_and_other_formats_are_resampled() -> None:
    mono = np.arange(960, dtype=np.int16).reshape(1, -1)
    pcm, _ = to_mono(_frame(mono, "mono"))
    assert (pcm == mono[0]).all()
    planar = np.full((2, 441), 0.5, dtype=np.float32)
    pcm, resampler = to_mono(_frame(planar, "stereo", "fltp", 44100))
    assert resampler is not None and pcm.dtype == np.int16
    more, _ = to_mono(_frame(planar, "stereo", "fltp", 44100), resampler)
    assert 0 < pcm.size + more.size <= 960


# -- delay -------------------------------------------------------------------------------------


def test_standing_delay_is_trimmed_one_frame_per_window() -> None:
    delay = StandingDelay(window=5, keep_samples=480)
    # Always at least 1.5 frames waiting before each push: one frame can go, once per window.
    decisions = [delay.should_drop(queued, 960) for queued in [1440, 2400, 1500, 1920, 1440] * 2]
    assert decisions == [False] * 4 + [True] + [False] * 4 + [True]
    assert delay.dropped == 2
    # Less slack than that at any point in the window: nothing is dropped.
    assert not any(delay.should_drop(queued, 960) for queued in [2000, 2000, 1439, 2000, 2000])


async def test_received_audio_is_released_without_prefetch() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("audio")
        release_audio_at_once(transceiver)
        buffer = transceiver.receiver._RTCRtpReceiver__jitter_buffer
        assert buffer._prefetch == 0 and buffer.capacity == 16
    finally:
        await pc.close()


# -- the registry ------------------------------------------------------------------------------


@pytest.fixture
async def on_air():
    """A Speakers registry over a live pipeline of space "s1"."""
    loopback_only()
    broadcasts = Broadcasts()
    pipeline = await broadcasts.start("s1")
    speakers = Speakers(broadcasts, host_addresses=["127.0.0.1"])
    yield speakers, pipeline, broadcasts
    await speakers.close_all()
    await broadcasts.stop_all()


def live_space(*speakers: str) -> Space:
    space = Space.create(space_id="s1", host_id="host", host_name="Hana", title="T", now=NOW)
    space.start("host", NOW)
    for user in speakers:
        space.invite_speaker("host", user, user)
        space.accept_invitation(user)
    return space


async def answer(pc: RTCPeerConnection, sdp: str) -> None:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))


async def test_video_and_extra_audio_are_answered_inactive(on_air) -> None:
    speakers, pipeline, _ = on_air
    pc = await offer(ToneTrack(440), receive=False, video=True)
    try:
        session_id, sdp = await speakers.publish("s1", "host", pc.localDescription.sdp)
        media = sdp.split("m=")[1:]
        assert media[0].startswith("audio") and "a=recvonly" in media[0]
        assert media[1].startswith("video") and "a=inactive" in media[1]
        assert "host" in pipeline.mixer.inputs
        [info] = speakers.sessions("s1")
        assert info.session_id == session_id and not info.sends_back
    finally:
        await pc.close()


async def test_the_answer_asks_for_opus_dtx(on_air) -> None:
    speakers, _, _ = on_air
    pc = await offer(ToneTrack(440))
    try:
        _, sdp = await speakers.publish("s1", "host", pc.localDescription.sdp)
        [opus] = [line for line in sdp.splitlines() if line.endswith(" opus/48000/2")]
        payload_type = opus.split(":")[1].split()[0]
        assert f"a=fmtp:{payload_type} usedtx=1" in sdp.splitlines()
    finally:
        await pc.close()


async def test_the_mix_hook_is_chained_not_replaced(on_air) -> None:
    speakers, pipeline, _ = on_air
    seen = []
    pipeline.on_mix = seen.append
    pc = await offer(ToneTrack(440))
    try:
        _, sdp = await speakers.publish("s1", "host", pc.localDescription.sdp)
        await answer(pc, sdp)
        await asyncio.sleep(0.2)
        assert len(seen) >= 5
        assert all("host" in result.minus for result in seen[-3:])
    finally:
        await pc.close()


async def test_sync_mutes_and_ends_sessions(on_air) -> None:
    speakers, pipeline, _ = on_air
    pc = await offer(ToneTrack(440))
    try:
        await speakers.publish("s1", "bob", pc.localDescription.sdp)
        space = live_space("bob")
        space.set_muted("host", "bob", True)
        await speakers.stage_changed(space)
        assert pipeline.mixer.inputs["bob"].muted
        space.set_muted("host", "bob", False)
        speakers.sync(space)
        assert not pipeline.mixer.inputs["bob"].muted
        space.move_to_audience("host", "bob")
        speakers.sync(space)
        assert speakers.sessions("s1") == [] and "bob" not in pipeline.mixer.inputs
    finally:
        await pc.close()


async def test_publishing_needs_the_space_on_the_air_and_a_free_input(on_air) -> None:
    speakers, pipeline, broadcasts = on_air
    pc = await offer(ToneTrack(440))
    try:
        with pytest.raises(Conflict, match="not on the air"):
            await speakers.publish("other", "host", pc.localDescription.sdp)
        pipeline.mixer.add_input("demo-voice")
        with pytest.raises(Conflict, match="under your name"):
            await speakers.publish("s1", "demo-voice", pc.localDescription.sdp)
        with pytest.raises(InvalidOffer):
            await speakers.publish("s1", "host", "v=0\r\n")
        await speakers.publish("s1", "host", pc.localDescription.sdp)
        # Going off the air lets the speakers go.
        await broadcasts.stop("s1")
        assert speakers.sessions("s1") == []
    finally:
        await pc.close()
