"""Tokens: signature, expiry, audience, rotation."""

import base64
import json

import pytest

from causerie.domain import SiteRole
from causerie.security.tokens import ANY_SPACE, Claims, InvalidToken, TokenKind, TokenSigner

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


# -- access-control properties (SECURITY.md) ----------------------------------------------


def _payload(claims: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


def test_a_signature_only_fits_its_own_claims() -> None:
    signer = TokenSigner([SECRET])
    listener = signer.issue(CLAIMS)
    host = signer.issue(Claims(sub="u-host", aud=ANY_SPACE, kind=TokenKind.USER, exp=1000))
    prefix, _, signature = listener.split(".")
    # Claims raised to an account for every space, the listener's signature kept.
    escalated = {"sub": "u-host", "aud": ANY_SPACE, "kind": "user", "exp": 10**12, "name": ""}
    # Or the host's claims with the listener's signature, or a longer expiry.
    later = {**json.loads(base64.urlsafe_b64decode(listener.split(".")[1] + "==")), "exp": 10**12}
    for forged in (
        f"{prefix}.{_payload(escalated)}.{signature}",
        f"{prefix}.{host.split('.')[1]}.{signature}",
        f"{prefix}.{_payload(later)}.{signature}",
    ):
        with pytest.raises(InvalidToken, match="signature"):
            signer.verify(forged, now=0)


def test_expiry_is_exact() -> None:
    signer = TokenSigner([SECRET])
    token = signer.issue(CLAIMS)
    assert signer.verify(token, now=CLAIMS.exp - 0.001) == CLAIMS
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token, now=CLAIMS.exp)


def test_a_listener_token_is_for_its_space_only() -> None:
    signer = TokenSigner([SECRET])
    token = signer.issue(CLAIMS)
    assert signer.verify(token, now=0, space_id=CLAIMS.aud) == CLAIMS
    for other in ("sp2", "", ANY_SPACE, "sp1 "):
        with pytest.raises(InvalidToken, match="another space"):
            signer.verify(token, now=0, space_id=other)


def test_rotation_signs_with_the_newest_and_dropping_a_secret_refuses_its_tokens() -> None:
    old, new = b"o" * 32, b"n" * 32
    issued_before = TokenSigner([old]).issue(CLAIMS)
    during = TokenSigner([new, old])
    issued_during = during.issue(CLAIMS)
    assert during.verify(issued_before, now=0) == CLAIMS
    assert TokenSigner([new]).verify(issued_during, now=0) == CLAIMS  # signed with the newest
    with pytest.raises(InvalidToken, match="signature"):
        TokenSigner([new]).verify(issued_before, now=0)


def test_refusals_never_repeat_the_token() -> None:
    signer = TokenSigner([SECRET])
    token = signer.issue(CLAIMS)
    for bad in (token[:-3] + "xyz", token + ".x", token.replace("c1.", "c0.")):
        with pytest.raises(InvalidToken) as refused:
            signer.verify(bad, now=0)
        assert bad not in str(refused.value) and token.split(".")[2] not in str(refused.value)
    with pytest.raises(InvalidToken) as refused:
        TokenSigner([SECRET]).verify(token, now=CLAIMS.exp + 1)
    assert token not in str(refused.value)


@pytest.mark.parametrize("token", ["c1.abc.\xe9", "c1.\xe9.abc", "c1.abc.\u200b", "\xe9"])
def test_non_ascii_tokens_are_malformed_not_a_crash(token: str) -> None:
    with pytest.raises(InvalidToken):
        TokenSigner([SECRET]).verify(token, now=0)


# -- the site role ----------------------------------------------------------------------------


def _claims_of(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_the_operator_role_is_carried_and_signed() -> None:
    signer = TokenSigner([SECRET])
    operator = Claims(
        sub="u-op", aud=ANY_SPACE, kind=TokenKind.USER, exp=1000, role=SiteRole.OPERATOR
    )
    token = signer.issue(operator)
    assert _claims_of(token)["role"] == "operator"
    verified = signer.verify(token, now=0)
    assert verified == operator and verified.site_role is SiteRole.OPERATOR
    # Host and listener tokens say nothing about a role: their bytes are what they always were.
    host = Claims(sub="u-h", aud=ANY_SPACE, kind=TokenKind.USER, exp=1000)
    assert "role" not in _claims_of(signer.issue(host)) and "role" not in _claims_of(
        signer.issue(CLAIMS)
    )
    assert signer.verify(signer.issue(host), now=0).site_role is SiteRole.HOST
    assert signer.verify(signer.issue(CLAIMS), now=0).site_role is SiteRole.LISTENER


def test_only_a_token_for_every_space_is_an_operator() -> None:
    """A studio link (one space) or a listener token saying `operator` is no operator."""
    signer = TokenSigner([SECRET])
    for kind, aud in ((TokenKind.USER, "sp1"), (TokenKind.LISTENER, ANY_SPACE)):
        claims = Claims(sub="u", aud=aud, kind=kind, exp=1000, role=SiteRole.OPERATOR)
        assert signer.verify(signer.issue(claims), now=0).site_role is not SiteRole.OPERATOR


def test_an_unknown_role_is_malformed() -> None:
    signer = TokenSigner([SECRET])
    token = signer.issue(CLAIMS)
    message = f"c1.{_payload(_claims_of(token) | {'role': 'root'})}"
    forged = f"{message}.{signer._keys.sign(message.encode())}"
    with pytest.raises(InvalidToken, match="claims are malformed"):
        signer.verify(forged, now=0)


def test_a_host_cannot_make_itself_an_operator() -> None:
    signer = TokenSigner([SECRET])
    host = signer.issue(Claims(sub="u-h", aud=ANY_SPACE, kind=TokenKind.USER, exp=1000))
    prefix, _, signature = host.split(".")
    raised = _payload(_claims_of(host) | {"role": "operator"})
    with pytest.raises(InvalidToken, match="signature"):
        signer.verify(f"{prefix}.{raised}.{signature}", now=0)
