"""Ingest without HTTP: offer checks, candidate filtering, downmix, DTX, Speakers."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
from datetime import UTC, datetime, timedelta

import aioice.ice
import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from OpenSSL import SSL

from causerie.domain import Conflict, Space
from causerie.media import rtc
from causerie.media.broadcasts import Broadcasts
from causerie.media.rtc import (
    release_audio_at_once,
    restrict_host_addresses,
    to_mono,
)
from causerie.media.sdp import (
    Fragment,
    InvalidOffer,
    answer_fragment,
    check_offer,
    keep_candidates,
    parse_fragment,
    shape_answer,
)
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
        fmtp = next(line for line in sdp.splitlines() if line.startswith(f"a=fmtp:{payload_type} "))
        params = fmtp.split(" ", 1)[1].split(";")
        assert "usedtx=1" in params and "useinbandfec=1" in params  # DTX and in-band FEC
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


# -- the answer, fragments, DTLS -----------------------------------------------------------------

ANSWER = """v=0\r
o=- 1 1 IN IP4 0.0.0.0\r
s=-\r
t=0 0\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
c=IN IP4 0.0.0.0\r
a=mid:0\r
a=rtpmap:111 opus/48000/2\r
a=ice-ufrag:wxyz\r
a=ice-pwd:abcdefghijklmnopqrstuv\r
a=candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host\r
a=fingerprint:sha-256 AB:CD\r
a=setup:active\r
"""


def test_an_actpass_offer_gets_the_node_as_dtls_server() -> None:
    shaped = shape_answer(ANSWER, AUDIO_OFFER)
    assert "a=setup:passive" in shaped and "a=setup:active" not in shaped
    # An offer that insists on being the server keeps the node as the client.
    passive_offer = AUDIO_OFFER.replace("a=setup:actpass", "a=setup:passive")
    assert "a=setup:active" in shape_answer(ANSWER, passive_offer)


def test_the_answer_asks_for_opus_in_band_fec() -> None:
    shaped = shape_answer(ANSWER, AUDIO_OFFER)
    assert "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n" in shaped
    with_fmtp = ANSWER.replace(
        "a=rtpmap:111 opus/48000/2\r\n", "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1\r\n"
    )
    assert "a=fmtp:111 stereo=1;useinbandfec=1\r\n" in shape_answer(with_fmtp, AUDIO_OFFER)
    assert shape_answer(shape_answer(ANSWER, AUDIO_OFFER), AUDIO_OFFER).count("useinbandfec") == 1


def test_a_trickle_fragment() -> None:
    fragment = parse_fragment(
        "a=ice-options:trickle\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
        "m=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
        "a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n"
        "a=end-of-candidates\r\n"
    )
    assert (fragment.ufrag, fragment.pwd) == ("EsAw", "P2uYro0UCOQ4zxjKXaWCBui1")
    assert fragment.candidates == (
        "candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host generation 0",
    )
    assert fragment.end_of_candidates
    assert parse_fragment("a=end-of-candidates\r\n") == Fragment(None, None, (), True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not sdp\r\n", "line 1"),
        ("a=ice-ufrag:abcd\r\n", "both"),
        ("a=ice-ufrag:ab\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n", "credential"),
        ("a=ice-ufrag:ab cd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n", "credential"),
        ("a=candidate:1 1 udp\r\n", "candidate"),
        ("a=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n" * 65, "more than"),
        ("a=x\r\n" * 5000, "too long"),
    ],
)
def test_bad_fragments(text: str, message: str) -> None:
    with pytest.raises(InvalidOffer, match=message):
        parse_fragment(text)


def test_the_answer_to_a_restart() -> None:
    body = answer_fragment(
        ANSWER, "newU", "newpasswordnewpassword", ["candidate:2 1 udp 1 192.0.2.1 5 typ host"]
    )
    assert body.splitlines() == [
        "a=ice-ufrag:newU",
        "a=ice-pwd:newpasswordnewpassword",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=candidate:2 1 udp 1 192.0.2.1 5 typ host",
        "a=end-of-candidates",
    ]


def test_a_node_on_a_real_address_checks_real_candidates_only() -> None:
    offer = AUDIO_OFFER + "a=end-of-candidates\r\n"
    kept = keep_candidates(offer, ["192.0.2.7"])
    candidates = [line.split()[0] for line in kept.splitlines() if line.startswith("a=candidate:")]
    assert candidates == ["a=candidate:1"]  # 10.1.2.3; not loopback, not mDNS
    assert "a=end-of-candidates" in kept
    # Nothing left to check: no end-of-candidates either, so ICE waits for the peer's checks.
    only_mdns = (
        AUDIO_OFFER.split("a=candidate:1")[0]
        + "a=candidate:3 1 udp 1 abc.local 5 typ host\r\na=end-of-candidates\r\n"
    )
    kept = keep_candidates(only_mdns, ["192.0.2.7"])
    assert "a=candidate" not in kept and "a=end-of-candidates" not in kept


def _handshake(client: SSL.Connection, server: SSL.Connection) -> None:
    """Run a DTLS handshake between two in-memory connections."""
    client.set_connect_state()
    server.set_accept_state()
    for _ in range(20):
        for side, other in ((client, server), (server, client)):
            with contextlib.suppress(SSL.WantReadError):
                side.do_handshake()
            with contextlib.suppress(SSL.WantReadError):
                other.bio_write(side.bio_read(65536))
        if client.get_peer_certificate() is not None and server.get_peer_certificate() is not None:
            try:
                client.do_handshake()
                server.do_handshake()
                return
            except SSL.WantReadError:
                continue
    raise AssertionError("no handshake")


def _rsa_server_context() -> SSL.Context:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "gst")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    context = SSL.Context(SSL.DTLS_METHOD)
    context.use_certificate(cert)
    context.use_privatekey(key)
    context.set_verify(SSL.VERIFY_PEER, lambda *args: True)
    context.set_tlsext_use_srtp(b"SRTP_AES128_CM_SHA1_80")
    return context


def test_the_dtls_client_accepts_an_rsa_server() -> None:
    from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate

    def attempt() -> None:
        ours = RTCCertificate.generateCertificate()._create_ssl_context(SRTP_PROFILES)
        _handshake(SSL.Connection(ours), SSL.Connection(_rsa_server_context()))

    original = RTCCertificate._create_ssl_context
    try:
        RTCCertificate._create_ssl_context = rtc._ORIGINAL_CONTEXT
        with pytest.raises(SSL.Error):  # aiortc as shipped: "no shared cipher"
            attempt()
        rtc.accept_rsa_peers()
        attempt()
    finally:
        RTCCertificate._create_ssl_context = original
