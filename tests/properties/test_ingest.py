"""SDP offers (media/ingest.py `check_offer`) for any text: an offer with audio to publish, or
`InvalidOffer` with a message for the 400; never another exception (which would be a 500).
Over HTTP, against a real node: tests/properties/test_live_input.py."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from causerie.media.sdp import InvalidOffer, OfferSummary, check_offer

# Lines that look like SDP, so that generation reaches the checks past the first line.
sdp_lines = st.one_of(
    st.sampled_from(
        [
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "m=audio 0 UDP/TLS/RTP/SAVPF 111",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "m=audio",
            "a=sendrecv",
            "a=sendonly",
            "a=recvonly",
            "a=inactive",
            "a=ice-ufrag:abcd",
            "a=ice-pwd:abcdefghijklmnopqrstuv",
            "a=fingerprint:sha-256 AB:CD:EF",
            "a=fingerprint:sha-256 nothex",
            "a=rtpmap:111 opus/48000/2",
            "",
        ]
    ),
    st.from_regex(r"[a-z]=[^\r\n]{0,40}", fullmatch=True),
    st.text(max_size=40),
)
offers = st.lists(sdp_lines, max_size=14).map(lambda lines: "\r\n".join(["v=0", *lines])) | st.text(
    max_size=500
)


@given(offers)
def test_any_text_is_an_offer_or_invalid(sdp: str) -> None:
    try:
        summary = check_offer(sdp)
    except InvalidOffer as exc:
        assert str(exc)
        return
    assert isinstance(summary, OfferSummary)
    assert summary.kinds[summary.audio_index] == "audio"
    assert summary.audio_direction in ("sendrecv", "sendonly")
    assert sdp.lstrip().startswith("v=0")


@given(st.integers(64 * 1024 + 1, 200_000))
def test_offers_over_the_limit_are_refused(size: int) -> None:
    try:
        check_offer("v=0\r\n" + "a" * size)
    except InvalidOffer as exc:
        assert "too long" in str(exc)
    else:
        raise AssertionError("an offer over 64 KiB was read")
