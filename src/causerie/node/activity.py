"""What the audience does, collected and published once a second.

Listener actions are never fanned out one by one: reactions are summed, and changed questions
collected, then published together once a second, so a million reacting listeners send each
page one small event a second, not a million. Nothing a moderator does is dropped: when more
questions changed than one event carries, they go out in several events.
"""

from __future__ import annotations

from collections import Counter

from ..bus import Bus
from ..store import Store
from .schemas import question_view

PUBLISH_INTERVAL = 1.0
MAX_QUESTIONS_PER_EVENT = 50


class Activity:
    """What waits to be published at the next tick."""

    def __init__(self) -> None:
        self.reactions: dict[str, Counter[str]] = {}
        self.changed: dict[str, set[str]] = {}

    def react(self, space_id: str, emoji: str) -> None:
        self.reactions.setdefault(space_id, Counter())[emoji] += 1

    def question_changed(self, space_id: str, question_id: str) -> None:
        self.changed.setdefault(space_id, set()).add(question_id)

    async def publish(self, store: Store, bus: Bus) -> None:
        """Publish what changed since the last tick: reaction sums and changed questions."""
        reactions, self.reactions = self.reactions, {}
        changed, self.changed = self.changed, {}
        for space_id, counts in reactions.items():
            await store.add_reactions(space_id, dict(counts))
            await bus.publish(
                space_id, "reactions", {"counts": dict(counts), "seconds": PUBLISH_INTERVAL}
            )
        for space_id, ids in changed.items():
            views = []
            for question_id in sorted(ids):
                question = await store.get_question(space_id, question_id)
                view = question_view(question).model_dump()
                if not question.visible:
                    view = {"id": question.id, "state": question.state.value}  # gone for all
                views.append(view)
            for start in range(0, len(views), MAX_QUESTIONS_PER_EVENT):
                chunk = views[start : start + MAX_QUESTIONS_PER_EVENT]
                await bus.publish(space_id, "questions", {"questions": chunk})
