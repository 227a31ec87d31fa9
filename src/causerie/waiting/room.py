"""The waiting room of a capped space: its line, its tickets and the presence count."""

from __future__ import annotations

from ..counting.presence import Presence
from ..domain.waiting_room import Line, Policy, Ticket, Waiting, advance, due, place
from ..security.tickets import TicketSigner
from .protocol import Lines


class WaitingRoom:
    """The waiting rooms of this node's spaces: the lines, the tickets and the presence count.

    `enter` is all a join needs: None to let the joiner in, or where they wait (with a ticket).
    """

    def __init__(
        self,
        lines: Lines,
        tickets: TicketSigner,
        presence: Presence,
        *,
        presence_window: float,
        policy: Policy | None = None,
    ) -> None:
        self.lines = lines
        self.tickets = tickets
        self.presence = presence
        self.presence_window = presence_window
        self.policy = policy or Policy()

    async def enter(
        self, space_id: str, capacity: int, ticket: str | None, now: float
    ) -> tuple[str, Waiting] | None:
        """None if the joiner may come in now; else (their ticket, where they wait).

        A bad ticket raises `Invalid`; a ticket of an older line counts as no ticket.
        """
        line: Line | None = None
        if ticket is not None:
            held = self.tickets.verify(ticket, space_id=space_id, now=now)
            line = await self.lines.present(space_id, held.epoch, held.number)
            number = held.number
        if line is None:
            number, line = await self.lines.take(space_id)
        if number > line.admitted and due(line, now, self.policy):
            listening = await self.presence.listening_now(space_id, now)
            stepped = advance(
                line, capacity=capacity, listening=listening, now=now, policy=self.policy
            )
            line = await self.lines.advance(space_id, line, stepped)
            if number <= line.admitted:
                await self.lines.present(space_id, line.epoch, number)  # marks the arrival
        waiting = place(
            number,
            line,
            capacity=capacity,
            presence_window=self.presence_window,
            policy=self.policy,
        )
        if waiting is None:
            return None
        signed = self.tickets.issue(
            Ticket(space_id, line.epoch, number, int(now) + self.policy.ticket_ttl)
        )
        return signed, waiting

    async def close(self) -> None:
        await self.lines.close()
