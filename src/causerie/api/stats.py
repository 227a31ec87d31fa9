"""The audience numbers of a space: `GET /api/spaces/{id}/stats` (JSON) and `stats.csv`.

Each number is defined in docs/numbers.md and, in one line, in the answer itself
(`definitions`), so that the report page and anyone reading the JSON say the same thing.
Answers may be cached for a couple of seconds: the numbers move with 15-second heartbeats.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ..counting import HEARTBEAT_INTERVAL
from ..counting.definitions import DEFINITIONS
from ..counting.stats import Summary
from ..domain import Space
from ..node.services import Services
from ..node.views import moment, summarize
from .dependencies import ERRORS, ServicesDep, SpaceId

log = logging.getLogger(__name__)

PUSH_INTERVAL = 5.0
"""Seconds between `stats` events on a live space's event stream (when a number changed)."""

CSV_COLUMNS = (
    "minute",
    "listening_end",
    "average",
    "peak",
    "joins",
    "join_attempts",
    "heartbeats",
)

router = APIRouter(prefix="/api", responses=ERRORS, tags=["numbers"])


class Definition(BaseModel):
    name: str = Field(description="A short name for the number.")
    definition: str = Field(description="What it counts, in one line (docs/numbers.md: more).")


class Peak(BaseModel):
    listeners: int = Field(description="The largest listening-now sample of the program.")
    at: datetime | None = Field(description="When it was taken; null if nobody listened.")


class Joins(BaseModel):
    attempted: int = Field(description="Join requests that reached the space.")
    admitted: int = Field(description="Listener tokens issued.")
    node_refused: int | None = Field(
        description="Requests (any route, any space) this node refused with 503 since it started."
    )


class Replay(BaseModel):
    plays: int = Field(description="Distinct devices that opened the replay, once per UTC day.")
    requests: int = Field(description="Replay playlist requests.")


class MinuteStats(BaseModel):
    minute: datetime = Field(description="The minute's start (UTC).")
    listening_end: int = Field(description="Listening now at the end of the minute.")
    average: float = Field(description="The minute's audience: the mean of its 15-s samples.")
    peak: int = Field(description="The largest 15-s sample within the minute.")
    joins: int
    join_attempts: int
    heartbeats: int


class Stats(BaseModel):
    """A space's audience numbers at one moment."""

    space_id: str
    state: Literal["scheduled", "live", "ended"]
    started_at: datetime | None
    ended_at: datetime | None
    generated_at: datetime
    heartbeat_interval: float
    listening_now: int
    peak: Peak | None = Field(description="Null before the space goes live.")
    average_minute_audience: float | None = Field(description="Null before the space goes live.")
    unique_listeners: int
    minutes: int = Field(description="Minutes of the program so far.")
    joins: Joins
    replay: Replay
    heartbeats: int
    series: list[MinuteStats] = Field(description="The program, minute by minute.")
    definitions: dict[str, Definition]


def stats_view(space: Space, summary: Summary, now: float, refused: int | None) -> Stats:
    """The JSON answer for `space`."""
    return Stats(
        space_id=space.id,
        state=space.state.value,
        started_at=space.started_at,
        ended_at=space.ended_at,
        generated_at=datetime.fromtimestamp(now, UTC),
        heartbeat_interval=HEARTBEAT_INTERVAL,
        listening_now=summary.listening_now,
        peak=None
        if summary.peak is None
        else Peak(listeners=summary.peak, at=moment(summary.peak_at)),
        average_minute_audience=None
        if summary.average_minute_audience is None
        else round(summary.average_minute_audience, 2),
        unique_listeners=summary.unique_listeners,
        minutes=len(summary.minutes),
        joins=Joins(attempted=summary.join_attempts, admitted=summary.joins, node_refused=refused),
        replay=Replay(plays=summary.replay_plays, requests=summary.replay_requests),
        heartbeats=summary.heartbeats,
        series=[
            MinuteStats(
                minute=datetime.fromtimestamp(row.start, UTC),
                listening_end=row.listening_end,
                average=round(row.average, 3),
                peak=row.peak,
                joins=row.joins,
                join_attempts=row.join_attempts,
                heartbeats=row.heartbeats,
            )
            for row in summary.minutes
        ],
        definitions={
            key: Definition(name=name, definition=text) for key, (name, text) in DEFINITIONS.items()
        },
    )


def node_refusals(request: Request) -> int | None:
    """How many requests this node's admission gate refused, if the app knows its gate."""
    admission = getattr(request.app.state, "admission", None)
    return None if admission is None else int(admission.refused)


def _cache(response: Response, svc: Services) -> None:
    response.headers["Cache-Control"] = (
        f"public, max-age={svc.config.details_max_age}, "
        "stale-while-revalidate=10, stale-if-error=600"
    )


async def _space(svc: Services, space_id: str) -> Space:
    return await svc.cached_space(space_id)


@router.get("/spaces/{space_id}/stats", response_model=Stats, summary="Audience numbers")
async def get_stats(
    space_id: SpaceId, request: Request, response: Response, svc: ServicesDep
) -> Stats:
    """Listening now, peak, average minute audience, unique listeners, joins, replays, and
    the program minute by minute; each with its definition."""
    space = await _space(svc, space_id)
    summary = await summarize(svc, space)
    _cache(response, svc)
    return stats_view(space, summary, svc.clock(), node_refusals(request))


def series_csv(summary: Summary) -> str:
    """The per-minute series as CSV (RFC 4180: a header row, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in summary.minutes:
        writer.writerow(
            (
                datetime.fromtimestamp(row.start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                row.listening_end,
                f"{row.average:.3f}".rstrip("0").rstrip("."),
                row.peak,
                row.joins,
                row.join_attempts,
                row.heartbeats,
            )
        )
    return out.getvalue()


@router.get(
    "/spaces/{space_id}/stats.csv",
    summary="Audience minute by minute (CSV)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_stats_csv(space_id: SpaceId, svc: ServicesDep) -> Response:
    """One row per minute of the program: `minute` (UTC start), `listening_end`, `average`
    (the minute's audience), `peak`, `joins`, `join_attempts`, `heartbeats`."""
    space = await _space(svc, space_id)
    summary = await summarize(svc, space)
    response = Response(
        series_csv(summary),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{space.id}-audience.csv"'},
    )
    _cache(response, svc)
    return response
