"""Moderation of the stage: raised hands, invitations, co-hosts, mutes, removals.

Every rule is the domain's (`Space` methods); this module only maps HTTP to them. After every
change the media follows (mutes applied to the mixer, sessions of people who lost the stage
closed) and every page is told through the live events.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request, Response

from ..domain import Action, clean_text
from ..domain.audit import AuditAction
from ..domain.reports import DECISION_REASON_MAX as REASON_MAX
from ..node.moderation import log_space_act
from ..node.schemas import (
    Invitation,
    MuteChange,
    Named,
    RaiseHand,
    Removal,
    SpaceView,
    SpeakRequests,
    SpeakRequestView,
)
from ..node.views import space_view
from ..security.tokens import TokenKind
from .auth import actor, authenticate
from .dependencies import ERRORS, ServicesDep, SpaceId
from .spaces import change_space

router = APIRouter(prefix="/api/spaces/{space_id}", responses=ERRORS, tags=["stage"])

UserId = Annotated[str, Path(min_length=1, max_length=64, description="A person's id.")]


@router.post("/speak-requests", response_model=SpaceView, summary="Ask to speak")
async def raise_hand(
    space_id: SpaceId,
    request: Request,
    svc: ServicesDep,
    body: Annotated[RaiseHand | None, Body()] = None,
) -> SpaceView:
    """A listener raises their hand (asking twice is asking once). The space must be live."""
    claims = await authenticate(request, svc, space_id)
    ip = request.client.host if request.client else "unknown"
    await svc.limits.check("speak_request", claims.sub, ip, svc.clock())
    name = body.name if body and body.name is not None else claims.name
    # The address is kept only as a keyed pseudonym: enough to bound and order hands per
    # address (docs/roles.md), not to tell anyone which address it was.
    address = svc.signer.pseudonym(ip)
    account = claims.kind is TokenKind.USER
    space, _ = await change_space(
        request,
        svc,
        space_id,
        lambda s, actor: s.request_to_speak(
            actor, name, svc.now(), address=address, account=account
        ),
    )
    return await space_view(space, svc)


@router.delete("/speak-requests/me", status_code=204, summary="Withdraw one's request")
async def lower_hand(space_id: SpaceId, request: Request, svc: ServicesDep) -> Response:
    await change_space(request, svc, space_id, lambda s, actor: s.withdraw_request(actor))
    return Response(status_code=204)


@router.get("/speak-requests", response_model=SpeakRequests, summary="Raised hands (moderators)")
async def list_requests(space_id: SpaceId, request: Request, svc: ServicesDep) -> SpeakRequests:
    """Host and co-hosts: who waits to speak, account holders first, then hands from the
    addresses with the fewest raised, then oldest first (docs/roles.md). Hands nobody
    answered are lowered after 10 minutes."""
    claims = await authenticate(request, svc, space_id)
    space = await svc.store.get_space(space_id)
    space.check(actor(claims), Action.ANSWER_SPEAK_REQUEST)
    return SpeakRequests(
        requests=[
            SpeakRequestView(user_id=r.user_id, name=r.name, at=r.at, account=r.account)
            for r in space.raised_hands(svc.now())
        ]
    )


@router.post(
    "/speak-requests/{user_id}/approve", response_model=SpaceView, summary="Bring on stage"
)
async def approve(
    space_id: SpaceId, user_id: UserId, request: Request, svc: ServicesDep
) -> SpaceView:
    """Host or co-host: the requester becomes a speaker (429 past the speaker limit)."""
    space, _ = await change_space(
        request,
        svc,
        space_id,
        lambda s, actor: s.answer_request(actor, user_id, approve=True, now=svc.now()),
    )
    return await space_view(space, svc)


@router.post("/speak-requests/{user_id}/deny", response_model=SpaceView, summary="Decline")
async def deny(space_id: SpaceId, user_id: UserId, request: Request, svc: ServicesDep) -> SpaceView:
    space, _ = await change_space(
        request,
        svc,
        space_id,
        lambda s, actor: s.answer_request(actor, user_id, approve=False, now=svc.now()),
    )
    return await space_view(space, svc)


@router.post("/invitations", response_model=SpaceView, summary="Invite someone to speak")
async def invite(
    space_id: SpaceId, body: Invitation, request: Request, svc: ServicesDep
) -> SpaceView:
    """Host or co-host: invite a listener on stage; they become a speaker when they accept."""
    space, _ = await change_space(
        request,
        svc,
        space_id,
        lambda s, actor: s.invite_speaker(actor, body.user_id, body.name),
    )
    return await space_view(space, svc)


@router.post("/invitations/accept", response_model=SpaceView, summary="Accept an invitation")
async def accept(space_id: SpaceId, request: Request, svc: ServicesDep) -> SpaceView:
    space, _ = await change_space(
        request, svc, space_id, lambda s, actor: s.accept_invitation(actor)
    )
    return await space_view(space, svc)


@router.put("/cohosts/{user_id}", response_model=SpaceView, summary="Make a co-host")
async def make_cohost(
    space_id: SpaceId,
    user_id: UserId,
    request: Request,
    svc: ServicesDep,
    body: Annotated[Named | None, Body()] = None,
) -> SpaceView:
    """Host only (429 past the co-host limit). The name is used if the person is not known yet."""
    name = body.name if body else ""
    space, _ = await change_space(
        request, svc, space_id, lambda s, actor: s.make_cohost(actor, user_id, name)
    )
    return await space_view(space, svc)


@router.delete("/cohosts/{user_id}", response_model=SpaceView, summary="Unmake a co-host")
async def unmake_cohost(
    space_id: SpaceId, user_id: UserId, request: Request, svc: ServicesDep
) -> SpaceView:
    space, _ = await change_space(
        request, svc, space_id, lambda s, actor: s.unmake_cohost(actor, user_id)
    )
    return await space_view(space, svc)


@router.put("/stage/{user_id}/muted", response_model=SpaceView, summary="Mute or unmute")
async def set_muted(
    space_id: SpaceId, user_id: UserId, body: MuteChange, request: Request, svc: ServicesDep
) -> SpaceView:
    """Speakers on themselves; host and co-hosts on anyone on stage. Takes effect within a part.
    Muting someone else goes to the audit log."""
    space, claims = await change_space(
        request, svc, space_id, lambda s, actor: s.set_muted(actor, user_id, body.muted)
    )
    if claims.sub != user_id:
        act = AuditAction.MUTE if body.muted else AuditAction.UNMUTE
        await log_space_act(svc, space, actor(claims), Action.MUTE_OTHERS, act, f"user:{user_id}")
    return await space_view(space, svc)


@router.delete("/stage/{user_id}", response_model=SpaceView, summary="Back to the audience")
async def leave_stage(
    space_id: SpaceId, user_id: UserId, request: Request, svc: ServicesDep
) -> SpaceView:
    """A moderator moves someone to the audience (logged in the audit log), or a speaker leaves
    the stage themselves."""
    space, claims = await change_space(
        request, svc, space_id, lambda s, actor: s.move_to_audience(actor, user_id)
    )
    if claims.sub != user_id:
        await log_space_act(
            svc,
            space,
            actor(claims),
            Action.MOVE_TO_AUDIENCE,
            AuditAction.MOVE_TO_AUDIENCE,
            f"user:{user_id}",
        )
    return await space_view(space, svc)


@router.post("/removals", response_model=SpaceView, summary="Remove someone and keep them out")
async def remove(space_id: SpaceId, body: Removal, request: Request, svc: ServicesDep) -> SpaceView:
    """Host or co-host (or an operator); logged in the audit log with the optional reason."""
    reason = clean_text(
        body.reason, field="reason", max_length=REASON_MAX, required=False, multiline=True
    )
    space, claims = await change_space(
        request, svc, space_id, lambda s, actor: s.remove(actor, body.user_id)
    )
    await log_space_act(
        svc,
        space,
        actor(claims),
        Action.REMOVE_MEMBER,
        AuditAction.REMOVE_MEMBER,
        f"user:{body.user_id}",
        reason,
    )
    return await space_view(space, svc)
