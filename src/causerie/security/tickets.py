"""Signed waiting-room tickets: a place in a capped space's line, checked without storage.

A ticket is `w1.<space>.<epoch>.<number>.<expires>.<HMAC-SHA256>`, signed with the same secrets
as tokens (signing.py). The signed text starts with its own prefix, so a ticket can never pass
for a token, nor a token for a ticket. Pure: the time is passed in.
"""

from __future__ import annotations

from ..domain import Invalid
from ..domain.waiting_room import Ticket
from .signing import Keyring

TICKET_PREFIX = "w1"
MAX_TICKET_LENGTH = 256


class TicketSigner:
    """Signs and checks tickets."""

    def __init__(self, secrets: list[bytes]) -> None:
        self._keys = Keyring(secrets, min_length=1)

    def issue(self, ticket: Ticket) -> str:
        message = (
            f"{TICKET_PREFIX}.{ticket.space_id}.{ticket.epoch}.{ticket.number}.{ticket.expires}"
        )
        return f"{message}.{self._keys.sign(message.encode())}"

    def verify(self, text: str, *, space_id: str, now: float) -> Ticket:
        """The ticket in `text`, if genuine, unexpired and for `space_id`; else `Invalid`."""
        # compare_digest refuses non-ASCII text: such a ticket is malformed, not a crash.
        parts = text.split(".") if len(text) <= MAX_TICKET_LENGTH and text.isascii() else []
        if len(parts) != 6 or parts[0] != TICKET_PREFIX:
            raise Invalid("the waiting ticket is malformed; join again without it")
        message, signature = text.rpartition(".")[0], parts[5]
        if not self._keys.verify(message.encode(), signature):
            raise Invalid("the waiting ticket's signature is wrong; join again without it")
        _, ticket_space, epoch, number, expires = parts[:5]
        if not (number.isdigit() and expires.isdigit()):
            raise Invalid("the waiting ticket is malformed; join again without it")
        if ticket_space != space_id:
            raise Invalid("the waiting ticket is for another space")
        if int(expires) <= now:
            raise Invalid("the waiting ticket has expired; join again without it")
        return Ticket(ticket_space, epoch, int(number), int(expires))
