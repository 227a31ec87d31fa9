"""The JSON shapes of the API (what the OpenAPI document describes)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CreateSpace(BaseModel):
    """A new space. Titles and descriptions are checked by the domain (length, characters)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(description="Shown to everyone; 1–140 characters.")
    description: str = Field("", description="Optional; up to 2000 characters.")
    scheduled_start: datetime | None = Field(
        None, description="ISO 8601 with a time zone, e.g. 2026-11-21T18:00:00Z."
    )
    recording: bool = Field(True, description="Keep the audio for replay.")


class EditSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    description: str | None = None
    scheduled_start: datetime | None = None


class JoinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="Optional display name, used if you ask to speak.")


class Person(BaseModel):
    id: str
    name: str
    role: Literal["host", "cohost", "speaker"]
    muted: bool


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
    playlist_url: str = Field(description="The LL-HLS media playlist (a path on this server).")
    listeners_now: int = Field(description="Distinct listeners seen in the last heartbeat window.")
    host: Host
    stage: list[Person]
    speaking: list[str] = Field(
        default_factory=list, description="Ids of the people on stage talking right now."
    )
    requests_waiting: int = Field(
        description="Listeners who asked to speak and wait for an answer."
    )
    recording: bool
    replay_url: str | None = Field(
        None, description="The replay (HLS VOD playlist) once the space has ended, if recorded."
    )
    download_url: str | None = Field(
        None, description="The whole recording as one .m4a file, once the space has ended."
    )
    recording_error: str | None = Field(
        None, description="Why the recording is incomplete (e.g. a full disk); null if it is not."
    )


class SpeakRequestView(BaseModel):
    user_id: str
    name: str
    at: datetime


class SpeakRequests(BaseModel):
    requests: list[SpeakRequestView]


class RaiseHand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Display name; defaults to the token's name.")


class Invitation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)
    name: str = Field("", max_length=60)


class Named(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=60)


class MuteChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    muted: bool


class Removal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)


class SpaceList(BaseModel):
    spaces: list[SpaceView]


class Joined(BaseModel):
    token: str = Field(description="A listener token for this space (send it as a Bearer token).")
    listener_id: str
    playlist_url: str
    heartbeat_interval: float = Field(description="Seconds between heartbeats while listening.")
    expires_at: datetime


class Error(BaseModel):
    error: str
    message: str
