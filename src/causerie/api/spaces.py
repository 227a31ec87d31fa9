"""The spaces API: create, list, read, start, end, join, heartbeat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from ..domain import Action, Space, SpaceState, new_space_id
from ..domain.audit import AuditAction
from ..domain.spaces import UNCHANGED
from ..node import joins
from ..node.moderation import log_space_act
from ..node.schemas import (
    CreateSpace,
    EditSpace,
    Joined,
    JoinRequest,
    SpaceList,
    SpaceView,
    Waiting,
)
from ..node.services import Services
from ..node.views import space_view
from ..security.tokens import Claims
from ..store import update_space
from .auth import actor, authenticate, require_account
from .dependencies import ERRORS, ServicesDep, SpaceId

router = APIRouter(prefix="/api", responses=ERRORS)


def _cacheable(response: Response, svc: Services) -> None:
    # Under a join storm edges keep answering with slightly old details, never with an error.
    response.headers["Cache-Control"] = (
        f"public, max-age={svc.config.details_max_age}, "
        "stale-while-revalidate=30, stale-if-error=86400"
    )


# OpenAPI links (OpenAPI 3.1 §4.8.20): what a client, or a fuzzer, may do next with the new
# space's id. tests/api/test_openapi_fuzz.py checks that every target exists.
SPACE_LINKS = {
    name: {"operationId": operation_id, "parameters": {"space_id": "$response.body#/id"}}
    for name, operation_id in (
        ("GetSpace", "get_space_api_spaces__space_id__get"),
        ("EditSpace", "edit_space_api_spaces__space_id__patch"),
        ("StartSpace", "start_space_api_spaces__space_id__start_post"),
        ("EndSpace", "end_space_api_spaces__space_id__end_post"),
        ("JoinSpace", "join_space_api_spaces__space_id__join_post"),
        ("AskQuestion", "ask_api_spaces__space_id__questions_post"),
        ("ListQuestions", "list_questions_api_spaces__space_id__questions_get"),
        ("GetCalendar", "space_ics_api_spaces__space_id__ics_get"),
        ("GetStats", "get_stats_api_spaces__space_id__stats_get"),
    )
}


@router.post(
    "/spaces",
    status_code=201,
    response_model=SpaceView,
    summary="Create a space",
    responses={201: {"links": SPACE_LINKS}},
)
async def create_space(
    request: Request, body: CreateSpace, response: Response, svc: ServicesDep
) -> SpaceView:
    """Create a scheduled space; the token's account becomes its host."""
    claims = await authenticate(request, svc)
    require_account(claims)
    space = Space.create(
        space_id=new_space_id(),
        host_id=claims.sub,
        host_name=claims.name,
        title=body.title,
        description=body.description,
        scheduled_start=body.scheduled_start,
        recording=body.recording,
        capacity=body.capacity,
        now=svc.now(),
    )
    await svc.store.create_space(space)
    svc.remember(space)
    svc.metrics.inc("causerie_spaces_created_total")
    response.headers["Location"] = f"/api/spaces/{space.id}"
    return await space_view(space, svc)


@router.get("/spaces", response_model=SpaceList, summary="Live and scheduled spaces")
async def list_spaces(response: Response, svc: ServicesDep) -> SpaceList:
    spaces = await svc.store.list_spaces([SpaceState.LIVE, SpaceState.SCHEDULED])
    _cacheable(response, svc)
    return SpaceList(spaces=[await space_view(s, svc) for s in spaces])


@router.get("/spaces/{space_id}", response_model=SpaceView, summary="One space's details")
async def get_space(space_id: SpaceId, response: Response, svc: ServicesDep) -> SpaceView:
    space = await svc.cached_space(space_id)
    _cacheable(response, svc)
    return await space_view(space, svc)


async def change_space(
    request: Request, svc: Services, space_id: str, change: Callable[[Space, str], object]
) -> tuple[Space, Claims]:
    """Authenticate, apply `change(space, actor)` atomically, then tell the media and the pages."""
    claims = await authenticate(request, svc, space_id)
    acting = actor(claims)
    space, _ = await update_space(svc.store, space_id, lambda s: change(s, acting))
    svc.remember(space)
    await svc.stage_changed(space)
    await svc.bus.publish(space_id, "space", (await space_view(space, svc)).model_dump(mode="json"))
    return space, claims


@router.patch("/spaces/{space_id}", response_model=SpaceView, summary="Edit the details")
async def edit_space(
    space_id: SpaceId, body: EditSpace, request: Request, svc: ServicesDep
) -> SpaceView:
    """Host or co-host: change the title, description, capacity (null: no cap) or (before the
    start) the start time."""
    capacity = body.capacity if "capacity" in body.model_fields_set else UNCHANGED
    space, _ = await change_space(
        request,
        svc,
        space_id,
        lambda s, actor: s.edit(
            actor,
            title=body.title,
            description=body.description,
            scheduled_start=body.scheduled_start,
            capacity=capacity,
        ),
    )
    return await space_view(space, svc)


@router.post("/spaces/{space_id}/start", response_model=SpaceView, summary="Go live")
async def start_space(space_id: SpaceId, request: Request, svc: ServicesDep) -> SpaceView:
    """Host or co-host: the space goes live and its audio starts."""
    space, _ = await change_space(
        request, svc, space_id, lambda s, actor: s.start(actor, svc.now())
    )
    # This node claims the space's media (with Redis, unless another node got it first).
    await svc.ownership.go_live(space.id, space.recording)
    svc.metrics.inc("causerie_spaces_started_total")
    return await space_view(space, svc)


@router.post("/spaces/{space_id}/end", response_model=SpaceView, summary="End the space")
async def end_space(space_id: SpaceId, request: Request, svc: ServicesDep) -> SpaceView:
    """Host only (or an operator): the space ends (a scheduled one is cancelled); its audio
    stops."""
    space, claims = await change_space(
        request, svc, space_id, lambda s, actor: s.end(actor, svc.now())
    )
    # Stopped here if it runs here; elsewhere, its owner stops it within a second (its tick).
    await svc.ownership.end(space.id)
    await log_space_act(
        svc, space, actor(claims), Action.END, AuditAction.END_SPACE, f"space:{space.id}"
    )
    return await space_view(space, svc)


# Joins and heartbeats are answered by joins.FastJoins before FastAPI sees them; these routes
# document them (and share their logic with it).


@router.post(
    "/spaces/{space_id}/join",
    response_model=Joined | Waiting,
    summary="Join as a listener",
    responses={200: {"headers": {"Retry-After": {"description": "When `waiting`: seconds."}}}},
)
async def join_space(
    space_id: SpaceId,
    svc: ServicesDep,
    response: Response,
    body: Annotated[JoinRequest | None, Body()] = None,
) -> Joined | Waiting:
    """Anyone: a listener token for this space, signed statelessly (nothing is stored).

    If the space has a `capacity` and is full, the answer is `waiting` instead: a place in
    line, a rough estimate of the wait, and `retry_after` seconds (also the Retry-After
    header). Join again after a random time up to it, sending the `ticket` to keep your place;
    people are let in in order as room frees up. A bad ticket is a 422.
    """
    answer, headers = await joins.join(svc, space_id, body)
    response.headers.update(headers)
    return answer


@router.post("/spaces/{space_id}/heartbeat", status_code=204, summary="Say you are still listening")
async def heartbeat(space_id: SpaceId, request: Request, svc: ServicesDep) -> Response:
    """Listeners call this every `heartbeat_interval` seconds; it is what 'listening now' counts."""
    await joins.heartbeat(svc, space_id, await authenticate(request, svc, space_id))
    return Response(status_code=204)
