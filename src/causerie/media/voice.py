"""One speaker's incoming voice: RTP packets → jitter buffer → Opus decoder → the mixer's input.

Packets are put in as aiortc hands them over (:meth:`Voice.put`); just before every mix, the
speakers' hook tops each voice up (:meth:`Voice.fill`) so that the mixer finds one frame there,
made of what arrived up to that moment. The playout therefore runs on the mixer's own clock: a
lost packet is rebuilt (FEC) or concealed in its turn instead of leaving a gap, and the delay
held is the jitter buffer's, which adapts to the network (media/jitter.py).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .jitter import Action, JitterBuffer
from .mixer import MixerInput
from .opus import OpusDecoder, OpusError

logger = logging.getLogger(__name__)

FRAME_SAMPLES = 960  # the mixer's frame: 20 ms at 48 kHz
MAX_TAKES = 8  # per fill: bounded even if packets decode to nothing


class Voice:
    """A speaker's audio on its way to the mixer."""

    def __init__(self, buffer: JitterBuffer | None = None) -> None:
        self.buffer = buffer or JitterBuffer()
        self.decoder = OpusDecoder()
        self.last_packet_at: float | None = None
        """When the last packet arrived (time.monotonic()); None before the first."""
        self.decode_errors = 0

    def put(self, sequence: int, payload: bytes, timestamp: int | None = None) -> None:
        """An RTP packet of the speaker's Opus stream arrived."""
        self.last_packet_at = time.monotonic()
        if payload:
            self.buffer.put(sequence, payload, timestamp)

    def fill(self, mixer_input: MixerInput, samples: int = FRAME_SAMPLES) -> None:
        """Decode (or rebuild, or conceal) until ``mixer_input`` holds ``samples``."""
        for _ in range(MAX_TAKES):
            if mixer_input.queued_samples >= samples:
                return
            take = self.buffer.take()
            if take.action is Action.SILENCE:
                return  # the mixer hears silence for this speaker: nothing came
            if take.skip is not None:
                self._decode(take.skip)  # keeps the decoder's state; the audio is dropped
            pcm = self._render(take.action, take.payload)
            if pcm.size:
                mixer_input.push(pcm)

    def _render(self, action: Action, payload: bytes | None) -> np.ndarray:
        try:
            if action is Action.PLAY and payload is not None:
                return self.decoder.decode(payload)
            if action is Action.RECOVER and payload is not None:
                return self.decoder.recover(payload)
            return self.decoder.conceal()
        except OpusError:
            self.decode_errors += 1
            if self.decode_errors == 1:
                logger.info("a speaker sent an Opus packet that does not decode")
            return self.decoder.conceal()

    def _decode(self, payload: bytes) -> None:
        try:
            self.decoder.decode(payload)
        except OpusError:
            self.decode_errors += 1

    def close(self) -> None:
        self.decoder.close()
