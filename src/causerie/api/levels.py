"""Who is talking: pushed to every page when it changes; mic levels for moderators on demand.

The set of active speakers changes a few times a minute in a conversation, so it goes out as a
`speaking` event only when it changes (checked four times a second). Mic levels change all the
time and only the host studio needs them: moderators read them with `GET .../levels`.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel

from ..domain import Action
from .auth import actor, authenticate
from .dependencies import ERRORS, ServicesDep, SpaceId

log = logging.getLogger(__name__)

SPEAKING_INTERVAL = 0.25

router = APIRouter(prefix="/api/spaces/{space_id}", responses=ERRORS, tags=["stage"])


class Level(BaseModel):
    level_dbfs: float
    speaking: bool
    muted: bool


class Levels(BaseModel):
    levels: dict[str, Level]


@router.get("/levels", response_model=Levels, summary="Mic levels (moderators)")
async def levels(space_id: SpaceId, request: Request, svc: ServicesDep) -> Levels:
    """Host and co-hosts: each publishing person's level in dBFS, talking or not, muted or not."""
    claims = await authenticate(request, svc, space_id)
    space = await svc.cached_space(space_id)
    space.check(actor(claims), Action.MUTE_OTHERS)
    pipeline = svc.broadcasts.get(space_id)
    inputs = pipeline.mixer.inputs if pipeline else {}
    return Levels(
        levels={
            input_id: Level(
                level_dbfs=round(source.level, 1), speaking=source.active, muted=source.muted
            )
            for input_id, source in inputs.items()
        }
    )
