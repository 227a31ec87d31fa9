"""The JSON shapes of the API (what the OpenAPI document describes)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..domain import questions as q
from ..domain.spaces import DESCRIPTION_MAX, NAME_MAX, TITLE_MAX
from ..domain.waiting_room import MAX_CAPACITY

# No control characters (Unicode category Cc), as domain/text.py checks; multiline text may hold
# newlines and tabs. Documented in the JSON Schema only: the domain's own messages are clearer.
_ONE_LINE = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
_MULTILINE = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"


def text_schema(max_length: int, *, multiline: bool = False, required: bool = True) -> dict:
    """The JSON Schema of free text the domain accepts (lengths count after trimming)."""
    return {
        "minLength": 1 if required else 0,
        "maxLength": max_length,
        "pattern": _MULTILINE if multiline else _ONE_LINE,
    }


class CreateSpace(BaseModel):
    """A new space. Titles and descriptions are checked by the domain (length, characters)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(
        description=f"Shown to everyone; 1–{TITLE_MAX} characters.",
        json_schema_extra=text_schema(TITLE_MAX),
    )
    description: str = Field(
        "",
        description=f"Optional; up to {DESCRIPTION_MAX} characters.",
        json_schema_extra=text_schema(DESCRIPTION_MAX, multiline=True, required=False),
    )
    scheduled_start: datetime | None = Field(
        None, description="ISO 8601 with a time zone, e.g. 2026-11-21T18:00:00Z."
    )
    recording: bool = Field(True, description="Keep the audio for replay.")
    capacity: int | None = Field(
        None,
        strict=True,
        ge=1,
        le=MAX_CAPACITY,
        description="The most listeners at once; more wait in line. Null: no cap.",
    )


class EditSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, json_schema_extra=text_schema(TITLE_MAX))
    description: str | None = Field(
        None, json_schema_extra=text_schema(DESCRIPTION_MAX, multiline=True, required=False)
    )
    scheduled_start: datetime | None = None
    capacity: int | None = Field(
        None,
        strict=True,
        ge=1,
        le=MAX_CAPACITY,
        description="The most listeners at once; null removes the cap. Left out: unchanged.",
    )


class JoinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="Optional display name, used if you ask to speak.")
    ticket: str | None = Field(
        None,
        max_length=256,
        description="The ticket of a previous answer `waiting`: keeps your place in line.",
    )


class Person(BaseModel):
    id: str
    name: str
    role: Literal["host", "cohost", "speaker"]
    muted: bool
    reconnecting: bool = Field(
        False,
        description="Their audio connection dropped and their page is bringing it back "
        "(ICE restart, or a new session): marked within about 1.5 s of the audio stopping.",
    )


class Host(BaseModel):
    id: str
    name: str


class SpaceView(BaseModel):
    """A space as everyone may see it."""

    id: str
    title: str
    description: str
    state: Literal["scheduled", "live", "ended"]
    scheduled_start: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    playlist_url: str = Field(
        description="The HLS multivariant playlist (CODECS, BANDWIDTH): give this to players."
    )
    media_playlist_url: str = Field(
        description="The LL-HLS media playlist it names (blocking reload, parts)."
    )
    listeners_now: int = Field(description="Distinct listeners seen in the last heartbeat window.")
    events_url: str = Field(
        description="The live events in time windows, the same for every listener (cacheable): "
        "GET it for the window in progress, then follow `url` and each window's `next`."
    )
    host: Host
    stage: list[Person]
    speaking: list[str] = Field(
        default_factory=list, description="Ids of the people on stage talking right now."
    )
    requests_waiting: int = Field(
        description="Listeners who asked to speak and wait for an answer (hands nobody "
        "answered are lowered after 10 minutes)."
    )
    recording: bool
    capacity: int | None = Field(
        None, description="The most listeners at once; more wait in line. Null: no cap."
    )
    ending_at: datetime | None = Field(
        None,
        description="When the space ends by itself, nobody having been on the microphone for a "
        "while (the server's --end-idle-after); anyone going on air before then cancels it. "
        "Null: no such end is planned.",
    )
    replay_url: str | None = Field(
        None, description="The replay (HLS VOD playlist) once the space has ended, if recorded."
    )
    download_url: str | None = Field(
        None, description="The whole recording as one .m4a file, once the space has ended."
    )
    recording_error: str | None = Field(
        None, description="Why the recording is incomplete (e.g. a full disk); null if it is not."
    )
    captions: bool = Field(
        True, description="Whether the host wants the space captioned (live, and a transcript)."
    )
    captions_state: str | None = Field(
        None,
        description="While live: `on` (caption events come with the live events), `off` (the "
        "host's choice), `waiting` (starting, or this server captions as many spaces as it "
        "may) or `unavailable` (this server cannot: see `captions_problem`). Null otherwise.",
    )
    captions_problem: str | None = Field(
        None, description="Why this server cannot caption (no model, a damaged one, turned off)."
    )
    transcript_url: str | None = Field(
        None,
        description="The transcript as WebVTT once the space has ended (`.txt` and `.json` "
        "beside it), if it was captioned and recorded.",
    )
    captioned_replay_url: str | None = Field(
        None,
        description="The replay as an HLS multivariant playlist with the transcript as its "
        "subtitles track (EXT-X-MEDIA TYPE=SUBTITLES), when there is a transcript.",
    )


class SpeakRequestView(BaseModel):
    user_id: str
    name: str
    at: datetime
    account: bool = Field(
        False, description="Raised by an account holder rather than an anonymous listener."
    )


class SpeakRequests(BaseModel):
    requests: list[SpeakRequestView]


class RaiseHand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Display name; defaults to the token's name.")


class Invitation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)
    name: str = Field("", max_length=NAME_MAX)


class Named(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=NAME_MAX)


class MuteChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    muted: bool


class Removal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(
        "",
        description="Optional: why, kept in the audit log (up to 500 characters).",
        json_schema_extra=text_schema(500, multiline=True, required=False),
    )


class SpaceList(BaseModel):
    spaces: list[SpaceView]


class Joined(BaseModel):
    token: str = Field(description="A listener token for this space (send it as a Bearer token).")
    listener_id: str
    playlist_url: str
    heartbeat_interval: float = Field(description="Seconds between heartbeats while listening.")
    expires_at: datetime


class WaitingPlace(BaseModel):
    """A place in a full space's line."""

    ticket: str = Field(description="Send it back as `ticket` in the next join to keep your place.")
    position: int = Field(description="1 means you are next.")
    estimated_wait_seconds: float = Field(description="A rough guess of the time until you are in.")
    retry_after: int = Field(
        description="Seconds to wait before joining again (also in the Retry-After header); "
        "wait a random time up to it, so everyone does not come back at once."
    )


class Waiting(BaseModel):
    """The answer to a join when the space is full: wait, then join again with the ticket."""

    waiting: WaitingPlace


class Error(BaseModel):
    """Every error response (4xx, 5xx) of the API, whatever raised it (api/errors.py)."""

    error: str = Field(description="A stable code for programs, e.g. not_found, invalid.")
    message: str = Field(description="What went wrong, in a sentence for people.")


class QuestionView(BaseModel):
    """A question as everyone sees it (and as `questions` events carry it)."""

    id: str
    text: str
    author_id: str
    author_name: str
    votes: int
    state: Literal["open", "answered", "hidden", "withdrawn"]
    pinned: bool
    created_at: str


def question_view(question: q.Question) -> QuestionView:
    """A question as everyone sees it."""
    return QuestionView(
        id=question.id,
        text=question.text,
        author_id=question.author_id,
        author_name=question.author_name,
        votes=question.votes,
        state=question.state.value,
        pinned=question.pinned,
        created_at=question.created_at.isoformat(),
    )
