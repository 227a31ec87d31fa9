"""SDP offers from WHIP clients, checked before aiortc sees them (pure, no I/O).

aiortc raises a variety of errors on input it cannot use; checking the offer first gives the
client a clear 400 with the reason (RFC 9725 §4.2: the endpoint answers a bad offer with an
error), and keeps odd input away from aiortc's parser. `keep_candidates` drops candidates the
node must not send connectivity checks to; `shape_answer` adjusts aiortc's answer (DTLS role,
Opus in-band FEC) before it is applied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_OFFER_CHARS = 64 * 1024


class InvalidOffer(ValueError):
    """The SDP offer is malformed or cannot be answered; the message says why (HTTP 400)."""


def keep_candidates(sdp: str, addresses: Sequence[str]) -> str:
    """Drop the offer's ICE candidates whose address is not in ``addresses``.

    With restricted host addresses, the node must not send connectivity checks anywhere else
    either: not to the peer's other interfaces, not to mDNS (``.local``) names.
    """
    allowed = set(addresses)
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) < 8 or fields[4] not in allowed:
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


_LINE = re.compile(r"^[a-z]=")
_MEDIA = re.compile(r"^m=(?P<kind>[a-z]+) (?P<port>\d+)(?:/\d+)? (?P<proto>\S+)(?: \S+)*$")
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 8122 §5: hash function, space, upper-case hex byte pairs joined by colons.
_FINGERPRINT = re.compile(r"^a=fingerprint:[A-Za-z0-9-]+ [0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+$")


@dataclass(frozen=True, slots=True)
class OfferSummary:
    """What causerie needs to know about an offer: its media and how its audio flows."""

    kinds: tuple[str, ...]
    """The kind of every m-line, in order ("audio", "video", "application" …)."""
    audio_index: int
    """The m-line of the speaker's voice: the first audio m-line that sends."""
    audio_direction: str
    """That m-line's direction as the offerer sees it: "sendrecv" or "sendonly"."""

    @property
    def wants_return(self) -> bool:
        """Whether the speaker asked to receive audio (their mix-minus) too."""
        return self.audio_direction == "sendrecv"


def check_offer(sdp: str) -> OfferSummary:
    """Check that ``sdp`` looks like an SDP offer with audio to publish; raise InvalidOffer.

    A light structural check (RFC 8866 line syntax, m-lines, directions, ICE and DTLS
    attributes), so that bad input gets a clear 400 before the WebRTC stack parses it.
    """
    if len(sdp) > MAX_OFFER_CHARS:
        raise InvalidOffer("the SDP offer is too long")
    lines = [line.strip() for line in sdp.strip().splitlines() if line.strip()]
    if not lines or lines[0] != "v=0":
        raise InvalidOffer("this is not an SDP offer: it must start with 'v=0'")
    for number, line in enumerate(lines, 1):
        if not _LINE.match(line):
            raise InvalidOffer(f"line {number} of the SDP is not a 'x=value' line")
    session_direction = "sendrecv"
    media: list[dict[str, str]] = []
    for line in lines:
        if line.startswith("m="):
            match = _MEDIA.match(line)
            if match is None:
                raise InvalidOffer(f"malformed media line: {line[:80]!r}")
            media.append({"kind": match["kind"], "port": match["port"], "direction": ""})
        elif line[2:] in _DIRECTIONS:
            if media:
                media[-1]["direction"] = line[2:]
            else:
                session_direction = line[2:]
    if not media:
        raise InvalidOffer("the SDP offer has no media line (m=)")
    if not any(m["kind"] == "audio" for m in media):
        raise InvalidOffer("the SDP offer has no audio: publish an audio track (m=audio)")
    if not any(line.startswith("a=ice-ufrag:") for line in lines) or not any(
        line.startswith("a=fingerprint:") for line in lines
    ):
        raise InvalidOffer("the SDP offer lacks ICE credentials or a DTLS fingerprint")
    for line in lines:
        if line.startswith("a=fingerprint:") and not _FINGERPRINT.match(line):
            raise InvalidOffer(f"malformed DTLS fingerprint: {line[:80]!r}")
    for index, m in enumerate(media):
        direction = m["direction"] or session_direction
        if m["kind"] == "audio" and m["port"] != "0" and direction in ("sendrecv", "sendonly"):
            return OfferSummary(tuple(x["kind"] for x in media), index, direction)
    raise InvalidOffer("the SDP offer sends no audio (its audio is recvonly or inactive)")


# -- the answer --------------------------------------------------------------------------------


def offered_setup(offer: str) -> str:
    """The offer's DTLS ``a=setup`` value (RFC 8842 §5.1): "actpass", "active" or "passive".

    Media-level values win over a session-level one; absent means "actpass" (RFC 8842 §5.2).
    """
    for line in offer.splitlines():
        if line.startswith("a=setup:"):
            return line.split(":", 1)[1].strip()
    return "actpass"


def shape_answer(answer: str, offer: str) -> str:
    """aiortc's answer as causerie sends it: the DTLS server role when the offer leaves the
    choice, and Opus in-band FEC asked of the speaker.

    - DTLS role: aiortc answers an ``actpass`` offer with ``a=setup:active`` (it would be the
      DTLS client). Most WHIP endpoints take the server role (``passive``), and some clients
      need it: GStreamer 1.22 as a DTLS server presents an RSA certificate, and the suites
      aiortc offers as a client are ECDSA only ("no shared cipher"). As the server, the node
      answers whatever suites the client offers (RFC 8842 §5.3 lets the answerer choose).
    - FEC: ``useinbandfec=1`` on the Opus format (RFC 7587 §6.1) tells the speaker's encoder
      that this receiver decodes in-band FEC, so a lost packet can be rebuilt from the next.
    """
    lines = answer.splitlines()
    if offered_setup(offer) == "actpass":
        lines = ["a=setup:passive" if line == "a=setup:active" else line for line in lines]
    return "\r\n".join(_with_inband_fec(lines)) + "\r\n"


def _with_inband_fec(lines: list[str]) -> list[str]:
    opus = {
        line.split()[0].split(":", 1)[1]
        for line in lines
        if line.startswith("a=rtpmap:") and " opus/48000" in line.lower()
    }
    has_fmtp = {line.split()[0].split(":", 1)[1] for line in lines if line.startswith("a=fmtp:")}
    shaped: list[str] = []
    for line in lines:
        if line.startswith("a=fmtp:"):
            head, _, params = line.partition(" ")
            if head.split(":", 1)[1] in opus and "useinbandfec=" not in params:
                line = f"{head} {params};useinbandfec=1" if params else f"{head} useinbandfec=1"
        shaped.append(line)
        if line.startswith("a=rtpmap:"):
            payload_type = line.split()[0].split(":", 1)[1]
            if payload_type in opus and payload_type not in has_fmtp:
                shaped.append(f"a=fmtp:{payload_type} minptime=10;useinbandfec=1")
    return shaped
