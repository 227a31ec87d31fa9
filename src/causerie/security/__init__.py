"""Security primitives: signed tokens and tickets, one HMAC keyring, the signing secrets."""

from .secrets import load_secrets, rotate_secrets
from .signing import Keyring
from .tickets import TicketSigner
from .tokens import ANY_SPACE, Claims, InvalidToken, TokenKind, TokenSigner

__all__ = [
    "ANY_SPACE",
    "Claims",
    "InvalidToken",
    "Keyring",
    "TicketSigner",
    "TokenKind",
    "TokenSigner",
    "load_secrets",
    "rotate_secrets",
]
