"""WHIP (RFC 9725): speakers publish their audio with one HTTP request.

    POST    /whip/{space_id}                         SDP offer in, 201 + SDP answer + Location
    DELETE  /whip/{space_id}/sessions/{session_id}   end the session (200)
    PATCH   /whip/{space_id}/sessions/{session_id}   trickle ICE (204) or an ICE restart (200)
    OPTIONS on both                                  CORS preflight; ICE servers (Link)

The bearer token is causerie's own (RFC 9725 §4.5 lets the endpoint choose its tokens): an
account or listener token whose subject may publish in the space right now (live space; host,
co-host or speaker). The answer carries all of the server's candidates, so a client that waits
for ICE gathering to complete needs nothing else; one that trickles sends its candidates with
PATCH (``application/trickle-ice-sdpfrag``, RFC 8840), and restarts ICE the same way with new
credentials (RFC 9725 §4.3.1). The session's ``ETag`` names its ICE session: a PATCH needs
``If-Match`` (428 without), with that tag for candidates (412 if it is stale) or ``*`` for a
restart. A second POST by the same user replaces their earlier session (media/speakers.py).

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
from ..media.rtc import IceRestartFailed
from ..media.sdp import SDPFRAG_TYPE, InvalidOffer, parse_fragment
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
        claims = await authenticate(request, svc, space_id)
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
    headers.update(ice_server_links(svc))
    session = svc.speakers.get(space_id, session_id)
    if session is not None:
        headers["ETag"] = session.etag
    return Response(answer, status_code=201, media_type=SDP_TYPE, headers=headers)


def ice_server_links(svc: Services) -> dict[str, str]:
    """The configured STUN/TURN servers as ``Link: <url>; rel="ice-server"`` (RFC 9725 §4.6)."""
    links = [f'<{url}>; rel="ice-server"' for url in svc.config.rtc_ice_servers]
    return {"Link": ", ".join(links)} if links else {}


def if_match(header: str, etag: str) -> bool:
    """Whether an If-Match value matches ``etag`` (RFC 9110 §13.1.1: strong comparison)."""
    if header.strip() == "*":
        return True
    return any(tag.strip() == etag for tag in header.split(","))


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
        claims = await authenticate(request, svc, space_id)
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
    summary="Trickle ICE or restart ICE (WHIP)",
    response_class=Response,
    responses={
        200: {"content": {SDPFRAG_TYPE: {}}, "description": "ICE restarted: the new fragment"},
        204: {"description": "Candidates added"},
        412: {"model": Error, "description": "If-Match names an ICE session that is gone"},
        428: {"model": Error, "description": "If-Match is missing"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {SDPFRAG_TYPE: {"schema": {"type": "string"}}},
            "description": "An SDP fragment (RFC 8840): candidates, or new ICE credentials.",
        }
    },
)
async def patch(
    space_id: SpaceId, session_id: SessionId, request: Request, svc: ServicesDep
) -> Response:
    """The session's speaker sends trickled candidates (`If-Match` with the session's ETag;
    204), or new `a=ice-ufrag`/`a=ice-pwd` to restart ICE (`If-Match: *`; 200 with the node's
    new credentials and candidates, and the new ETag). RFC 9725 §4.3.1."""
    with cors_errors():
        forwarded = await to_owner(request, svc, space_id)
        if forwarded is not None:
            return forwarded
        check_space_id(space_id)
        claims = await authenticate(request, svc, space_id)
        session = svc.speakers.get(space_id, session_id)
        if session is None:
            raise ApiError(404, "no such session (it may have ended already)")
        if claims.sub != session.user_id:
            raise NotAllowed("only the session's own speaker can change its ICE")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != SDPFRAG_TYPE:
            raise ApiError(
                415, f"send an SDP fragment as {SDPFRAG_TYPE}", {"Accept-Patch": SDPFRAG_TYPE}
            )
        condition = request.headers.get("if-match")
        if condition is None:
            raise ApiError(428, "send If-Match: the session's ETag for candidates, * for a restart")
        try:
            fragment = parse_fragment((await request.body()).decode("utf-8"))
        except UnicodeDecodeError:
            raise ApiError(400, "the SDP fragment is not UTF-8 text") from None
        if not if_match(condition, session.etag):
            raise ApiError(412, "this ICE session is over (ICE restarted): use the new ETag")
        current = svc.speakers.remote_ufrag(space_id, session_id)
        if fragment.ufrag is not None and fragment.ufrag != current:
            try:
                body = await svc.speakers.restart(space_id, session_id, fragment)
            except IceRestartFailed as exc:
                raise ApiError(409, str(exc)) from exc
            restarted = svc.speakers.get(space_id, session_id)
            if body is None or restarted is None:
                raise ApiError(404, "no such session (it may have ended already)")
            headers = {**CORS, "ETag": restarted.etag, "Cache-Control": "no-store"}
            return Response(body, status_code=200, media_type=SDPFRAG_TYPE, headers=headers)
        if not await svc.speakers.trickle(space_id, session_id, fragment):
            raise ApiError(404, "no such session (it may have ended already)")
    return Response(status_code=204, headers={**CORS, "Cache-Control": "no-store"})


@router.options("/{space_id}", include_in_schema=False)
async def endpoint_options(space_id: SpaceId, request: Request, svc: ServicesDep) -> Response:
    headers = {**CORS, "Allow": "POST, OPTIONS", "Accept-Post": SDP_TYPE}
    # ICE servers for clients that configure them before their offer, but not on a CORS
    # preflight (RFC 9725 §4.6: that one is answered without doing any work).
    if "access-control-request-method" not in request.headers:
        headers.update(ice_server_links(svc))
    return Response(status_code=204, headers=headers)


@router.options("/{space_id}/sessions/{session_id}", include_in_schema=False)
async def session_options(space_id: SpaceId, session_id: SessionId) -> Response:
    return Response(
        status_code=204,
        headers={**CORS, "Allow": "DELETE, PATCH, OPTIONS", "Accept-Patch": SDPFRAG_TYPE},
    )
