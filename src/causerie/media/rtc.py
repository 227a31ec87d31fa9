"""The few places causerie adjusts aiortc and aioice, and the audio frames it reads from them.

Kept apart so that an upgrade of aiortc has one module to check: the host addresses ICE may
offer, the DTLS cipher suites, the receive delay aiortc holds audio for, asking speakers for
Opus DTX, negotiating one voice track, and frames downmixed to mono.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import aioice.ice
import av
import numpy as np
from aioice import Candidate
from aioice.utils import random_string
from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtp import RtpPacket

from .return_track import ReturnTrack
from .sdp import InvalidOffer, shape_answer

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000

_ALL_HOST_ADDRESSES = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: Sequence[str] | None) -> None:
    """Make ICE gather host candidates on ``addresses`` only (None: every interface again).

    aioice looks up the machine's addresses in ``aioice.ice.get_host_addresses`` and never
    offers 127.0.0.1. This replaces that function, for the whole process (aioice has no
    per-connection setting), and is the only place causerie touches aioice's internals. Loopback
    tests and single-host deployments pass ``("127.0.0.1",)``; a node behind NAT passes the
    address its speakers can reach.
    """
    if addresses is None:
        aioice.ice.get_host_addresses = _ALL_HOST_ADDRESSES
        return
    allowed = [ipaddress.ip_address(a) for a in addresses]

    def only_these(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [str(a) for a in allowed if (use_ipv4 if a.version == 4 else use_ipv6)]

    aioice.ice.get_host_addresses = only_these


# -- DTLS ---------------------------------------------------------------------------------------

# aiortc's certificates are ECDSA, and it limits every DTLS context to ECDSA suites. That is
# right for the server role (the peer must accept our key), but as a client it then cannot
# talk to a server with an RSA certificate (GStreamer 1.22's): OpenSSL says "no shared cipher".
# The RSA suites below only ever match a peer whose certificate is RSA; ours stays ECDSA.
RSA_PEER_SUITES = b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-SHA"
_ORIGINAL_CONTEXT = RTCCertificate._create_ssl_context


def accept_rsa_peers() -> None:
    """Let aiortc's DTLS client handshake with servers whose certificate is RSA (process-wide).

    Wraps aiortc's private context factory (the one place it sets its cipher list) to append
    ECDHE-RSA suites after its own. Idempotent.
    """
    if getattr(RTCCertificate._create_ssl_context, "_causerie", False):
        return

    def create_ssl_context(self: RTCCertificate, srtp_profiles: list[Any]) -> Any:
        context = _ORIGINAL_CONTEXT(self, srtp_profiles)
        context.set_cipher_list(ECDSA_SUITES + b":" + RSA_PEER_SUITES)
        return context

    create_ssl_context._causerie = True  # type: ignore[attr-defined]
    RTCCertificate._create_ssl_context = create_ssl_context  # type: ignore[method-assign]


# aiortc 1.16's own list, kept first so that an ECDSA peer negotiates exactly as before.
ECDSA_SUITES = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
    b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"
)


# -- Delay ---------------------------------------------------------------------------------


def release_audio_at_once(transceiver: RTCRtpTransceiver) -> None:
    """Let aiortc hand each received audio frame on as soon as it is complete.

    aiortc's audio receiver holds four frames (80 ms) in its jitter buffer before decoding
    (``prefetch=4``), and has no setting for it. causerie's own aiortc clients (tests,
    benchmarks: tests/fixtures/rtc.py) use this to hear the others without those 80 ms; the
    node itself takes the packets before that buffer (:func:`tap_audio`). This replaces the
    receiver's private jitter buffer by one without prefetch (same capacity, same reordering
    and loss handling), and does nothing if a newer aiortc is built differently.
    """
    name = "_RTCRtpReceiver__jitter_buffer"
    current = getattr(transceiver.receiver, name, None)
    if isinstance(current, JitterBuffer):
        setattr(transceiver.receiver, name, JitterBuffer(capacity=current.capacity, prefetch=0))
    else:
        logger.debug("aiortc's receiver has no jitter buffer where expected; left as is")


class PacketTap:
    """Stands in for aiortc's audio jitter buffer: hands each RTP packet to ``on_packet``.

    aiortc's receiver keeps doing what it does before its jitter buffer (RTCP statistics, so
    the speaker's encoder learns the loss rate and adds FEC; SRTP; RTX unwrapping), and gets
    no frame back: its own decoder thread stays idle. causerie's jitter buffer and decoder
    (media/jitter.py, media/opus.py) take over from there.
    """

    capacity = 16

    def __init__(self, on_packet: Callable[[int, bytes, int], None]) -> None:
        self.on_packet = on_packet

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self.on_packet(packet.sequence_number, packet.payload, packet.timestamp)
        return False, None


def tap_audio(transceiver: RTCRtpTransceiver, on_packet: Callable[[int, bytes, int], None]) -> None:
    """Send the transceiver's received audio packets to ``on_packet`` instead of aiortc's
    jitter buffer and decoder (the same private attribute as :func:`release_audio_at_once`)."""
    name = "_RTCRtpReceiver__jitter_buffer"
    if not isinstance(getattr(transceiver.receiver, name, None), JitterBuffer):
        raise RuntimeError("aiortc's receiver has no jitter buffer where expected")
    setattr(transceiver.receiver, name, PacketTap(on_packet))


def ask_for_dtx(transceiver: RTCRtpTransceiver) -> None:
    """Ask the speaker not to send while they are silent: ``usedtx=1`` in the answer's Opus fmtp.

    ``usedtx`` is the receiver's preference for discontinuous transmission (RFC 7587 §6.1).
    Browsers honour it: while the microphone is quiet they send one comfort-noise packet every
    400 ms instead of one every 20 ms. A silent speaker then costs the node (receiving,
    decrypting, decoding, mixing) next to nothing, and the mixer takes the gaps for silence;
    the first packet of speech arrives as usual. aiortc answers with its own codec parameters
    (none for Opus) and has no setting for them, so this adds the parameter to the codecs
    negotiated for this transceiver: its own copies, made when the offer was applied (call it
    between ``setRemoteDescription`` and ``createAnswer``). The second place causerie touches
    aiortc's internals (see :func:`release_audio_at_once`); it does nothing if a newer aiortc
    is built differently.
    """
    codecs = getattr(transceiver, "_codecs", None)
    if not isinstance(codecs, list):
        logger.debug("aiortc's transceiver has no negotiated codecs where expected; no DTX")
        return
    for codec in codecs:
        if isinstance(codec, RTCRtpCodecParameters) and codec.mimeType.lower() == "audio/opus":
            codec.parameters["usedtx"] = 1


async def negotiate(
    pc: RTCPeerConnection,
    offer_sdp: str,
    return_track: ReturnTrack | None,
    on_packet: Callable[[int, bytes, int], None],
) -> MediaStreamTrack:
    """Apply the offer, keep one audio m-line, create the answer; the voice's RTP packets go
    to ``on_packet`` (sequence number, Opus payload, RTP timestamp). Returns the voice track
    (it yields no frames: it ends when the connection does)."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    except Exception as exc:  # aiortc raises a variety of errors on input it cannot use
        logger.info("unusable SDP offer: %r", exc)
        reason = str(exc) or type(exc).__name__
        raise InvalidOffer(f"the SDP offer cannot be used: {reason}") from exc
    voice: RTCRtpTransceiver | None = None
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio" and voice is None and transceiver.receiver.track:
            voice = transceiver
        else:
            # Only the first sending audio m-line is mixed; anything else (video, a second
            # audio track) is answered "inactive", so nothing is decoded for nothing.
            transceiver.direction = "inactive"
    if voice is None:
        raise InvalidOffer("the SDP offer sends no audio")
    only_opus(voice)
    tap_audio(voice, on_packet)
    ask_for_dtx(voice)
    if return_track is not None:
        voice.sender.replaceTrack(return_track)
        voice.direction = "sendrecv"
    try:
        answer = await pc.createAnswer()
        shaped = shape_answer(answer.sdp, offer_sdp)
        await pc.setLocalDescription(RTCSessionDescription(sdp=shaped, type="answer"))
    except Exception as exc:
        logger.info("cannot answer the SDP offer: %r", exc)
        reason = str(exc) or type(exc).__name__
        raise InvalidOffer(f"the SDP offer cannot be answered: {reason}") from exc
    return voice.receiver.track


def only_opus(transceiver: RTCRtpTransceiver) -> None:
    """Answer the voice with Opus only (RFC 7874 makes it mandatory for WebRTC): causerie
    decodes it itself, with FEC and concealment. Raises InvalidOffer if the offer lacks it.

    aiortc keeps the codecs common to the offer and itself in ``_codecs``, offer's order first,
    and answers (and sends) with that list; it has no public way to narrow it after the offer.
    """
    codecs = getattr(transceiver, "_codecs", None)
    if codecs is None:
        return
    opus = [c for c in codecs if c.mimeType.lower() == "audio/opus"]
    if not opus:
        raise InvalidOffer("the SDP offer has no Opus audio (opus/48000/2)")
    transceiver._codecs = opus


def to_mono(
    frame: av.AudioFrame, resampler: av.AudioResampler | None = None
) -> tuple[np.ndarray, av.AudioResampler | None]:
    """A decoded frame as mono int16 at 48 kHz; returns (pcm, the resampler to reuse).

    aiortc's frames (packed s16, 48 kHz, mono or stereo) are downmixed with numpy; anything
    else goes through a resampler, kept by the caller between frames.
    """
    channels = frame.layout.nb_channels
    if frame.format.name == "s16" and frame.sample_rate == SAMPLE_RATE and channels <= 2:
        samples = frame.to_ndarray().reshape(-1, channels)
        if channels == 1:
            return samples[:, 0].copy(), resampler
        # (L + R) / 2: a mono source sent as two equal channels comes out unchanged.
        return (samples.astype(np.int32).sum(axis=1) // 2).astype(np.int16), resampler
    if resampler is None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return pcm.astype(np.int16, copy=False), resampler


# -- ICE after the answer: trickled candidates, restarts ------------------------------------------


class IceRestartFailed(RuntimeError):
    """The peer connection's ICE agent cannot restart (it has closed or failed)."""


def _ice_transport(pc: RTCPeerConnection) -> Any:
    """The peer connection's one ICE transport (WHIP bundles everything on one)."""
    for transceiver in pc.getTransceivers():
        return transceiver.receiver.transport.transport
    raise IceRestartFailed("the connection has no transport")


def local_ice(pc: RTCPeerConnection) -> tuple[str, str, list[str]]:
    """This side's ICE credentials and candidates (``candidate:`` values), as they are now."""
    transport = _ice_transport(pc)
    connection = transport._connection
    candidates = [f"candidate:{c.to_sdp()}" for c in connection.local_candidates]
    return connection.local_username, connection.local_password, candidates


def remote_ufrag(pc: RTCPeerConnection) -> str | None:
    """The peer's current ICE ufrag (a different one in a PATCH means a restart): aioice's once
    checks have started, the offer's until then."""
    current: str | None = _ice_transport(pc)._connection.remote_username
    if current is None and pc.remoteDescription is not None:
        for line in pc.remoteDescription.sdp.splitlines():
            if line.startswith("a=ice-ufrag:"):
                return line.split(":", 1)[1].strip()
    return current


async def add_remote_candidates(
    pc: RTCPeerConnection, candidates: Sequence[str], end_of_candidates: bool
) -> None:
    """Trickled candidates of the peer (RFC 8838): checks start towards them at once.

    aioice accepts candidates while (and after) it runs its checks; aiortc's public
    ``addIceCandidate`` would do the same with one candidate object at a time.
    """
    transport = _ice_transport(pc)
    connection = transport._connection
    for value in candidates:
        try:
            candidate = Candidate.from_sdp(value.removeprefix("candidate:"))
        except (ValueError, IndexError) as exc:
            raise InvalidOffer(f"malformed ICE candidate: {value[:80]!r}") from exc
        if not connection._remote_candidates_end:
            await connection.add_remote_candidate(candidate)
    if end_of_candidates and not connection._remote_candidates_end:
        await connection.add_remote_candidate(None)


async def restart_ice(
    pc: RTCPeerConnection,
    ufrag: str,
    pwd: str,
    candidates: Sequence[str],
    end_of_candidates: bool,
) -> tuple[str, str, list[str]]:
    """An ICE restart (RFC 8445 §9) on a live connection, which aiortc does not offer.

    The same aioice agent goes on with new credentials on both sides and a fresh check list;
    its sockets and host candidates stay. The pair selected so far keeps carrying media until
    the peer nominates a new one (RFC 8445 §9: media continues on the previous pair), then
    that one does; DTLS and SRTP go on unchanged over it, as ICE restarts require. Consent
    freshness (RFC 7675) runs on, with the new credentials, on whichever pair is selected.
    Returns the new local credentials and the local candidates.

    This reaches into aioice's ``Connection`` (its check list and credentials): the one place
    in causerie that does; checked against aioice 0.13.
    """
    transport = _ice_transport(pc)
    connection = transport._connection
    if transport.state in ("closed", "failed") or connection._closing:
        raise IceRestartFailed("the connection is closed: publish again")
    for pair in connection._check_list:
        if pair.task is not None:
            pair.task.cancel()
    connection._local_username = random_string(4)
    connection._local_password = random_string(22)
    connection.remote_username = ufrag
    connection.remote_password = pwd
    connection._check_list = []
    connection._check_list_done = False
    connection._check_list_state = asyncio.Queue()
    connection._nominating = set()
    connection._remote_candidates = []
    connection._remote_candidates_end = False
    transport.iceGatherer._remote_candidates_end = False
    await add_remote_candidates(pc, candidates, end_of_candidates)
    connection._unfreeze_initial()
    task = asyncio.get_running_loop().create_task(_run_checks(connection))
    _checks.add(task)
    task.add_done_callback(_checks.discard)
    return local_ice(pc)


_checks: set[asyncio.Task[None]] = set()
RESTART_CHECKS_SECONDS = 30.0


async def _run_checks(connection: Any) -> None:
    """Pace the restarted agent's own checks, as its connect() does (RFC 8445 §6.1.4.2)."""
    deadline = time.monotonic() + RESTART_CHECKS_SECONDS
    while time.monotonic() < deadline and not connection._closing:
        if not connection._check_periodic():
            return
        await asyncio.sleep(0.02)
