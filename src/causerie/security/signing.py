"""HMAC-SHA256 signatures under several secrets: the newest signs, all of them verify.

Tokens (tokens.py) and waiting-room tickets (tickets.py) are both `<message>.<signature>`
texts; accepting several secrets at once lets an operator rotate the secret without
invalidating everything signed before. Pure: no I/O.
"""

from __future__ import annotations

import base64
import hmac


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 4648 §5), as signatures and token payloads are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Keyring:
    """The secrets a node signs with (the first) and accepts (all of them)."""

    def __init__(self, secrets: list[bytes], *, min_length: int = 16) -> None:
        if not secrets or any(len(s) < min_length for s in secrets):
            raise ValueError(f"at least one secret of {min_length} bytes or more is required")
        self._secrets = list(secrets)

    def sign(self, message: bytes) -> str:
        """The signature of `message` under the newest secret."""
        return b64url(hmac.digest(self._secrets[0], message, "sha256"))  # one-shot: cheaper

    def verify(self, message: bytes, signature: str) -> bool:
        """Whether `signature` is `message`'s under any accepted secret (constant time).

        `signature` must be ASCII (compare_digest refuses other text): callers check first.
        """
        return any(
            hmac.compare_digest(b64url(hmac.digest(secret, message, "sha256")), signature)
            for secret in self._secrets
        )
