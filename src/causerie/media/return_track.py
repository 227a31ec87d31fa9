"""The audio a speaker hears: their mix-minus, encoded to Opus once per distinct feed.

Every 20 ms the live pipeline mixes a frame (mixer.py). Everyone who is not talking hears the
same mix, the program, so :class:`ReturnFeeds` encodes it once and sends the same packet to
all their tracks; each talker, whose mix-minus leaves their own voice out, has an encoder of
their own while they talk. Ten speakers with one talking cost two encodes per frame, not ten.

aiortc's RTP sender reads a track with ``recv()``: an audio *frame* it would encode itself, per
sender (and measure its level in pure Python, about as costly as the encode), but an already
encoded ``av.Packet`` it only packetizes (``RTCRtpSender._next_encoded_frame`` then
``OpusEncoder.pack``). A :class:`ReturnTrack` therefore holds Opus packets, and its own RTP
timestamps, continuous whichever encoder made each packet. ``recv`` also paces the stream:

- a packet waiting in the queue is returned at once (the pipeline's clock paces the stream);
- the queue holds at most ``max_frames`` (60 ms by default): when the sender falls behind, the
  oldest audio is dropped, so the delay a speaker hears never builds up;
- when no packet comes (the space went off the air, the pipeline stalled), encoded silence goes
  out on a 20 ms schedule of its own, so the remote decoder keeps a steady stream.

The packets are mono Opus: the RTP stream is always declared ``opus/48000/2`` (RFC 7587 §7), but
each Opus packet says whether it is mono or stereo (the TOC byte's ``s`` bit, RFC 6716 §3.1),
and a stereo decoder plays a mono packet on both channels. A mono mix costs half the bits.
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import time
from collections import deque
from collections.abc import Callable, Mapping

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .mixer import MixResult

__all__ = ["OpusEncoder", "ReturnFeeds", "ReturnTrack", "silence_packet"]

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz: one mixer frame, one Opus frame
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)

BIT_RATE = 48000
"""Mono speech mixes: ample (browsers send a single voice at about 32 kbit/s)."""
COMPLEXITY = 5
"""libopus's effort, 0-10. Measured here (20 ms mono frames, ``voip``): about 230 µs a frame at
10 (the default), 180 µs at 5, 90 µs at 0. With encodes shared, few remain; 5 keeps most of the
quality."""

PRIME_FRAMES = 3
"""Frames of the shared feed a new talker's encoder is fed first (and their packets dropped).

Opus looks 6.5 ms ahead and predicts each frame from the ones before: a fresh encoder's first
packet starts with 6.5 ms of silence (a click), and its second one, measured here on a steady
tone, comes out half as loud again for a few hundred ms in the listener's decoder, whose state
is the shared encoder's. From the third frame on, the step is under 0.5 dB."""

# How long recv() waits for the pipeline before it sends silence instead. A little more than two
# frames: an ordinary late tick must not turn into an extra frame (which would be delay later).
PIPELINE_TIMEOUT = 2.5 * FRAME_SECONDS


class OpusEncoder:
    """Mono int16 frames (48 kHz, 960 samples) to Opus packets, with libopus through PyAV.

    Stateful, like any speech codec: one instance per continuous stream of audio.
    """

    def __init__(self, *, bit_rate: int = BIT_RATE, complexity: int = COMPLEXITY) -> None:
        codec = av.CodecContext.create("libopus", "w")
        assert isinstance(codec, av.AudioCodecContext)
        codec.bit_rate = bit_rate
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = SAMPLE_RATE
        codec.time_base = TIME_BASE
        # "voip": tuned for speech, and able to carry in-band FEC (RFC 6716 §2.1.7) later.
        codec.options = {"application": "voip", "compression_level": str(complexity)}
        codec.open()
        self._codec = codec
        self._pts = 0

    def encode(self, pcm: np.ndarray) -> list[bytes]:
        """Encode one frame; returns its packets (one per frame with libopus: it never waits)."""
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += frame.samples
        return [bytes(packet) for packet in self._codec.encode(frame)]


@functools.cache
def silence_packet() -> bytes:
    """One Opus packet of digital silence, to repeat when there is nothing to send."""
    encoder = OpusEncoder()
    silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    packets: list[bytes] = []
    # The first packets still hold the encoder's start-up; by the fifth, silence is steady.
    for _ in range(5):
        packets += encoder.encode(silence)
    return packets[-1]


class ReturnFeeds:
    """One space's mix-minus, encoded to Opus once per distinct feed, for its return tracks.

    Call :meth:`send` with every mixed frame and the return tracks of the moment, by mixer
    input id. Everyone who is not a talker of that frame gets the packet of one shared encoder,
    fed the program (which is their mix-minus, see MixResult); each talker with a track gets a
    packet from an encoder of their own, kept while they talk. Talkers without a track cost
    nothing. ``encodes`` counts the frames encoded so far: one per frame, plus one per talker.
    """

    def __init__(self, new_encoder: Callable[[], OpusEncoder] = OpusEncoder) -> None:
        self._new_encoder = new_encoder
        self._shared: OpusEncoder | None = None
        self._own: dict[str, OpusEncoder] = {}
        self._recent: deque[np.ndarray] = deque(maxlen=PRIME_FRAMES)  # of the shared feed
        self.encodes = 0

    def send(self, result: MixResult, tracks: Mapping[str, ReturnTrack]) -> None:
        """Encode this frame's feeds that someone needs and push the packets to the tracks."""
        if not tracks:
            return
        # The shared feed is encoded even in a frame where everyone talks: whoever stops
        # talking next switches to it, and an encoder that skipped frames would not continue
        # what their decoder last heard (see PRIME_FRAMES).
        if self._shared is None:
            self._shared = self._new_encoder()
        shared = self._encode(self._shared, result.program)
        own: dict[str, OpusEncoder] = {}
        for input_id, track in tracks.items():
            pcm = result.minus.get(input_id)
            if pcm is None:
                continue  # not in this mix (it just left, or has not joined yet)
            if input_id in result.talkers:
                encoder = self._own.get(input_id) or self._talker_encoder()
                own[input_id] = encoder
                packets = self._encode(encoder, pcm)
            else:
                packets = shared
            for packet in packets:
                track.push(packet)
        self._own = own  # a talker who stopped talking is back on the shared feed
        self._recent.append(result.program)

    def _talker_encoder(self) -> OpusEncoder:
        # A new talker heard the shared feed until this frame: fed its last frames first, their
        # own encoder picks up from what they heard (see PRIME_FRAMES).
        encoder = self._new_encoder()
        for pcm in self._recent:
            self._encode(encoder, pcm)
        return encoder

    def _encode(self, encoder: OpusEncoder, pcm: np.ndarray) -> list[bytes]:
        self.encodes += 1
        return encoder.encode(pcm)


class ReturnTrack(MediaStreamTrack):
    """An outgoing audio track of Opus packets (20 ms each, from :class:`ReturnFeeds`).

    ``recv()`` returns ``av.Packet`` objects with continuous timestamps (48 kHz), which aiortc's
    sender sends as they are.
    """

    kind = "audio"

    def __init__(self, max_frames: int = 3) -> None:
        super().__init__()
        self._queue: deque[bytes] = deque(maxlen=max_frames)  # maxlen: drops the oldest
        self._arrived = asyncio.Event()
        self._pts = 0
        self._idle = True  # no packet came lately: pace silence by our own clock
        self._next_silence = 0.0
        self.dropped_frames = 0
        """Packets thrown away because the queue was full (the sender fell behind)."""

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    def push(self, packet: bytes) -> None:
        """Queue one Opus packet (20 ms); never blocks."""
        if self.readyState != "live":
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped_frames += 1
        self._queue.append(packet)
        self._arrived.set()

    async def recv(self) -> av.Packet:
        """The next packet to send: queued mix-minus audio, or silence when none comes."""
        if self.readyState != "live":
            raise MediaStreamError
        if not self._queue:
            if self._idle:
                timeout = max(0.0, self._next_silence - time.monotonic())
            else:
                timeout = PIPELINE_TIMEOUT
            self._arrived.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._arrived.wait()
            except TimeoutError:
                pass
            if self.readyState != "live":
                raise MediaStreamError
        if self._queue:
            data = self._queue.popleft()
            self._idle = False
        else:
            data = silence_packet()
            now = time.monotonic()
            # Silence keeps a 20 ms cadence from the last packet sent, whatever the waits were.
            self._next_silence = (self._next_silence if self._idle else now) + FRAME_SECONDS
            self._next_silence = max(self._next_silence, now)
            self._idle = True
        packet = av.Packet(data)
        packet.pts = self._pts
        packet.time_base = TIME_BASE
        self._pts += FRAME_SAMPLES
        return packet

    def stop(self) -> None:
        """End the track: the sender's pending recv() returns and raises MediaStreamError."""
        super().stop()
        self._arrived.set()
