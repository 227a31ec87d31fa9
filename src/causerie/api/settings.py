"""What the pages need to know about the rules: `GET /api/settings`.

The limits the server enforces (lengths of titles, names, questions…) and the reactions it
accepts, taken from the constants that enforce them, so the pages never carry copies that
drift. The answer is the same for everyone and changes only with a new version of the server:
browsers and edges keep it for a while (`public, max-age=300`).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ..domain.questions import QUESTION_MAX
from ..domain.reactions import EMOJI, REACTION_NAMES
from ..domain.spaces import DESCRIPTION_MAX, NAME_MAX, TITLE_MAX
from ..domain.waiting_room import MAX_CAPACITY

CACHE_CONTROL = "public, max-age=300"

router = APIRouter(prefix="/api", tags=["settings"])


class TextLimits(BaseModel):
    """The most characters (code points, after trimming) each text may have, and the largest
    listener limit a space may set."""

    title: int = Field(description="A space's title.")
    description: int = Field(description="A space's description.")
    name: int = Field(description="A display name (a listener's, a speaker's).")
    question: int = Field(description="A question from the audience.")
    capacity: int = Field(description="A space's listener limit (its waiting room's cap).")


class Reaction(BaseModel):
    emoji: str
    name: str = Field(description="What it is called for people who cannot see it.")


class Settings(BaseModel):
    limits: TextLimits
    reactions: list[Reaction] = Field(description="The reactions the audience may send, in order.")


SETTINGS = Settings(
    limits=TextLimits(
        title=TITLE_MAX,
        description=DESCRIPTION_MAX,
        name=NAME_MAX,
        question=QUESTION_MAX,
        capacity=MAX_CAPACITY,
    ),
    reactions=[Reaction(emoji=emoji, name=REACTION_NAMES.get(emoji, emoji)) for emoji in EMOJI],
)


@router.get("/settings", response_model=Settings, summary="The limits and the reactions")
async def settings(response: Response) -> Settings:
    """The rules the pages show before the server enforces them: text lengths (form fields,
    counters) and the reactions on offer (the emoji buttons)."""
    response.headers["Cache-Control"] = CACHE_CONTROL
    return SETTINGS
