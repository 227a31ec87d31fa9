"""What the rest of causerie needs from storage. Two implementations: SQLite and Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from ..domain import Conflict, Space, SpaceState
from ..domain.questions import Question

T = TypeVar("T")


class Store(Protocol):
    """Durable state: spaces (saved whole, with a version for optimistic concurrency)."""

    async def create_space(self, space: Space) -> None:
        """Save a new space; `Conflict` if the id is taken."""

    async def get_space(self, space_id: str) -> Space:
        """The space, or `NotFound`."""

    async def list_spaces(self, states: Iterable[SpaceState], limit: int = 100) -> list[Space]:
        """Spaces in the given states, live first, then by (scheduled) start, newest last."""

    async def recently_ended(self, limit: int = 50) -> list[Space]:
        """Ended spaces, the latest (by start) first: what the admin console lists."""

    async def replace_space(self, space: Space, expected_version: int) -> bool:
        """Save `space` (its version is set to expected_version + 1) unless it changed since."""

    async def add_question(self, question: Question) -> None:
        """Save a new question."""

    async def get_question(self, space_id: str, question_id: str) -> Question:
        """The question with its vote count, or `NotFound`."""

    async def list_questions(self, space_id: str) -> list[Question]:
        """Every question of the space (any state), with vote counts."""

    async def save_question(self, question: Question) -> None:
        """Save a question's state and pin (never its votes: those are counted apart)."""

    async def add_vote(self, space_id: str, question_id: str, voter: str) -> int | None:
        """Count `voter`'s vote once: the new total, or None if they had voted already."""

    async def add_reactions(self, space_id: str, counts: dict[str, int]) -> None:
        """Add aggregated reaction counts to the space's totals."""

    async def reaction_totals(self, space_id: str) -> dict[str, int]:
        """All reactions of the space so far, by emoji."""

    async def close(self) -> None:
        """Release connections and files."""


async def update_space(
    store: Store, space_id: str, change: Callable[[Space], T], *, attempts: int = 10
) -> tuple[Space, T]:
    """Load a space, apply `change` (which may raise a DomainError) and save it atomically.

    If someone else saved the space meanwhile, the change is applied again to the new version,
    so no concurrent change is lost.
    """
    for _ in range(attempts):
        space = await store.get_space(space_id)
        version = space.version
        result = change(space)
        if await store.replace_space(space, version):
            return space, result
    raise Conflict("the space is changing too fast; try again")
