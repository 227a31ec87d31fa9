"""Waiting-room tickets: signed, checked without storage, never mistaken for tokens."""

from __future__ import annotations

import pytest

from causerie.domain import Invalid
from causerie.domain.waiting_room import Ticket
from causerie.security.tickets import TicketSigner

SIGNER = TicketSigner([b"k" * 32])


def test_ticket_round_trip() -> None:
    ticket = Ticket("space1", "ab12", 42, 2000)
    text = SIGNER.issue(ticket)
    assert text.startswith("w1.space1.ab12.42.2000.")
    assert SIGNER.verify(text, space_id="space1", now=1000) == ticket
    # A rotated secret still accepts tickets signed with the old one.
    assert TicketSigner([b"n" * 32, b"k" * 32]).verify(text, space_id="space1", now=1) == ticket


@pytest.mark.parametrize(
    ("mutate", "space", "now", "message"),
    [
        (lambda t: t.replace(".42.", ".41."), "space1", 1000, "signature"),
        (lambda t: t[:-2] + "AA", "space1", 1000, "signature"),
        (lambda t: t, "space2", 1000, "another space"),
        (lambda t: t, "space1", 2000, "expired"),
        (lambda t: "garbage", "space1", 1000, "malformed"),
        (lambda t: t[:-1] + "é", "space1", 1000, "malformed"),
        (lambda t: "c1." + t[3:], "space1", 1000, "malformed"),
        (lambda t: t + "." * 300, "space1", 1000, "malformed"),
        (
            lambda t: TicketSigner([b"x" * 32]).issue(Ticket("space1", "e", 1, 9_000_000_000)),
            "space1",
            1,
            "signature",
        ),
    ],
)
def test_bad_tickets(mutate, space, now, message) -> None:
    text = mutate(SIGNER.issue(Ticket("space1", "ab12", 42, 2000)))
    with pytest.raises(Invalid, match=message):
        SIGNER.verify(text, space_id=space, now=now)
