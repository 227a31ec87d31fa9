"""Live events over Server-Sent Events: `GET /api/spaces/{id}/events`.

The stream starts with a `snapshot` (the space as `GET /api/spaces/{id}` shows it, without an
id, so it never moves Last-Event-ID), then every event with its id. A client that reconnects
sends `Last-Event-ID` (browsers do it by themselves) and gets what it missed, in order, without
repeats; if that is no longer in the backlog it gets a `reset` and should read the state again.
A `ping` event every 15 s keeps idle connections (and the proxies in between) alive.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from ..bus import Event
from ..node.views import space_view
from .dependencies import ERRORS, ServicesDep, SpaceId
from .errors import ApiError

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 3000
COUNTS_INTERVAL = 2.0

# A named event (not a comment) so that pages can tell a quiet space from a dead connection;
# it has no id, so it never moves Last-Event-ID.
PING = b"event: ping\ndata: {}\n\n"

router = APIRouter(prefix="/api", responses=ERRORS)


def format_event(event: Event) -> bytes:
    """One SSE message (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""
    data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


def parse_last_event_id(value: str | None) -> int | None:
    """The Last-Event-ID header as an int (None: absent, start from now); anything but the
    decimal ids this server gives is a 400 (`str.isdigit` alone would take "²" or "٣")."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise ApiError(400, "Last-Event-ID must be the id of an event this server sent")
    return int(text)


@router.get(
    "/spaces/{space_id}/events",
    summary="Live events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    space_id: SpaceId,
    request: Request,
    svc: ServicesDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Follow a space live: state and stage changes, listener counts."""
    if svc.event_streams >= svc.config.max_event_streams:
        # Each stream costs a task and a connection: a bound keeps a crowd of idle streams
        # from taking the node. Pages reconnect by themselves after Retry-After.
        raise ApiError(
            503,
            "too many live event streams on this server; please retry",
            {"Retry-After": str(random.randint(5, 15))},
        )
    after = parse_last_event_id(last_event_id)
    if after is None:
        # Taken before the snapshot: an event published meanwhile is sent, never lost.
        after = await svc.bus.last_id(space_id)
    space = await svc.cached_space(space_id)
    snapshot = (await space_view(space, svc)).model_dump(mode="json")

    async def stream() -> AsyncIterator[bytes]:
        svc.event_streams += 1
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n".encode()
            yield f"event: snapshot\ndata: {json.dumps(snapshot, ensure_ascii=False)}\n\n".encode()
            async for event in svc.bus.subscribe(space_id, after, keepalive=KEEPALIVE_SECONDS):
                yield PING if event is None else format_event(event)
        finally:
            svc.event_streams -= 1

    svc.metrics.inc("causerie_event_streams_total")
    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
