"""The spaces API: create, list, read, start, end, join, heartbeat."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from ..counting import HEARTBEAT_INTERVAL
from ..domain import Conflict, NotFound, Space, SpaceState
from ..store import update_space
from ..tokens import Claims, TokenKind
from .auth import authenticate, require_account
from .replay import replay_links
from .schemas import CreateSpace, EditSpace, Error, Joined, JoinRequest, SpaceList, SpaceView
from .services import Services

SPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

ERRORS = {
    400: {"model": Error},
    401: {"model": Error},
    403: {"model": Error},
    404: {"model": Error},
    409: {"model": Error},
    413: {"model": Error},
    422: {"model": Error},
    429: {"model": Error},
    503: {"model": Error},
}

router = APIRouter(prefix="/api", responses=ERRORS)


async def services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]
SpaceId = Annotated[str, Path(description="The space's id.", max_length=64)]


def new_space_id() -> str:
    return secrets.token_urlsafe(8)


def playlist_url(space_id: str) -> str:
    return f"/hls/{space_id}/index.m3u8"


def check_space_id(space_id: str) -> None:
    if not SPACE_ID.match(space_id):
        raise NotFound("no such space")


def speaking_now(svc: Services, space_id: str) -> list[str]:
    """The ids of the people talking now in the space's mixer on this node, sorted."""
    pipeline = svc.broadcasts.get(space_id)
    if pipeline is None:
        return []
    return sorted(i for i, source in pipeline.mixer.inputs.items() if source.active)


async def view(space: Space, svc: Services) -> SpaceView:
    """The public view of a space, with its live listener count."""
    return SpaceView(
        id=space.id,
        title=space.title,
        description=space.description,
        state=space.state.value,
        scheduled_start=space.scheduled_start,
        started_at=space.started_at,
        ended_at=space.ended_at,
        playlist_url=playlist_url(space.id),
        listeners_now=await svc.presence.listening_now(space.id, svc.clock()),
        host={"id": space.host_id, "name": space.host.name},
        stage=[
            {"id": m.user_id, "name": m.name, "role": m.role.value, "muted": m.muted}
            for m in space.on_stage()
        ],
        speaking=speaking_now(svc, space.id),
        requests_waiting=len(space.speak_requests),
        recording=space.recording,
        **replay_links(space, svc),
    )


def _cacheable(response: Response, svc: Services) -> None:
    # Under a join storm edges keep answering with slightly old details, never with an error.
    response.headers["Cache-Control"] = (
        f"public, max-age={svc.config.details_max_age}, "
        "stale-while-revalidate=30, stale-if-error=86400"
    )


@router.post("/spaces", status_code=201, response_model=SpaceView, summary="Create a space")
async def create_space(
    request: Request, body: CreateSpace, response: Response, svc: ServicesDep
) -> SpaceView:
    """Create a scheduled space; the token's account becomes its host."""
    claims = authenticate(request, svc)
    require_account(claims)
    space = Space.create(
        space_id=new_space_id(),
        host_id=claims.sub,
        host_name=claims.name,
        title=body.title,
        description=body.description,
        scheduled_start=body.scheduled_start,
        recording=body.recording,
        now=svc.now(),
    )
    await svc.store.create_space(space)
    svc.remember(space)
    svc.metrics.inc("causerie_spaces_created_total")
    response.headers["Location"] = f"/api/spaces/{space.id}"
    return await view(space, svc)


@router.get("/spaces", response_model=SpaceList, summary="Live and scheduled spaces")
async def list_spaces(response: Response, svc: ServicesDep) -> SpaceList:
    spaces = await svc.store.list_spaces([SpaceState.LIVE, SpaceState.SCHEDULED])
    _cacheable(response, svc)
    return SpaceList(spaces=[await view(s, svc) for s in spaces])


@router.get("/spaces/{space_id}", response_model=SpaceView, summary="One space's details")
async def get_space(space_id: SpaceId, response: Response, svc: ServicesDep) -> SpaceView:
    check_space_id(space_id)
    space = await svc.cached_space(space_id)
    _cacheable(response, svc)
    return await view(space, svc)


async def change_space(
    request: Request, svc: Services, space_id: str, change: Callable[[Space, str], object]
) -> tuple[Space, Claims]:
    """Authenticate, apply `change(space, actor)` atomically, then tell the media and the pages."""
    check_space_id(space_id)
    claims = authenticate(request, svc, space_id)
    space, _ = await update_space(svc.store, space_id, lambda s: change(s, claims.sub))
    svc.remember(space)
    await svc.stage_changed(space)
    await svc.bus.publish(space_id, "space", (await view(space, svc)).model_dump(mode="json"))
    return space, claims


@router.patch("/spaces/{space_id}", response_model=SpaceView, summary="Edit the details")
async def edit_space(
    space_id: SpaceId, body: EditSpace, request: Request, svc: ServicesDep
) -> SpaceView:
    """Host or co-host: change the title, description or (before the start) the start time."""
    space, _ = await change_space(
        request,
        svc,
        space_id,
        lambda s, actor: s.edit(
            actor,
            title=body.title,
            description=body.description,
            scheduled_start=body.scheduled_start,
        ),
    )
    return await view(space, svc)


@router.post("/spaces/{space_id}/start", response_model=SpaceView, summary="Go live")
async def start_space(space_id: SpaceId, request: Request, svc: ServicesDep) -> SpaceView:
    """Host or co-host: the space goes live and its audio starts."""
    space, _ = await change_space(
        request, svc, space_id, lambda s, actor: s.start(actor, svc.now())
    )
    await svc.broadcasts.start(space.id, record=space.recording)
    svc.metrics.inc("causerie_spaces_started_total")
    return await view(space, svc)


@router.post("/spaces/{space_id}/end", response_model=SpaceView, summary="End the space")
async def end_space(space_id: SpaceId, request: Request, svc: ServicesDep) -> SpaceView:
    """Host only: the space ends (a scheduled one is cancelled); its audio stops."""
    space, _ = await change_space(request, svc, space_id, lambda s, actor: s.end(actor, svc.now()))
    await svc.broadcasts.stop(space.id)
    return await view(space, svc)


@router.post("/spaces/{space_id}/join", response_model=Joined, summary="Join as a listener")
async def join_space(
    space_id: SpaceId,
    svc: ServicesDep,
    body: Annotated[JoinRequest | None, Body()] = None,
) -> Joined:
    """Anyone: a listener token for this space, signed statelessly (nothing is stored)."""
    check_space_id(space_id)
    space = await svc.cached_space(space_id)
    now = svc.clock()
    await svc.stats.join_attempted(space_id, now)
    if space.state is SpaceState.ENDED:
        raise Conflict("the space has ended")
    listener_id = "l-" + secrets.token_urlsafe(9)
    expires = int(now) + svc.config.listener_token_ttl
    token = svc.signer.issue(
        Claims(
            sub=listener_id,
            aud=space_id,
            kind=TokenKind.LISTENER,
            exp=expires,
            name=(body.name if body else "")[:60],
        )
    )
    await svc.presence.seen(space_id, listener_id, now)
    await svc.stats.joined(space_id, listener_id, now)
    svc.metrics.inc("causerie_joins_total")
    return Joined(
        token=token,
        listener_id=listener_id,
        playlist_url=playlist_url(space_id),
        heartbeat_interval=HEARTBEAT_INTERVAL,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


@router.post("/spaces/{space_id}/heartbeat", status_code=204, summary="Say you are still listening")
async def heartbeat(space_id: SpaceId, request: Request, svc: ServicesDep) -> Response:
    """Listeners call this every `heartbeat_interval` seconds; it is what 'listening now' counts."""
    check_space_id(space_id)
    claims = authenticate(request, svc, space_id)
    space = await svc.cached_space(space_id)
    if space.state is SpaceState.ENDED:
        raise Conflict("the space has ended")
    now = svc.clock()
    await svc.presence.seen(space_id, claims.sub, now)
    await svc.stats.heartbeat(space_id, claims.sub, now)
    svc.metrics.inc("causerie_heartbeats_total")
    return Response(status_code=204)
