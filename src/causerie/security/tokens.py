"""Signed tokens: who someone is, for which space, until when, and their role on the site.

A token is `c1.<payload>.<signature>`: the payload is base64url JSON claims, the signature is
HMAC-SHA256 over `c1.<payload>` with the server's secret. Tokens are verified without any
storage, which is what makes joining a space free of database writes. Several secrets may be
accepted at once (the first signs), so the operator can rotate the secret without logging
everyone out. Pure: no I/O, the time is passed in.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from enum import StrEnum

from ..domain.roles import SiteRole
from .signing import Keyring, b64url

_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""`json.dumps(..., separators=(",", ":"))` without making an encoder for every token."""

PREFIX = "c1"
ANY_SPACE = "*"
MAX_TOKEN_LENGTH = 2048


class TokenKind(StrEnum):
    """`user`: an account that may create spaces; `listener`: an anonymous member of one space."""

    USER = "user"
    LISTENER = "listener"


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or not for this space."""


@dataclass(frozen=True)
class Claims:
    """What a token says about its bearer."""

    sub: str
    aud: str
    kind: TokenKind
    exp: int
    name: str = ""
    role: SiteRole = SiteRole.HOST
    """An account's role on the whole site (`operator` or `host`); the claim is left out of
    host and listener tokens, so those are what they always were."""

    def allows_space(self, space_id: str) -> bool:
        return self.aud in (ANY_SPACE, space_id)

    @property
    def site_role(self) -> SiteRole:
        """What the bearer is on the site: a listener token is a listener whatever it says,
        and only a token for every space carries the operator's role (a studio link, scoped
        to one space, never does)."""
        if self.kind is TokenKind.LISTENER:
            return SiteRole.LISTENER
        if self.role is SiteRole.OPERATOR and self.aud != ANY_SPACE:
            return SiteRole.HOST
        return self.role


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies tokens with the server's secret(s)."""

    def __init__(self, secrets: list[bytes]) -> None:
        self._keys = Keyring(secrets)

    def pseudonym(self, text: str) -> str:
        """An opaque name for `text` (a client address), the same on every node that shares
        the secret; without the secret nobody can tell which address it stands for (a plain
        hash of an IPv4 address is undone by trying all four billion)."""
        return self._keys.sign(b"pseudonym\n" + text.encode())[:22]

    def issue(self, claims: Claims) -> str:
        """A signed token carrying `claims`."""
        # Not dataclasses.asdict: its deep copy was half the cost of a join (a storm's hot path).
        fields = {
            "sub": claims.sub,
            "aud": claims.aud,
            "kind": claims.kind.value,
            "exp": claims.exp,
            "name": claims.name,
        }
        if claims.role is not SiteRole.HOST:
            fields["role"] = claims.role.value
        payload = b64url(_COMPACT.encode(fields).encode())
        message = f"{PREFIX}.{payload}"
        return f"{message}.{self._keys.sign(message.encode())}"

    def verify(self, token: str, *, now: float, space_id: str | None = None) -> Claims:
        """The claims of a genuine, unexpired token (for `space_id`, if given)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("the token is missing or too long")
        if not token.isascii():  # compare_digest refuses non-ASCII text (a 500, not a 401)
            raise InvalidToken("the token is malformed")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise InvalidToken("the token is malformed")
        message = f"{parts[0]}.{parts[1]}".encode()
        if not self._keys.verify(message, parts[2]):
            raise InvalidToken("the token's signature is wrong")
        try:
            raw = json.loads(_b64decode(parts[1]))
            claims = Claims(
                sub=str(raw["sub"]),
                aud=str(raw["aud"]),
                kind=TokenKind(raw["kind"]),
                exp=int(raw["exp"]),
                name=str(raw.get("name", "")),
                role=SiteRole(raw.get("role", SiteRole.HOST)),
            )
        except (ValueError, KeyError, TypeError, OverflowError, binascii.Error) as exc:
            raise InvalidToken("the token's claims are malformed") from exc
        if claims.exp <= now:
            raise InvalidToken("the token has expired")
        if space_id is not None and not claims.allows_space(space_id):
            raise InvalidToken("the token is for another space")
        return claims
