"""Questions from the audience: asked before or during a space, upvoted, answered on air.

Ordering: the question being answered (pinned) first, then open questions by votes, then by
age (older first, so early askers are not buried). Answered questions follow; hidden and
withdrawn ones are shown to nobody but moderators.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from .errors import Conflict, NotAllowed
from .roles import Action
from .spaces import NAME_MAX, Space, SpaceState
from .text import clean_text

QUESTION_MAX = 280


class QuestionState(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    HIDDEN = "hidden"
    WITHDRAWN = "withdrawn"


VISIBLE = frozenset({QuestionState.OPEN, QuestionState.ANSWERED})


@dataclass
class Question:
    """One question and where it stands. `votes` is counted by the store, one per voter."""

    id: str
    space_id: str
    author_id: str
    author_name: str
    text: str
    created_at: datetime
    state: QuestionState = QuestionState.OPEN
    pinned: bool = False
    votes: int = 0

    @property
    def visible(self) -> bool:
        return self.state in VISIBLE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "space_id": self.space_id,
            "author_id": self.author_id,
            "author_name": self.author_name,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
            "state": self.state.value,
            "pinned": self.pinned,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], votes: int = 0) -> Question:
        return cls(
            id=data["id"],
            space_id=data["space_id"],
            author_id=data["author_id"],
            author_name=data["author_name"],
            text=data["text"],
            created_at=datetime.fromisoformat(data["created_at"]),
            state=QuestionState(data["state"]),
            pinned=data["pinned"],
            votes=votes,
        )


def ask(
    space: Space, *, question_id: str, author_id: str, author_name: str, text: str, now: datetime
) -> Question:
    """A new question, before or during the space."""
    space.check(author_id, Action.ASK_QUESTION)
    if space.state is SpaceState.ENDED:
        raise Conflict("the space has ended; questions are closed")
    return Question(
        id=question_id,
        space_id=space.id,
        author_id=author_id,
        author_name=clean_text(author_name, field="name", max_length=NAME_MAX, required=False)
        or "Guest",
        text=clean_text(text, field="question", max_length=QUESTION_MAX, multiline=True),
        created_at=now,
    )


def check_vote(space: Space, question: Question, voter: str) -> None:
    """Raise unless `voter` may upvote `question` (the store then counts it once)."""
    space.check(voter, Action.VOTE_QUESTION)
    if space.state is SpaceState.ENDED:
        raise Conflict("the space has ended; voting is closed")
    if question.state is not QuestionState.OPEN:
        raise Conflict(f"the question is {question.state.value}; only open questions take votes")


def withdraw(question: Question, actor: str) -> None:
    """The author takes their question back."""
    if actor != question.author_id:
        raise NotAllowed("only the author can withdraw a question")
    if question.state is not QuestionState.OPEN:
        raise Conflict(f"the question is {question.state.value} already")
    question.state = QuestionState.WITHDRAWN
    question.pinned = False


def moderate(space: Space, question: Question, actor: str, action: str) -> None:
    """Host or co-host: `pin` (being answered now), `unpin`, `answer`, `hide`, `show`."""
    space.check(actor, Action.MODERATE_QUESTIONS)
    if question.state is QuestionState.WITHDRAWN:
        raise Conflict("the question was withdrawn by its author")
    if action == "pin":
        if question.state is QuestionState.HIDDEN:
            raise Conflict("a hidden question cannot be pinned")
        question.pinned = True
    elif action == "unpin":
        question.pinned = False
    elif action == "answer":
        question.state = QuestionState.ANSWERED
        question.pinned = False
    elif action == "hide":
        question.state = QuestionState.HIDDEN
        question.pinned = False
    elif action == "show":
        if question.state is QuestionState.HIDDEN:
            question.state = QuestionState.OPEN
    else:
        raise ValueError(f"unknown moderation action {action!r}")


def ordered(questions: list[Question]) -> list[Question]:
    """Pinned first, then open by votes then age, then answered, then the rest."""
    rank = {QuestionState.OPEN: 1, QuestionState.ANSWERED: 2}

    def key(q: Question) -> tuple[int, int, datetime, str]:
        return (0 if q.pinned else rank.get(q.state, 3), -q.votes, q.created_at, q.id)

    return sorted(questions, key=key)
