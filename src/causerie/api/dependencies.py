"""What the routes take from the node, as FastAPI dependencies: its services and a space id.

The routes never reach the node's wiring any other way: `Services` is built by the node
(node/factory.py) and put on the app's state by api/app.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request

from ..domain import check_space_id
from ..node.schemas import Error
from ..node.services import Services

Responses = dict[int | str, dict[str, Any]]
"""A route's `responses=`: status -> an OpenAPI response object (FastAPI's own type)."""

ERRORS: Responses = {
    status: {"model": Error} for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
"""The error answers every route may give, for the OpenAPI document."""


async def services(request: Request) -> Services:
    """The node's services."""
    return request.app.state.services


SpacePath = Annotated[str, Path(description="The space's id.", max_length=64)]
"""A space id as the path gives it, unchecked (for routes that check it themselves)."""


async def space_id(space_id: SpacePath) -> str:
    """The space id of the path; 404 for one that cannot be any space's."""
    check_space_id(space_id)
    return space_id


ServicesDep = Annotated[Services, Depends(services)]
SpaceId = Annotated[str, Depends(space_id)]
