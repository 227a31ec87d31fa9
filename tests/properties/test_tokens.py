"""Tokens (causerie/tokens.py) for any input: round trips, and every tampering, truncation or
garbage is refused with `InvalidToken`, never another exception (which would be a 500)."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from causerie.security.signing import Keyring
from causerie.security.tokens import (
    ANY_SPACE,
    MAX_TOKEN_LENGTH,
    PREFIX,
    Claims,
    InvalidToken,
    TokenKind,
    TokenSigner,
)

SIGNER = TokenSigner([b"s" * 32])
NOW = 1_000_000

# Ids are the server's own (short, URL-safe); names are what people type (at most 60 characters).
ids = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)
claims = st.builds(
    Claims,
    sub=ids,
    aud=ids | st.just(ANY_SPACE),
    kind=st.sampled_from(TokenKind),
    exp=st.integers(NOW + 1, 2**53),
    name=st.text(max_size=60),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def refused(token: str, **kwargs: object) -> str:
    """The message of the InvalidToken that `token` gets (any other exception fails)."""
    try:
        SIGNER.verify(token, now=NOW, **kwargs)
    except InvalidToken as exc:
        return str(exc)
    raise AssertionError(f"accepted: {token!r}")


def signed(payload: bytes) -> str:
    """A token with a genuine signature over any payload: only the claims parsing stands."""
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    message = f"{PREFIX}.{body}"
    return f"{message}.{Keyring([b's' * 32]).sign(message.encode())}"


@given(claims)
def test_round_trip(original: Claims) -> None:
    token = SIGNER.issue(original)
    assert token.isascii() and len(token.split(".")) == 3 and len(token) <= MAX_TOKEN_LENGTH
    assert SIGNER.verify(token, now=NOW) == original


@given(claims, st.data())
def test_any_changed_character_is_refused(original: Claims, data: st.DataObject) -> None:
    token = SIGNER.issue(original)
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.characters().filter(lambda c: c != token[at]))
    refused(token[:at] + char + token[at + 1 :])


@given(claims, st.data())
def test_any_truncation_is_refused(original: Claims, data: st.DataObject) -> None:
    token = SIGNER.issue(original)
    refused(token[: data.draw(st.integers(0, len(token) - 1))])


@given(st.text(max_size=3000))
def test_garbage_is_refused(text: str) -> None:
    refused(text)


@given(st.text(alphabet="abcXYZ019-_.=", max_size=200).map(lambda t: f"{PREFIX}.{t}"))
def test_token_lookalikes_are_refused(text: str) -> None:
    refused(text)


@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_signed_nonsense_is_refused_as_malformed(payload: bytes) -> None:
    assert refused(signed(payload)) == "the token's claims are malformed"


@given(st.fixed_dictionaries({"sub": json_values, "aud": json_values, "kind": json_values}))
def test_signed_claims_of_any_type_are_refused_or_read(raw: dict[str, object]) -> None:
    raw = {**raw, "exp": NOW + 10}
    try:
        claims_read = SIGNER.verify(signed(json.dumps(raw).encode()), now=NOW)
    except InvalidToken:
        return
    assert claims_read.kind in TokenKind and claims_read.exp == NOW + 10


@given(claims, st.integers(0, 2**40))
def test_expired_tokens_are_refused(original: Claims, late: int) -> None:
    token = SIGNER.issue(original)
    try:
        SIGNER.verify(token, now=original.exp + late)
    except InvalidToken as exc:
        assert str(exc) == "the token has expired"
    else:
        raise AssertionError("an expired token was accepted")


@given(claims.filter(lambda c: c.aud != ANY_SPACE), st.text(max_size=40))
def test_tokens_for_another_space_are_refused(original: Claims, space_id: str) -> None:
    token = SIGNER.issue(original)
    if space_id == original.aud:
        assert SIGNER.verify(token, now=NOW, space_id=space_id) == original
    else:
        assert refused(token, space_id=space_id) == "the token is for another space"
