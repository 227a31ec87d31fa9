"""What the pages need to know about the rules: `GET /api/settings`.

The limits the server enforces (lengths of titles, names, questions…) and the reactions it
accepts, taken from the constants that enforce them, so the pages never carry copies that
drift. The answer is the same for everyone and changes only with a new version of the server:
browsers and edges keep it for a while (`public, max-age=300`).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ..captions.query import MAX_QUERY
from ..domain.accounts import MAX_INVITE_HOURS
from ..domain.accounts import NOTE_MAX as INVITE_NOTE_MAX
from ..domain.questions import QUESTION_MAX
from ..domain.reactions import EMOJI, REACTION_NAMES
from ..domain.reports import NOTE_MAX, REASON_LABELS
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
    report_note: int = Field(description="The note a listener may add to a report.")
    invite_note: int = Field(description="The note an operator may keep with an invite.")
    invite_hours: int = Field(description="The longest an invite link may stay valid, in hours.")
    search: int = Field(description="A search of the transcripts.")


class Reaction(BaseModel):
    emoji: str
    name: str = Field(description="What it is called for people who cannot see it.")


class ReportReasonView(BaseModel):
    reason: str = Field(description="What a report sends as its `reason`.")
    label: str = Field(description="What it is called for people.")


class Settings(BaseModel):
    limits: TextLimits
    reactions: list[Reaction] = Field(description="The reactions the audience may send, in order.")
    report_reasons: list[ReportReasonView] = Field(
        description="The reasons a report may give, in the order the pages offer them."
    )


SETTINGS = Settings(
    limits=TextLimits(
        title=TITLE_MAX,
        description=DESCRIPTION_MAX,
        name=NAME_MAX,
        question=QUESTION_MAX,
        capacity=MAX_CAPACITY,
        report_note=NOTE_MAX,
        invite_note=INVITE_NOTE_MAX,
        invite_hours=MAX_INVITE_HOURS,
        search=MAX_QUERY,
    ),
    reactions=[Reaction(emoji=emoji, name=REACTION_NAMES.get(emoji, emoji)) for emoji in EMOJI],
    report_reasons=[
        ReportReasonView(reason=reason.value, label=label)
        for reason, label in REASON_LABELS.items()
    ],
)


@router.get("/settings", response_model=Settings, summary="The limits and the reactions")
async def settings(response: Response) -> Settings:
    """The rules the pages show before the server enforces them: text lengths (form fields,
    counters), the reactions on offer (the emoji buttons) and the reasons a report may give."""
    response.headers["Cache-Control"] = CACHE_CONTROL
    return SETTINGS
