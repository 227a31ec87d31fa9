"""WHIP (RFC 9725): speakers publish their audio with one HTTP request.

    POST    /whip/{space_id}                         SDP offer in, 201 + SDP answer + Location
    DELETE  /whip/{space_id}/sessions/{session_id}   end the session (200)
    PATCH   /whip/{space_id}/sessions/{session_id}   405: no trickle ICE, no ICE restart
    OPTIONS on both                                  CORS preflight

The bearer token is causerie's own (RFC 9725 §4.5 lets the endpoint choose its tokens): an
account or listener token whose subject may publish in the space right now (live space; host,
co-host or speaker). The answer carries all of the server's candidates (non-trickle), so a
client that waits for ICE gathering to complete needs nothing else. A second POST by the same
user replaces their earlier session (see causerie.media.ingest).

With several nodes (Redis), a request that reaches a node which does not run the space's media
is forwarded to the node that does (its owner, api/forward.py): the answer, its candidates and
the session are the owner's, so a speaker can publish through any node (or an edge).

Responses carry CORS headers (RFC 9725 §4.1 expects browsers on other origins to publish), also
on errors, so that a page can show the message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from ..cluster.forward import response_headers
from ..domain import Conflict, DomainError, NotAllowed, Role, SpaceState, check_space_id
from ..media.sdp import InvalidOffer
from ..node.schemas import Error
from ..node.services import Services
from ..security.tokens import InvalidToken
from .auth import authenticate
from .dependencies import ServicesDep
from .dependencies import SpacePath as SpaceId  # checked inside, where errors carry CORS
from .errors import STATUS_FOR, ApiError

log = logging.getLogger(__name__)

SDP_TYPE = "application/sdp"
STAGE_SYNC_INTERVAL = 1.0

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS, PATCH",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Link, ETag",
    "Access-Control-Max-Age": "86400",
}

router = APIRouter(
    prefix="/whip",
    tags=["speakers"],
    responses={
        status: {"model": Error} for status in (400, 401, 403, 404, 409, 413, 415, 422, 503)
    },
)


SessionId = Annotated[str, Path(description="The session's id (from Location).", max_length=64)]


def session_url(space_id: str, session_id: str) -> str:
    """The WHIP session URL of RFC 9725 §4.2, returned in Location."""
    return f"/whip/{space_id}/sessions/{session_id}"


async def to_owner(request: Request, svc: Services, space_id: str) -> Response | None:
    """The owner's answer when another node runs the space's media; None: handle it here."""
    if svc.forwarder is None:
        return None
    outcome = await svc.forwarder.whip(
        request.method,
        request.url.path,
        space_id,
        request.headers.raw,
        await request.body(),
        request.client.host if request.client else None,
    )
    if outcome is None:
        return None
    if isinstance(outcome, str):
        raise ApiError(503, outcome, {**CORS, "Retry-After": "1"})
    return Response(
        outcome.content, status_code=outcome.status_code, headers=response_headers(outcome)
    )


@contextmanager
def cors_errors() -> Iterator[None]:
    """Turn the errors raised inside into JSON errors that carry the CORS headers."""
    try:
        yield
    except ApiError as exc:
        exc.headers = {**CORS, **exc.headers}
        raise
    except InvalidToken as exc:
        raise ApiError(401, str(exc), {**CORS, "WWW-Authenticate": "Bearer"}) from exc
    except InvalidOffer as exc:
        raise ApiError(400, str(exc), CORS) from exc
    except DomainError as exc:
        raise ApiError(STATUS_FOR.get(type(exc), 400), exc.message, CORS) from exc


@router.post(
    "/{space_id}",
    status_code=201,
    summary="Publish audio (WHIP)",
    response_class=Response,
    responses={201: {"content": {SDP_TYPE: {}}, "description": "The SDP answer"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {SDP_TYPE: {"schema": {"type": "string"}}},
            "description": "The SDP offer (RFC 8866), with an audio track that sends.",
        }
    },
)
async def publish(space_id: SpaceId, request: Request, svc: ServicesDep) -> Response:
    """Send an SDP offer (`Content-Type: application/sdp`) with an audio track that sends.

    The answer's `Location` is the session: DELETE it to stop. With a `sendrecv` audio track,
    the speaker receives the others (their mix-minus) on the same connection.
    """
    with cors_errors():
        forwarded = await to_owner(request, svc, space_id)
        if forwarded is not None:
            return forwarded
        check_space_id(space_id)
        claims = authenticate(request, svc, space_id)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != SDP_TYPE:
            raise ApiError(415, f"send the SDP offer as {SDP_TYPE}", {"Accept-Post": SDP_TYPE})
        try:
            offer = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "the SDP offer is not UTF-8 text") from None
        # Read the store, not the one-second cache: someone just invited on stage publishes now.
        space = await svc.store.get_space(space_id)
        if space.state is not SpaceState.LIVE:
            raise Conflict(f"the space is {space.state.value}, not live")
        if claims.sub in space.removed:
            raise NotAllowed("you were removed from this space")
        if not space.may_publish(claims.sub):
            raise NotAllowed("only the host, co-hosts and speakers publish: ask to speak first")
        member = space.members[claims.sub]
        session_id, answer = await svc.speakers.publish(
            space_id, claims.sub, offer, muted=member.muted
        )
        # The stage may have changed while the connection was negotiated.
        svc.speakers.sync(await svc.store.get_space(space_id))
        if svc.speakers.get(space_id, session_id) is None:
            raise NotAllowed("you are no longer on stage")
    headers = {
        **CORS,
        "Location": session_url(space_id, session_id),
        "Cache-Control": "no-store",
    }
    links = [f'<{url}>; rel="ice-server"' for url in svc.config.rtc_ice_servers]
    if links:
        headers["Link"] = ", ".join(links)  # RFC 9725 §4.6: ICE servers for the client
    return Response(answer, status_code=201, media_type=SDP_TYPE, headers=headers)


@router.delete("/{space_id}/sessions/{session_id}", summary="Stop publishing (WHIP)")
async def stop(
    space_id: SpaceId, session_id: SessionId, request: Request, svc: ServicesDep
) -> Response:
    """The session's own speaker, or the host or a co-host, ends the session (RFC 9725 §4.3)."""
    with cors_errors():
        forwarded = await to_owner(request, svc, space_id)
        if forwarded is not None:
            return forwarded
        check_space_id(space_id)
        claims = authenticate(request, svc, space_id)
        session = svc.speakers.get(space_id, session_id)
        if session is None:
            raise ApiError(404, "no such session (it may have ended already)")
        if claims.sub != session.user_id:
            space = await svc.store.get_space(space_id)
            if claims.sub in space.removed or space.role_of(claims.sub) not in (
                Role.HOST,
                Role.COHOST,
            ):
                raise NotAllowed("only the speaker, the host or a co-host can end this session")
        await svc.speakers.close(space_id, session_id)
    return Response(status_code=200, headers={**CORS, "Cache-Control": "no-store"})


@router.patch(
    "/{space_id}/sessions/{session_id}",
    summary="Trickle ICE (not supported)",
    responses={405: {"model": Error, "description": "Always: no trickle ICE, no ICE restart"}},
)
async def patch(
    space_id: SpaceId, session_id: SessionId, request: Request, svc: ServicesDep
) -> Response:
    """405: the answer already holds every candidate (RFC 9725 §4.3.1 lets servers refuse)."""
    with cors_errors():
        forwarded = await to_owner(request, svc, space_id)
        if forwarded is not None:
            return forwarded
    raise ApiError(
        405,
        "trickle ICE and ICE restarts are not supported: the answer carries all candidates; "
        "to reconnect, DELETE the session and POST a new offer",
        {**CORS, "Allow": "DELETE, OPTIONS"},
    )


@router.options("/{space_id}", include_in_schema=False)
async def endpoint_options(space_id: SpaceId) -> Response:
    return Response(
        status_code=204, headers={**CORS, "Allow": "POST, OPTIONS", "Accept-Post": SDP_TYPE}
    )


@router.options("/{space_id}/sessions/{session_id}", include_in_schema=False)
async def session_options(space_id: SpaceId, session_id: SessionId) -> Response:
    return Response(status_code=204, headers={**CORS, "Allow": "DELETE, PATCH, OPTIONS"})
