"""The few places causerie adjusts aiortc and aioice, and the audio frames it reads from them.

Kept apart so that an upgrade of aiortc has one module to check: the host addresses ICE may
offer, the receive delay aiortc holds audio for, asking speakers for Opus DTX, negotiating one
voice track, and frames downmixed to mono.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

import aioice.ice
import av
import numpy as np
from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack

from .return_track import ReturnTrack
from .sdp import InvalidOffer

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


# -- Delay ----------------------------------------------------------------------------------


class StandingDelay:
    """Decides when to drop a speaker's frame so that audio does not sit in the mixer queue.

    The mixer takes one frame per tick and a speaker delivers one frame per 20 ms, so whatever
    audio waits in the speaker's queue at the start (a burst when the connection came up, a
    late tick) stays there for good: standing delay, heard by everyone. The mixer only drops
    beyond its bound (200 ms). This watches the queue just before each push: when, over a
    window of ``window`` pushes, it never held less than one frame plus ``keep_samples``, a
    frame could have been missing all along without any underrun, so one incoming frame is
    dropped. What remains is ``keep_samples`` or so of slack for network jitter.
    """

    def __init__(self, *, window: int = 50, keep_samples: int = 480) -> None:
        self.window = window
        self.keep_samples = keep_samples
        self._pushes = 0
        self._least: int | None = None
        self.dropped = 0

    def should_drop(self, queued_samples: int, frame_samples: int) -> bool:
        """Call before pushing a frame of ``frame_samples``; True means drop that frame."""
        if self._least is None or queued_samples < self._least:
            self._least = queued_samples
        self._pushes += 1
        if self._pushes < self.window:
            return False
        drop = self._least >= frame_samples + self.keep_samples
        self._pushes, self._least = 0, None
        self.dropped += drop
        return drop


def release_audio_at_once(transceiver: RTCRtpTransceiver) -> None:
    """Let aiortc hand each received audio frame on as soon as it is complete.

    aiortc's audio receiver holds four frames (80 ms) in its jitter buffer before decoding
    (``prefetch=4``), and has no setting for it. causerie does not need that: the mixer's
    input queue already absorbs jitter, and those 80 ms would be added to what every speaker
    hears of the others. This replaces the receiver's private jitter buffer by one without
    prefetch (same capacity, same reordering and loss handling); one of the two places causerie
    touches aiortc's internals (see :func:`ask_for_dtx`), and does nothing if a newer aiortc is
    built differently.
    """
    name = "_RTCRtpReceiver__jitter_buffer"
    current = getattr(transceiver.receiver, name, None)
    if isinstance(current, JitterBuffer):
        setattr(transceiver.receiver, name, JitterBuffer(capacity=current.capacity, prefetch=0))
    else:
        logger.debug("aiortc's receiver has no jitter buffer where expected; left as is")


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
) -> MediaStreamTrack:
    """Apply the offer, keep one audio m-line, create the answer; returns the voice track."""
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
    release_audio_at_once(voice)
    ask_for_dtx(voice)
    if return_track is not None:
        voice.sender.replaceTrack(return_track)
        voice.direction = "sendrecv"
    try:
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:
        logger.info("cannot answer the SDP offer: %r", exc)
        reason = str(exc) or type(exc).__name__
        raise InvalidOffer(f"the SDP offer cannot be answered: {reason}") from exc
    return voice.receiver.track


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
