"""An Opus decoder with packet-loss concealment and in-band FEC: libopus itself, through ctypes.

aiortc decodes Opus with FFmpeg's libopus wrapper, which always passes ``decode_fec=0`` and has
no way to ask for concealment: a lost packet was just a gap. libopus can do better (RFC 6716
§4.4; its API, ``opus_decode``): given the *next* packet with ``decode_fec=1`` it rebuilds the
lost one from the low-bit-rate redundancy (LBRR) the encoder put there (in-band FEC, RFC 7587
§3.3); given no data at all it conceals the gap by extending the last pitch period, fading out.

The library is the system's (Debian ``libopus0``, which FFmpeg depends on) or else the copy
shipped inside PyAV's wheel.
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import cache

import av
import numpy as np

__all__ = ["OpusDecoder", "OpusError", "packet_samples"]

SAMPLE_RATE = 48000
MAX_FRAME_SAMPLES = 5760  # 120 ms at 48 kHz: the longest Opus packet (RFC 6716 §3.2.5)


class OpusError(RuntimeError):
    """libopus refused a packet (corrupt data) or is missing."""


@cache
def _library() -> ctypes.CDLL:
    # By soname (the dynamic loader's own search, instant); ctypes.util.find_library would
    # run ldconfig and a compiler, seconds spent on the event loop.
    candidates = ["libopus.so.0"]
    wheel_libs = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
    candidates += sorted(glob.glob(os.path.join(wheel_libs, "libopus*.so*")))
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_void_p]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.opus_packet_get_nb_samples.restype = ctypes.c_int
        lib.opus_packet_get_nb_samples.argtypes = [ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32]
        return lib
    raise OpusError("libopus was not found (Debian package libopus0)")


def packet_samples(packet: bytes) -> int:
    """How many samples (at 48 kHz) an Opus packet holds; 0 if it is malformed."""
    if not packet:
        return 0
    count = _library().opus_packet_get_nb_samples(packet, len(packet), SAMPLE_RATE)
    return count if count > 0 else 0


class OpusDecoder:
    """Decodes one Opus stream to mono int16 at 48 kHz (libopus downmixes stereo itself)."""

    def __init__(self) -> None:
        self._lib = _library()
        error = ctypes.c_int(0)
        self._state = self._lib.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        if not self._state or error.value != 0:
            raise OpusError(f"opus_decoder_create failed ({error.value})")
        self._pcm = np.zeros(MAX_FRAME_SAMPLES, dtype=np.int16)
        self.last_samples = 960
        """The duration of the last packet decoded: what a lost packet is assumed to last."""

    def _run(self, data: bytes | None, samples: int, fec: bool) -> np.ndarray:
        length = len(data) if data else 0
        count = self._lib.opus_decode(
            self._state, data or None, length, self._pcm.ctypes.data, samples, int(fec)
        )
        if count < 0:
            raise OpusError(f"opus_decode failed ({count})")
        return self._pcm[:count].copy()

    def decode(self, packet: bytes) -> np.ndarray:
        """One received packet."""
        pcm = self._run(packet, MAX_FRAME_SAMPLES, False)
        if pcm.size:
            self.last_samples = pcm.size
        return pcm

    def recover(self, next_packet: bytes) -> np.ndarray:
        """The packet before ``next_packet``, which was lost, from the FEC data in
        ``next_packet`` (plain concealment if it carries none). Decode ``next_packet`` after."""
        return self._run(next_packet, self.last_samples, True)

    def conceal(self) -> np.ndarray:
        """A lost packet with nothing to rebuild it from: concealment (PLC)."""
        return self._run(None, self.last_samples, False)

    def close(self) -> None:
        if self._state:
            self._lib.opus_decoder_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()
