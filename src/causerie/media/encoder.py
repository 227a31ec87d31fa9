"""AAC-LC encoding of the program feed with PyAV (FFmpeg's native ``aac`` encoder).

AAC-LC is what every HLS player decodes (Safari and iOS natively, hls.js through MSE), so one
encode per space serves the whole audience. PCM of any length goes in; 1024-sample AAC access
units come out as ``EncodedFrame`` objects, ready for the fMP4 packager.

Timing, and FFmpeg's priming: the encoder numbers input samples from 0, and a frame's ``pts`` is
the input sample index where its audio starts. FFmpeg's AAC encoder has 1024 samples of encoder
delay ("priming"): its first frame has ``pts == -1024`` and decodes to near-silence, and every
frame comes out about two frames (~43 ms) after the input that completes it. We keep the priming
frame rather than dropping it: an AAC decoder needs it for the overlap-add of the first real
frame, and it costs 21.3 ms of silence once per run. Whoever maps pts to wall time must therefore
expect a negative first pts (the pipeline does: wall time = start + pts / sample_rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

__all__ = ["FRAME_SAMPLES", "AacEncoder", "EncodedFrame", "audio_specific_config"]

FRAME_SAMPLES = 1024
"""Samples per AAC-LC access unit (ISO/IEC 14496-3: frameLengthFlag 0)."""

# ISO/IEC 14496-3 section 1.6.3.4: samplingFrequencyIndex.
_SAMPLING_FREQUENCY_INDEX = {
    96000: 0,
    88200: 1,
    64000: 2,
    48000: 3,
    44100: 4,
    32000: 5,
    24000: 6,
    22050: 7,
    16000: 8,
    12000: 9,
    11025: 10,
    8000: 11,
    7350: 12,
}
_AOT_AAC_LC = 2


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One AAC access unit (raw, no ADTS header) and the input sample index it starts at."""

    data: bytes
    pts: int


def audio_specific_config(sample_rate: int, channels: int = 1) -> bytes:
    """The 2-byte AAC-LC AudioSpecificConfig (ISO/IEC 14496-3 section 1.6.2.1).

    5 bits audioObjectType (2 = LC), 4 bits samplingFrequencyIndex, 4 bits channelConfiguration,
    then GASpecificConfig: frameLengthFlag 0 (1024 samples), dependsOnCoreCoder 0, extensionFlag 0.
    """
    try:
        index = _SAMPLING_FREQUENCY_INDEX[sample_rate]
    except KeyError:
        raise ValueError(f"AAC has no sampling frequency index for {sample_rate} Hz") from None
    if not 1 <= channels <= 7:
        raise ValueError(f"unsupported channel count {channels}")
    value = (_AOT_AAC_LC << 11) | (index << 7) | (channels << 3)
    return value.to_bytes(2, "big")


class AacEncoder:
    """Mono AAC-LC encoder: ``encode()`` buffers int16 PCM into 1024-sample frames.

    Not thread-safe; one instance per stream. After ``flush()`` the encoder is finished.
    """

    def __init__(self, sample_rate: int = 48000, bit_rate: int = 64000) -> None:
        self.sample_rate = sample_rate
        # Computed rather than copied from the codec: FFmpeg's extradata is these two bytes
        # followed by 3 bytes of explicit "no SBR" signalling, which a plain LC track can do
        # without (the tests check the two agree).
        self.audio_specific_config = audio_specific_config(sample_rate, 1)
        self._codec = av.CodecContext.create("aac", "w")
        self._codec.sample_rate = sample_rate
        self._codec.layout = "mono"
        self._codec.format = "fltp"  # the only sample format FFmpeg's aac encoder accepts
        self._codec.bit_rate = bit_rate
        self.bit_rate = bit_rate
        self._codec.time_base = Fraction(1, sample_rate)
        self._codec.open()
        self._pending = np.zeros(0, dtype=np.float32)
        self._next_pts = 0  # input sample index of the next frame handed to the codec
        self._flushed = False

    def encode(self, pcm: np.ndarray) -> list[EncodedFrame]:
        """Add mono int16 PCM (any length); return the frames the codec completed, if any."""
        if self._flushed:
            raise RuntimeError("encoder already flushed")
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"expected 1-D int16 PCM, got {pcm.dtype} with shape {pcm.shape}")
        samples = pcm.astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        frames: list[EncodedFrame] = []
        while self._pending.size >= FRAME_SAMPLES:
            chunk, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
            frames.extend(self._encode_chunk(chunk))
        return frames

    def flush(self) -> list[EncodedFrame]:
        """End of stream: pad the last partial frame with silence and drain the codec."""
        if self._flushed:
            return []
        frames: list[EncodedFrame] = []
        if self._pending.size:
            chunk = np.zeros(FRAME_SAMPLES, dtype=np.float32)
            chunk[: self._pending.size] = self._pending
            self._pending = np.zeros(0, dtype=np.float32)
            frames.extend(self._encode_chunk(chunk))
        frames.extend(self._packets(self._codec.encode(None)))
        self._flushed = True
        return frames

    def _encode_chunk(self, chunk: np.ndarray) -> list[EncodedFrame]:
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.time_base = Fraction(1, self.sample_rate)
        frame.pts = self._next_pts
        self._next_pts += FRAME_SAMPLES
        return self._packets(self._codec.encode(frame))

    @staticmethod
    def _packets(packets: list[av.Packet]) -> list[EncodedFrame]:
        out = []
        for packet in packets:
            if packet.pts is None:  # never seen from FFmpeg's aac; unusable without a time
                raise RuntimeError("AAC encoder returned a packet without pts")
            out.append(EncodedFrame(bytes(packet), packet.pts))
        return out
