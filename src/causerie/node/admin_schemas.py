"""The JSON shapes of the operator's API (`/api/admin/…`) and of host invites."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..domain.accounts import DEFAULT_INVITE_HOURS, MAX_INVITE_HOURS, NOTE_MAX
from ..domain.spaces import NAME_MAX
from .schemas import text_schema

# -- the console: spaces, nodes, the disk ------------------------------------------------------


class Person(BaseModel):
    id: str
    name: str


class AdminSpace(BaseModel):
    """A space as the operator sees it: every state, with its live numbers."""

    id: str
    title: str
    state: Literal["scheduled", "live", "ended"]
    host: Person
    created_at: datetime
    scheduled_start: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    ending_at: datetime | None = Field(
        description="When a live space nobody speaks in ends by itself (housekeeping), if due."
    )
    stage: list[Person] = Field(description="Host, co-hosts and speakers.")
    speaking: int = Field(description="People talking now (on the node that runs it).")
    requests_waiting: int
    recording: bool
    owner: str | None = Field(description="The URL of the node that runs its media (live only).")
    listeners_now: int | None = Field(description="Live spaces: listening now (every node).")
    peak: int | None = Field(description="Live spaces: the most listening at once so far.")
    unique_listeners: int | None = Field(description="Live spaces: distinct listeners so far.")
    joins: int | None = Field(description="Live spaces: listener tokens issued so far.")
    replay_url: str | None


class RedisStatus(BaseModel):
    reachable: bool | None = Field(description="The node's last PING (every 5 s); null: none yet.")
    ping_seconds: float | None


class RecordingsDisk(BaseModel):
    """The recordings on one node's disk (measured every 5 minutes) and their budget."""

    bytes: int
    live_bytes: int
    count: int
    max_bytes: int = Field(description="The disk budget (--recordings-max-gb); 0: none.")
    keep_days: float = Field(description="How long recordings are kept (--keep-recordings).")
    over_budget: bool = Field(description="The live recordings alone take more than the budget.")
    removed: dict[str, int] = Field(description="Recordings removed since start, by reason.")
    disk_free_bytes: int


class NodeStatus(BaseModel):
    """One node, from its last status report (every 2 s)."""

    url: str
    status: Literal["up", "silent"] = Field(
        description="`silent`: no report for over 7 s (stopped, stuck, or cut off from Redis)."
    )
    this_node: bool = Field(description="The node that answered this request.")
    seen_at: datetime
    started_at: datetime
    version: str
    cpu: float | None = Field(description="Share of one core the node's process used lately.")
    event_loop_lag_seconds: float
    requests_in_flight: int
    event_streams_open: int
    live_spaces: list[str] = Field(description="The spaces whose media this node runs.")
    listeners_now: int = Field(description="Listening now to the spaces this node runs.")
    redis: RedisStatus | None = Field(description="Null: embedded (no Redis).")
    recordings: RecordingsDisk


class DiskTotals(BaseModel):
    """The recordings of every node together."""

    bytes: int
    live_bytes: int
    count: int
    max_bytes: int = Field(description="The budgets together (0: some node has none).")


class ReportsSummary(BaseModel):
    """The reports queue at a glance."""

    open: int
    url: str = Field(description="Where the queue is read (`GET`).")


class Overview(BaseModel):
    """Everything the admin console shows, at one moment."""

    generated_at: datetime
    spaces: list[AdminSpace]
    nodes: list[NodeStatus]
    recordings: DiskTotals
    reports: ReportsSummary | None = Field(
        description="The open reports; null while this node has no reports queue."
    )


# -- invites and accounts ------------------------------------------------------------------------


class NewInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["host", "operator"] = Field(
        "host", description="The account the invite makes: a host (creates spaces) or operator."
    )
    hours: float = Field(
        DEFAULT_INVITE_HOURS,
        gt=0,
        le=MAX_INVITE_HOURS,
        description=f"How long the link works (at most {MAX_INVITE_HOURS} hours).",
    )
    note: str = Field(
        "",
        description="Who it is for (shown in the list only).",
        json_schema_extra=text_schema(NOTE_MAX, required=False),
    )


class InviteView(BaseModel):
    id: str = Field(description="The invite's id (a hash of its code; never the code).")
    role: Literal["host", "operator"]
    state: Literal["open", "used", "expired", "revoked"]
    note: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    account_id: str | None
    revoked_at: datetime | None


class InviteCreated(InviteView):
    code: str = Field(description="The secret code; shown this once, never again.")
    url: str = Field(description="The link to give: `/invite/{code}` on this site.")


class InviteList(BaseModel):
    invites: list[InviteView]


class AccountView(BaseModel):
    id: str
    name: str
    role: Literal["host", "operator"]
    created_at: datetime
    invited_by: str
    revoked_at: datetime | None


class AccountList(BaseModel):
    accounts: list[AccountView]


class Revoked(BaseModel):
    account_id: str
    revoked_at: datetime


class InviteInfo(BaseModel):
    """What the invite page shows before the invite is used."""

    role: Literal["host", "operator"]
    expires_at: datetime


class RedeemInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description=f"The new account's display name; 1–{NAME_MAX} characters.",
        json_schema_extra=text_schema(NAME_MAX),
    )


class AccountToken(BaseModel):
    account: AccountView
    token: str = Field(description="The account's token: keep it, it is shown once.")
    expires_at: datetime
