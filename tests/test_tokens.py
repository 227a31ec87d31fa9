"""Tokens: signature, expiry, audience, rotation."""

import pytest

from causerie.tokens import ANY_SPACE, Claims, InvalidToken, TokenKind, TokenSigner

SECRET = b"s" * 32
CLAIMS = Claims(sub="u-1", aud="sp1", kind=TokenKind.LISTENER, exp=1000, name="Lou")


def test_round_trip() -> None:
    signer = TokenSigner([SECRET])
    assert signer.verify(signer.issue(CLAIMS), now=999, space_id="sp1") == CLAIMS


def test_expired() -> None:
    signer = TokenSigner([SECRET])
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(signer.issue(CLAIMS), now=1000)


def test_other_space() -> None:
    signer = TokenSigner([SECRET])
    with pytest.raises(InvalidToken, match="another space"):
        signer.verify(signer.issue(CLAIMS), now=0, space_id="sp2")
    account = Claims(sub="u-1", aud=ANY_SPACE, kind=TokenKind.USER, exp=1000)
    assert signer.verify(signer.issue(account), now=0, space_id="sp2") == account


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature
        lambda t: t.replace("c1.", "c2.", 1),  # version
        lambda t: t.split(".")[0] + "." + t.split(".")[1] + "x." + t.split(".")[2],  # payload
        lambda t: t + ".extra",
        lambda t: "",
        lambda t: "x" * 5000,
        lambda t: "not a token",
    ],
)
def test_tampered_or_malformed(mangle) -> None:
    signer = TokenSigner([SECRET])
    with pytest.raises(InvalidToken):
        signer.verify(mangle(signer.issue(CLAIMS)), now=0)


def test_forged_with_another_secret() -> None:
    forged = TokenSigner([b"x" * 32]).issue(CLAIMS)
    with pytest.raises(InvalidToken, match="signature"):
        TokenSigner([SECRET]).verify(forged, now=0)


def test_rotation_keeps_old_tokens_valid() -> None:
    old = TokenSigner([SECRET]).issue(CLAIMS)
    rotated = TokenSigner([b"n" * 32, SECRET])
    assert rotated.verify(old, now=0) == CLAIMS
    assert TokenSigner([b"n" * 32]).verify(rotated.issue(CLAIMS), now=0) == CLAIMS


def test_short_secrets_refused() -> None:
    with pytest.raises(ValueError):
        TokenSigner([b"short"])
    with pytest.raises(ValueError):
        TokenSigner([])
