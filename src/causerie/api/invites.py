"""Opening an invite: `/api/invites/{code}`, public (the code is the credential).

The page at `/invite/{code}` reads the invite (`GET`), then asks for a name and makes the
account (`POST`): its token comes back once. A code that cannot be an invite's is a 404 before
any store is read; one used, expired or revoked is a 409 saying which.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ..node import admin
from ..node.admin_schemas import AccountToken, InviteInfo, RedeemInvite
from .dependencies import ERRORS, ServicesDep

router = APIRouter(prefix="/api/invites", responses=ERRORS, tags=["admin"])

Code = Annotated[str, Path(max_length=64, description="The invite's secret code.")]


@router.get("/{code}", response_model=InviteInfo, summary="What an invite gives")
async def get_invite(code: Code, response: Response, svc: ServicesDep) -> InviteInfo:
    # Never kept by an edge: a used or revoked invite must not look open.
    response.headers["Cache-Control"] = "no-store"
    return await admin.invite_info(svc, code)


@router.post("/{code}", status_code=201, response_model=AccountToken, summary="Use an invite")
async def use_invite(
    code: Code, body: RedeemInvite, response: Response, svc: ServicesDep
) -> AccountToken:
    """Make the account (once): its token is in the answer, shown this once."""
    response.headers["Cache-Control"] = "no-store"
    return await admin.redeem_invite(svc, code, body.name)
