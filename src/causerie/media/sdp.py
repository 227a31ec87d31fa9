"""SDP offers from WHIP clients, checked before aiortc sees them (pure, no I/O).

aiortc raises a variety of errors on input it cannot use; checking the offer first gives the
client a clear 400 with the reason (RFC 9725 §4.2: the endpoint answers a bad offer with an
error), and keeps odd input away from aiortc's parser. `keep_candidates` drops candidates the
node must not send connectivity checks to; `shape_answer` adjusts aiortc's answer (DTLS role,
Opus in-band FEC) before it is applied.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_OFFER_CHARS = 64 * 1024


class InvalidOffer(ValueError):
    """The SDP offer is malformed or cannot be answered; the message says why (HTTP 400)."""


def keep_candidates(sdp: str, addresses: Sequence[str]) -> str:
    """Drop the offer's ICE candidates that the node, on ``addresses`` only, must not check.

    A node restricted to loopback addresses (tests, one machine) only checks loopback
    candidates: never the peer's other interfaces. A node on other addresses never checks
    loopback ones (they would be its own). mDNS names (``.local``) are dropped either way.
    If nothing is left, ``a=end-of-candidates`` goes too: the node then learns the peer's
    address from its checks (a peer-reflexive candidate, RFC 8445 §7.3.1.3) instead of
    failing at once for want of candidates.
    """
    loopback_node = all(ipaddress.ip_address(a).is_loopback for a in addresses)
    kept: list[str] = []
    dropped = 0
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") and not _checkable(line.split(), loopback_node):
            dropped += 1
            continue
        kept.append(line)
    if dropped and not any(line.startswith("a=candidate:") for line in kept):
        kept = [line for line in kept if line != "a=end-of-candidates"]
    return "\r\n".join(kept) + "\r\n"


def _checkable(fields: list[str], loopback_node: bool) -> bool:
    if len(fields) < 8:
        return False
    try:
        address = ipaddress.ip_address(fields[4])
    except ValueError:
        return False  # an mDNS name, or not an address at all
    return address.is_loopback == loopback_node


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


# -- trickle ICE and ICE restarts (RFC 8840 fragments, RFC 9725 §4.3.1) -------------------------

SDPFRAG_TYPE = "application/trickle-ice-sdpfrag"
MAX_FRAGMENT_CHARS = 16 * 1024
MAX_CANDIDATES = 64
_ICE_CHARS = re.compile(r"^[A-Za-z0-9+/]+$")  # RFC 8839 §5.4: ice-char


@dataclass(frozen=True, slots=True)
class Fragment:
    """What a WHIP client's PATCH says: ICE credentials (a restart, or the current ones), and
    candidates (``candidate:`` attribute values) with or without end-of-candidates."""

    ufrag: str | None
    pwd: str | None
    candidates: tuple[str, ...]
    end_of_candidates: bool


def parse_fragment(text: str) -> Fragment:
    """Parse an ``application/trickle-ice-sdpfrag`` body (RFC 8840 §9.2); raise InvalidOffer.

    Only the ICE lines matter: ``a=ice-ufrag``, ``a=ice-pwd``, ``a=candidate``,
    ``a=end-of-candidates``. ``m=`` and ``a=mid`` lines say which media the candidates are for:
    with BUNDLE (which WHIP requires) there is one transport, so they are read and let be, as
    are other attributes (``a=ice-options``, ``a=group``).
    """
    if len(text) > MAX_FRAGMENT_CHARS:
        raise InvalidOffer("the SDP fragment is too long")
    ufrag = pwd = None
    candidates: list[str] = []
    end = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if not _LINE.match(line):
            raise InvalidOffer(f"line {number} of the SDP fragment is not a 'x=value' line")
        if line.startswith("a=ice-ufrag:"):
            ufrag = _ice_value(line, 4, 256)
        elif line.startswith("a=ice-pwd:"):
            pwd = _ice_value(line, 22, 256)
        elif line.startswith("a=candidate:"):
            value = line[2:]
            if len(value.split()) < 8:
                raise InvalidOffer(f"malformed ICE candidate: {line[:80]!r}")
            candidates.append(value)
        elif line == "a=end-of-candidates":
            end = True
    if (ufrag is None) != (pwd is None):
        raise InvalidOffer("an ICE restart needs both a=ice-ufrag and a=ice-pwd")
    if len(candidates) > MAX_CANDIDATES:
        raise InvalidOffer(f"more than {MAX_CANDIDATES} candidates in one fragment")
    return Fragment(ufrag, pwd, tuple(candidates), end)


def _ice_value(line: str, shortest: int, longest: int) -> str:
    value = line.split(":", 1)[1].strip()
    if not (shortest <= len(value) <= longest) or not _ICE_CHARS.match(value):
        raise InvalidOffer(f"malformed ICE credential: {line[:40]!r}")
    return value


def answer_fragment(answer: str, ufrag: str, pwd: str, candidates: Sequence[str]) -> str:
    """The body of a 200 to an ICE restart (RFC 9725 §4.3.1): the node's new credentials and
    its candidates, under the answer's first media line and mid (RFC 8840 §9.2)."""
    media = next((line for line in answer.splitlines() if line.startswith("m=")), None)
    mid = next((line for line in answer.splitlines() if line.startswith("a=mid:")), None)
    lines = [f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}"]
    if media and mid:
        lines += [media, mid]
    lines += [f"a={candidate}" for candidate in candidates]
    lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"
