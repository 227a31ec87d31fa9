"""The operator's API, `/api/admin/…`, behind the console at `/admin`.

Every route needs an operator's token (`causerie token --operator`, or an operator invite):
anyone else gets 403 (401 without a valid token), checked by the domain's site permissions.
What an operator does to a space (end it, remove or mute someone, hide a question) goes
through the routes every moderator uses (api/spaces.py, api/stage.py, api/audience.py): the
domain lets an operator act there.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from ..domain import Operator, SiteAction
from ..node import admin
from ..node.admin_schemas import (
    AccountList,
    InviteCreated,
    InviteList,
    InviteView,
    NewInvite,
    Overview,
    Revoked,
)
from ..node.services import Services
from ..security.tokens import InvalidToken
from .auth import authenticate, require_operator
from .dependencies import ERRORS, ServicesDep
from .errors import ApiError
from .events import KEEPALIVE_SECONDS, PING, RETRY_MILLISECONDS

router = APIRouter(prefix="/api/admin", responses=ERRORS, tags=["admin"])

OVERVIEW_INTERVAL = 2.0
"""Seconds between two looks at the overview for the console's live stream."""

InviteId = Annotated[str, Path(max_length=64, description="An invite's id (not its code).")]
AccountId = Annotated[str, Path(max_length=64, description="An account's id.")]


async def operator(request: Request, svc: Services, action: SiteAction) -> Operator:
    """The operator making the request; 401 without a valid token, 403 for anyone else."""
    return require_operator(await authenticate(request, svc), action)


@router.get("/overview", response_model=Overview, summary="Every space, node and the disk")
async def get_overview(request: Request, svc: ServicesDep) -> Overview:
    """Every space (live, scheduled, the latest ended) with its live numbers; every node
    (health, load, the spaces it runs, version, Redis); the recordings' disk and budget; the
    open reports."""
    await operator(request, svc, SiteAction.VIEW_CONSOLE)
    return await admin.overview(svc)


@router.get(
    "/events",
    summary="The overview, live (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def overview_events(request: Request, svc: ServicesDep) -> StreamingResponse:
    """An `overview` event at once, then again whenever it changed (looked at every 2 s), and
    a `ping` every 15 s. The token is checked again before each event: the stream ends once
    the operator's account is revoked or its token expires (an `end` event says why)."""
    await operator(request, svc, SiteAction.VIEW_CONSOLE)
    if svc.event_streams >= svc.config.max_event_streams:
        raise ApiError(
            503,
            "too many live event streams on this server; please retry",
            {"Retry-After": str(random.randint(5, 15))},
        )

    async def stream() -> AsyncIterator[bytes]:
        svc.event_streams += 1
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n".encode()
            last, quiet = "", 0.0
            while True:
                try:
                    await operator(request, svc, SiteAction.VIEW_CONSOLE)
                except InvalidToken as exc:
                    yield _event("end", {"reason": str(exc)})
                    return
                data = (await admin.overview(svc)).model_dump(mode="json")
                # Unchanged but for the time it was made: nothing to send.
                text = json.dumps({**data, "generated_at": None}, sort_keys=True)
                if text != last:
                    last, quiet = text, 0.0
                    yield _event("overview", data)
                elif quiet >= KEEPALIVE_SECONDS:
                    quiet = 0.0
                    yield PING
                await asyncio.sleep(OVERVIEW_INTERVAL)
                quiet += OVERVIEW_INTERVAL
        finally:
            svc.event_streams -= 1

    svc.metrics.inc("causerie_event_streams_total")
    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event(kind: str, data: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


# -- invites and accounts -----------------------------------------------------------------------


@router.post("/invites", status_code=201, response_model=InviteCreated, summary="Invite a host")
async def create_invite(body: NewInvite, request: Request, svc: ServicesDep) -> InviteCreated:
    """A single-use link that makes a host (or operator) account, valid `hours` (72 by
    default). The answer holds the code, shown this once: only its hash is kept."""
    who = await operator(request, svc, SiteAction.MANAGE_ACCOUNTS)
    return await admin.create_invite(svc, who, body)


@router.get("/invites", response_model=InviteList, summary="The invites, newest first")
async def list_invites(request: Request, svc: ServicesDep) -> InviteList:
    await operator(request, svc, SiteAction.MANAGE_ACCOUNTS)
    invites = await svc.accounts.list_invites()
    return InviteList(invites=[admin.invite_view(i, svc) for i in invites])


@router.delete("/invites/{invite_id}", response_model=InviteView, summary="Revoke an invite")
async def revoke_invite(invite_id: InviteId, request: Request, svc: ServicesDep) -> InviteView:
    """The link stops working at once, on every node (409 if it was used: revoke the account)."""
    await operator(request, svc, SiteAction.MANAGE_ACCOUNTS)
    return await admin.revoke_invite(svc, invite_id)


@router.get("/accounts", response_model=AccountList, summary="Accounts made by invites")
async def list_accounts(request: Request, svc: ServicesDep) -> AccountList:
    await operator(request, svc, SiteAction.MANAGE_ACCOUNTS)
    accounts = await svc.accounts.list_accounts()
    return AccountList(accounts=[admin.account_view(a) for a in accounts])


@router.post("/accounts/{account_id}/revoke", response_model=Revoked, summary="Revoke an account")
async def revoke_account(account_id: AccountId, request: Request, svc: ServicesDep) -> Revoked:
    """Every token of the account is refused (401) on every node from the next request; for
    good. Any account id may be revoked, one from `causerie token` too, except one's own."""
    who = await operator(request, svc, SiteAction.MANAGE_ACCOUNTS)
    return await admin.revoke_account(svc, who, account_id)
