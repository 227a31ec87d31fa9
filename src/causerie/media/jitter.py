"""An adaptive jitter buffer for one speaker's Opus packets, played out by the mixer's clock.

Packets go in as they arrive (:meth:`JitterBuffer.put`); the mixer's clock takes them out, one
decision at a time (:meth:`JitterBuffer.take`), always for the next packet in sequence:

- it is here: play it;
- it is missing but a later packet is here: it was lost (or is too late to matter). If the very
  next packet is here, rebuild the lost one from that packet's in-band FEC (RFC 7587 §3.3),
  else conceal it (PLC); either way the stream goes on without waiting;
- nothing is here: conceal for up to ``max_conceal`` packets (a burst of loss), then give
  silence and wait: the speaker paused (DTX) or the connection is gone. When packets come back,
  playing resumes from the first of them once ``target`` are buffered.

The buffer holds ``target`` packets before playing (the delay it adds, in packets). A packet that
comes after its turn was concealed shows that the network's jitter is larger than that: the
target grows by one (up to ``max_target``). If it is the very packet just concealed, it is
played next after all (the concealment played becomes the extra delay, and none of the audio is
lost); if it is later than that, it is dropped and one concealed packet is played in place of
waiting, to build the extra delay at once. When the buffer stayed deeper than needed for a
whole ``window`` of takes (with ``slack`` packets to spare), one packet is decoded and dropped
(``skip``), so the delay shrinks back; after ``calm`` takes (10 s) without a late packet, the
target goes down by one.

A pause is not lateness. A speaker using Opus DTX sends one packet every 400 ms while quiet;
RTP sequence numbers go on by one per packet *sent* while the timestamp follows the sampling
clock (RFC 3550 §5.1), so the first packet after a pause is the next by sequence number but
jumps ahead in time. The buffer has played concealment and then silence meanwhile, moving its
turn past that sequence number; taken for a late packet, the start of every talkspurt would be
dropped and the target would grow for nothing. Such a packet (and any packet that comes while
the buffer is silent) starts playing afresh instead.

Pure: no clock, no I/O, no decoding; sequence numbers are RTP's (16 bits, wrapping).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Action", "JitterBuffer", "Take"]


class Action(Enum):
    PLAY = "play"
    """Decode ``payload``, the next packet."""
    RECOVER = "recover"
    """The next packet was lost: rebuild it from ``payload``'s FEC (the packet after it)."""
    CONCEAL = "conceal"
    """The next packet was lost, or the buffer waits for more delay: conceal one packet."""
    SILENCE = "silence"
    """Nothing to play: the speaker is quiet, or not there."""


@dataclass(frozen=True, slots=True)
class Take:
    action: Action
    payload: bytes | None = None
    skip: bytes | None = None
    """A packet to decode (keeping the decoder's state) and throw away first: the buffer
    was deeper than needed."""


def _unwrap(sequence: int, reference: int) -> int:
    """``sequence`` (16 bits) as the extended number nearest to ``reference``."""
    delta = (sequence - reference) & 0xFFFF
    if delta >= 0x8000:
        delta -= 0x10000
    return reference + delta


class JitterBuffer:
    """Opus packets by sequence number, taken out in order, one per call to :meth:`take`."""

    def __init__(
        self,
        *,
        target: int = 1,
        max_target: int = 10,
        max_conceal: int = 5,
        window: int = 50,
        calm: int = 500,
        capacity: int = 64,
        slack: int = 3,
    ) -> None:
        self.target = target
        self.min_target = target
        self.max_target = max_target
        self.max_conceal = max_conceal
        self.window = window
        self.calm = calm
        self.capacity = capacity
        self.slack = slack
        self._packets: dict[int, bytes] = {}
        self._next: int | None = None  # the extended sequence number to play next
        self._concealed_last: int | None = None  # the last turn concealed, if nothing since
        self._newest: int | None = None
        self._newest_timestamp: int | None = None
        self._packet_ticks = 960  # the timestamp step between packets: 20 ms at 48 kHz
        self._ticks_known = False
        self._playing = False
        self._concealed_in_a_row = 0
        self._stretch = 0  # concealments owed to build up delay after a late packet
        self._takes_in_window = 0
        self._window_now = window
        self._least_depth: int | None = None
        self._takes_since_late = 0
        # Counters, for the session's figures.
        self.received = 0
        self.played = 0
        self.recovered = 0
        self.concealed = 0
        self.late = 0
        self.skipped = 0

    @property
    def depth(self) -> int:
        """Packets waiting from the next one to play on (the delay held, in packets)."""
        if self._next is None:
            return len(self._packets)
        return sum(1 for sequence in self._packets if sequence >= self._next)

    def put(self, sequence: int, payload: bytes, timestamp: int | None = None) -> None:
        """A packet arrived (``timestamp``: its RTP timestamp, if known)."""
        self.received += 1
        reference = self._newest if self._newest is not None else sequence
        extended = _unwrap(sequence, reference)
        if (
            self._next is not None
            and extended < self._next
            and (not self._playing or self._after_pause(extended, timestamp))
        ):
            # Not late: the first packet after the speaker's pause (see above). Play afresh
            # from it, as after any silence: take() restarts from the newest `target` packets.
            self._playing = False
            self._packets[extended] = payload
            self._note_newest(extended, timestamp)
            return
        if self._next is not None and extended < self._next:
            self.late += 1
            if extended == self._concealed_last and self._next == extended + 1:
                # It missed its turn by less than a packet, and that turn was concealed: play
                # it next after all. The concealment already played is the extra delay the
                # network's jitter needs; nothing of the speaker's audio is lost.
                self._next = extended
                self._concealed_last = None
                self._packets[extended] = payload
                if self._takes_since_late > 0 and self.target < self.max_target:
                    self.target += 1
                self._takes_since_late = 0
                return
            # Later than that (its turn was taken by a later packet): the network's jitter is
            # more than the delay held. Hold one packet more from now on (one step per turn: a
            # burst of late packets after one stall is one sign, not many).
            if self._takes_since_late > 0 and self.target < self.max_target:
                self.target += 1
                self._stretch += 1
            self._takes_since_late = 0
            return
        self._note_newest(extended, timestamp)
        self._packets[extended] = payload
        if len(self._packets) > self.capacity:
            # Far more than any delay we hold: the mixer is not taking (or a burst came).
            for old in sorted(self._packets)[: len(self._packets) - self.capacity]:
                del self._packets[old]
            if self._next is not None:
                self._next = min(self._packets)

    def _after_pause(self, extended: int, timestamp: int | None) -> bool:
        """Whether this packet, the next by sequence number, jumps ahead in time (DTX)."""
        if timestamp is None or self._newest is None or self._newest_timestamp is None:
            return False
        if extended != self._newest + 1:
            return False
        step = (timestamp - self._newest_timestamp) & 0xFFFFFFFF
        return step >= 2 * self._packet_ticks and step < 0x80000000

    def _note_newest(self, extended: int, timestamp: int | None) -> None:
        newest = self._newest
        if newest is not None and extended <= newest:
            return
        if newest is not None and timestamp is not None and self._newest_timestamp is not None:
            step = (timestamp - self._newest_timestamp) & 0xFFFFFFFF
            first = not self._ticks_known
            longest = 5760  # 120 ms: the longest Opus packet (RFC 6716 §3.2.5)
            shorter = step < (longest if first else 2 * self._packet_ticks)
            if extended == newest + 1 and step > 0 and shorter:
                # A packet's duration, as the sender's clock says (the first step between
                # consecutive packets; later ones only if shorter than a pause).
                self._packet_ticks, self._ticks_known = step, True
        self._newest = extended
        if timestamp is not None:
            self._newest_timestamp = timestamp

    def take(self) -> Take:
        """What to play for the next packet's turn."""
        self._takes_since_late += 1
        if self._takes_since_late >= self.calm and self.target > self.min_target:
            self.target -= 1
            self._takes_since_late = 0
        if not self._playing:
            if len(self._packets) < self.target:
                return Take(Action.SILENCE)
            # Start (or resume) from the newest `target` packets: a sender that queued audio
            # while the connection came up delivers it in one burst, and playing all of it
            # would be delay for good. Nothing was playing, so nothing is heard to jump.
            waiting = sorted(self._packets)
            for old in waiting[: -self.target]:
                del self._packets[old]
                self.skipped += 1
            self._playing = True
            self._next = waiting[-self.target]
            self._concealed_in_a_row = 0
        assert self._next is not None
        if self._stretch:
            self._stretch -= 1
            self.concealed += 1
            return Take(Action.CONCEAL)
        skip = self._maybe_skip()
        current = self._next
        self._concealed_last = None
        payload = self._packets.pop(current, None)
        if payload is not None:
            self._next = current + 1
            self._concealed_in_a_row = 0
            self.played += 1
            return Take(Action.PLAY, payload, skip)
        if not any(sequence > current for sequence in self._packets):
            # Nothing at all: a burst of loss, a pause, or the end. Conceal a little, then wait.
            if self._concealed_in_a_row >= self.max_conceal:
                self._playing = False
                return Take(Action.SILENCE)
            self._concealed_in_a_row += 1
            self._next = current + 1
            self.concealed += 1
            self._concealed_last = current
            return Take(Action.CONCEAL, None, skip)
        self._next = current + 1
        self._concealed_in_a_row = 0
        following = self._packets.get(current + 1)
        if following is not None:
            self.recovered += 1
            return Take(Action.RECOVER, following, skip)
        self.concealed += 1
        return Take(Action.CONCEAL, None, skip)

    def _maybe_skip(self) -> bytes | None:
        """At the end of a window in which the buffer never went below target + slack, drop one
        packet. The further above target it stayed, the shorter the next window (down to 5
        takes): the delay a stall left behind drains in about a second, one packet at a time."""
        depth = self.depth
        if self._least_depth is None or depth < self._least_depth:
            self._least_depth = depth
        self._takes_in_window += 1
        if self._takes_in_window < self._window_now:
            return None
        # Packets of slack above target are kept: the depth wobbles by a packet as arrivals and
        # the mixer's ticks drift past each other, more on a jittery link; and each skip is a
        # 20 ms jump in the audio. With one packet of slack, a publisher 50 ± 50 ms away had
        # 30-60 skips in 30 s, each a frame or two the audience hears broken; with three, 5-20
        # (bench.ingest, bench/README.md), for at most 40 ms more held.
        excess = self._least_depth - self.target - self.slack
        deep = excess > 0
        self._window_now = max(5, self.window // max(1, excess))
        self._takes_in_window, self._least_depth = 0, None
        assert self._next is not None
        if not deep or self._next not in self._packets or self._next + 1 not in self._packets:
            return None
        self.skipped += 1
        payload = self._packets.pop(self._next)
        self._next += 1
        return payload
